#!/usr/bin/env bash
# What `make bench` needs beyond `make deps`: podman (Debian's 4.3) for the podman + CNI (libcni)
# column, installed only when missing. --no-install-recommends keeps netavark out, so podman uses
# the CNI backend; the bench also runs podman with a containers.conf of its own saying so
# (CONTAINERS_CONF, nothing in /etc is edited). Note: Debian's podman package ships
# /etc/cni/net.d/87-podman-bridge.conflist (podman's default network "podman").
set -euo pipefail
if ! command -v podman >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then echo "install-bench-deps: need root to install podman" >&2; exit 1; fi
  echo "install-bench-deps: installing podman"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends podman >/dev/null
fi
backend=$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null || echo unknown)
echo "install-bench-deps: $(podman --version), default network backend: $backend (the bench sets cni itself)"
