#!/usr/bin/env bash
# Installs what cni-shim needs on a Debian host, only when something is missing.
set -euo pipefail
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/portmap ] || need+=(containernetworking-plugins)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v perl >/dev/null 2>&1 || need+=(perl-base) # the look inside container namespaces (src/host/sandbox-look.ts)
# The test image is the host's busybox: it must be the static build (the dynamic one needs libc).
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" || need+=(busybox-static)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
command -v curl >/dev/null 2>&1 || need+=(curl) # scripts/engine.sh asks the engines' sockets
# systemd-analyze verifies the unit make install ships (the binaries only; nothing is started).
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v chromium >/dev/null 2>&1 || need+=(chromium) # compare e2e: renders the HTML report headless
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose) # compose e2e: a project on a cni-shim network
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck) # make test and make lint check every .sh
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry) # managed-plugin e2e: pushes to it and installs from it (its own config, never the service)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "install-deps: need root to install: ${need[*]}" >&2; exit 1; fi
  echo "install-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
