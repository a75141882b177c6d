#!/usr/bin/env bash
# The README quick start as CI runs it around `make test`, so that the suite is proven to pass
# beside a user's own cni-shim networks and containers (and leaves them working):
#   ci-quick-start.sh up      `make run` in the background, then the README's quick-start commands
#                             verbatim (extracted from README.md), plus a container with
#                             --restart always on each of its other two networks
#   ci-quick-start.sh check   they still work: the --restart always containers run and answer a
#                             ping from a new container on their network; web (no restart policy:
#                             the dockerd crash tests may stop it) is started again if needed and
#                             serves its published port; `cni-shim compare` exits 0 beside them
#   ci-quick-start.sh down    remove them and stop the plugin (also what `up` does first)
# For CI (.ci/run) on a test machine: `down` removes containers and networks of the quick start's
# names (web, demo, podnet, kindnet, qs-*).
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKER=/usr/bin/docker
LOG=build/ci-quick-start-serve.log
PIDFILE=build/ci-quick-start-serve.pid
SOCK=/run/docker/plugins/cni-shim.sock
ALWAYS=(qs-pod:podnet qs-kind:kindnet)

die() { echo "ci-quick-start: $*" >&2; exit 1; }

# The README's second sh block under "## Quick start": what a user types in another terminal.
readme_commands() {
  awk '/^## Quick start/ {q = 1; next} q && /^## / {exit} q && /^```sh/ {n++; if (n == 2) {c = 1; next}} c && /^```/ {exit} c' README.md
}

serve_up() {
  mkdir -p build
  # setsid: the plugin and make get a process group of their own, which `down` stops by its id.
  setsid make --no-print-directory run >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 600); do
    curl -s --max-time 2 --unix-socket "$SOCK" -X POST http://plugin/Plugin.Activate 2>/dev/null | grep -q NetworkDriver && return 0
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { cat "$LOG" >&2; die "make run exited"; }
    sleep 0.5
  done
  cat "$LOG" >&2
  die "cni-shim did not answer on $SOCK within 300 s"
}

up() {
  down
  serve_up
  echo "ci-quick-start: the README quick start:"
  readme_commands | sed 's/^/  | /'
  # Verbatim, but with the system's docker client first on PATH (a newer client may be first).
  PATH=/usr/bin:$PATH bash -euxo pipefail -c "$(readme_commands)"
  for pair in "${ALWAYS[@]}"; do
    "$DOCKER" run -d --restart always --name "${pair%%:*}" --network "${pair#*:}" cni-shim-busybox:latest sleep 1000000 >/dev/null
  done
  "$DOCKER" ps --format '{{.Names}} {{.Status}} {{.Networks}}'
}

ip_on() { "$DOCKER" inspect -f "{{(index .NetworkSettings.Networks \"$2\").IPAddress}}" "$1"; }

check() {
  local c net ip
  for pair in "${ALWAYS[@]}"; do
    c=${pair%%:*} net=${pair#*:}
    timeout 120 bash -c "until [ \"\$($DOCKER inspect -f '{{.State.Running}}' $c)\" = true ]; do sleep 1; done" ||
      die "$c (--restart always on $net) is not running after the tests"
    ip=$(ip_on "$c" "$net")
    [ -n "$ip" ] || die "$c has no address on $net"
    timeout 60 "$DOCKER" run --rm --network "$net" cni-shim-busybox:latest ping -c1 -W5 "$ip" >/dev/null ||
      die "a new container on $net cannot ping $c ($ip)"
    echo "ci-quick-start: $c on $net runs at $ip and answers"
  done
  [ "$("$DOCKER" inspect -f '{{.State.Running}}' web)" = true ] || { echo "ci-quick-start: web was stopped (a dockerd crash test); starting it"; "$DOCKER" start web >/dev/null; }
  timeout 30 bash -c 'until curl -s --max-time 2 127.0.0.1:18080 >/dev/null; do sleep 1; done' || die "web's published port 18080 does not answer"
  echo "ci-quick-start: web answers on 127.0.0.1:18080"
  # The report goes to a file: CI keeps only the tail of what is printed (make test's summary).
  timeout 600 node dist/cli/main.js compare --image cni-shim-busybox:latest --markdown build/ci-compare.md >build/ci-compare.txt 2>&1 ||
    { tail -40 build/ci-compare.txt >&2; die "cni-shim compare failed beside the quick start's networks (build/ci-compare.txt)"; }
  echo "ci-quick-start: cni-shim compare exited 0 ($(grep -m1 '^Parity:' build/ci-compare.txt))"
}

down() {
  "$DOCKER" rm -f web "${ALWAYS[@]%%:*}" >/dev/null 2>&1 || true
  for n in demo podnet kindnet; do "$DOCKER" network rm "$n" >/dev/null 2>&1 || true; done
  rm -f /etc/cni/net.d/10-k8s-pod-network.conflist
  if [ -f "$PIDFILE" ]; then
    kill -TERM -- "-$(cat "$PIDFILE")" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.25; done
    rm -f "$PIDFILE"
  fi
  # make relays the TERM; a serve stopped before it unlinked its socket leaves a stale file.
  if [ -S "$SOCK" ] && ! curl -s --max-time 2 --unix-socket "$SOCK" -X POST http://plugin/Plugin.Activate >/dev/null 2>&1; then rm -f "$SOCK"; fi
}

case "${1:-}" in
  up) up ;;
  check) check ;;
  down) down ;;
  *) die "usage: ci-quick-start.sh up|check|down" ;;
esac
