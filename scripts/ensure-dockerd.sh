#!/usr/bin/env bash
# Starts dockerd in the background when none answers, and waits until it does.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
if ! pgrep -x dockerd >/dev/null; then
  echo "ensure-dockerd: starting dockerd (log: /var/log/cni-shim-dockerd.log)"
  nohup dockerd >/var/log/cni-shim-dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "ensure-dockerd: dockerd did not come up in 30 s; see /var/log/cni-shim-dockerd.log" >&2
exit 1
