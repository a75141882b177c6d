#!/usr/bin/env bash
# `make plugin-push REGISTRY=host:port [TAG=...]`: builds the managed plugin (scripts/build-plugin.sh)
# as REGISTRY/NAME:TAG, pushes it with `docker plugin push`, then removes the local copy, which
# would otherwise stand in the way of `docker plugin install REGISTRY/NAME:TAG` on this host.
# TAG defaults to package.json's version, so that `cni-shim --version` inside it says the same.
# Environment: REGISTRY (required), TAG, NAME (cni-shim), KEEP_LOCAL=1 keeps the local plugin;
# BASE, INSTALL_PACKAGES, PLUGIN_DIR, DOCKER as for build-plugin.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-docker}
[ -n "${REGISTRY:-}" ] || { echo "push-plugin: set REGISTRY=host:port (e.g. make plugin-push REGISTRY=registry.example:5000)" >&2; exit 2; }
tag=${TAG:-$(node -p 'require("./package.json").version')}
ref="$REGISTRY/${NAME:-cni-shim}:$tag"

PLUGIN_NAME=$ref PREPARE_HOST=0 bash scripts/build-plugin.sh
# The rootfs image was only a step to the plugin's rootfs.
"$DOCKER" image rm "cni-shim-rootfs:${ref//[^a-zA-Z0-9_.-]/-}" >/dev/null 2>&1 || true
echo "push-plugin: docker plugin push $ref"
"$DOCKER" plugin push "$ref"
if [ "${KEEP_LOCAL:-0}" != 1 ]; then "$DOCKER" plugin rm "$ref" >/dev/null; fi
echo "push-plugin: pushed $ref; install it with: docker plugin install --grant-all-permissions --alias cni-shim $ref"
