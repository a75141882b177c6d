#!/usr/bin/env bash
# `make plugin`: builds the managed plugin's rootfs with the Dockerfile, exports it next to
# plugin-config/config.json and registers it with `docker plugin create` (replacing an older
# plugin of the same name, which must not be in use). Enable it with `docker plugin enable NAME`.
# Environment: PLUGIN_NAME (cni-shim; may be REGISTRY/NAME:TAG), BASE, INSTALL_PACKAGES
# (Dockerfile build args), PLUGIN_DIR (build/plugin), DOCKER (docker client), PREPARE_HOST
# (1: make /run/netns a shared mount for a local enable; 0 when only pushing).
set -euo pipefail
cd "$(dirname "$0")/.."
name=${PLUGIN_NAME:-cni-shim}
out=${PLUGIN_DIR:-build/plugin}
DOCKER=${DOCKER:-docker}
image="cni-shim-rootfs:${name//[^a-zA-Z0-9_.-]/-}"
build_args=()
[ -n "${BASE:-}" ] && build_args+=(--build-arg "BASE=$BASE")
[ -n "${INSTALL_PACKAGES:-}" ] && build_args+=(--build-arg "INSTALL_PACKAGES=$INSTALL_PACKAGES")
[ -d node_modules ] || { echo "build-plugin: node_modules is missing: run npm ci (make does)" >&2; exit 1; }

echo "build-plugin: docker build ${build_args[*]:-} -t $image"
"$DOCKER" build -q "${build_args[@]}" -t "$image" . >/dev/null
"$DOCKER" image prune -f --filter label=cni-shim.stage=build >/dev/null

rm -rf "$out"
mkdir -p "$out/rootfs"
cid=$("$DOCKER" create "$image")
trap '"$DOCKER" rm -f "$cid" >/dev/null 2>&1 || true' EXIT
"$DOCKER" export "$cid" | tar -x -C "$out/rootfs"
cp plugin-config/config.json "$out/config.json"

# The plugin makes its missing host dirs itself (packaging/plugin-host.sh), but /run/netns must be
# on a shared mount so that the namespaces it creates are host mounts (that is what `ip netns add`
# does on the host; a systemd host's /run is shared). Not needed to push: the host that installs
# the plugin is another one.
if [ "${PREPARE_HOST:-1}" = 1 ]; then
  mkdir -p /run/netns
  if ! awk '$5 == "/run/netns" && / shared:/ { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    mount --bind /run/netns /run/netns
    mount --make-shared /run/netns
  fi
fi

if "$DOCKER" plugin inspect "$name" >/dev/null 2>&1; then
  echo "build-plugin: replacing the existing plugin $name"
  "$DOCKER" plugin rm -f "$name" >/dev/null
fi
"$DOCKER" plugin create "$name" "$out" >/dev/null
echo "build-plugin: created plugin $name from $out; next: docker plugin enable $name"
