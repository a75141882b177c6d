#!/usr/bin/env bash
# Starts dockerd in the background when none answers, and waits until it does.
set -euo pipefail
export DOCKER_HOST=unix:///var/run/docker.sock
if docker info >/dev/null 2>&1; then exit 0; fi
# Only the system's dockerd counts: other engines (scripts/engine.sh) may run beside it.
system_dockerd() { for p in $(pgrep -x dockerd); do if [ "$(readlink "/proc/$p/exe")" = /usr/sbin/dockerd ]; then echo "$p"; fi; done; }
if [ -z "$(system_dockerd)" ]; then
  echo "ensure-dockerd: starting dockerd (log: /var/log/cni-shim-dockerd.log)"
  nohup dockerd >/var/log/cni-shim-dockerd.log 2>&1 &
fi
for _ in $(seq 1 240); do # a restore that waits on an unreachable plugin takes ~15 s per container
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "ensure-dockerd: dockerd did not come up in 120 s; see /var/log/cni-shim-dockerd.log" >&2
exit 1
