#!/usr/bin/env bash
# The engine harness: Docker engines other than the system's, side by side with it, for the tests,
# `make soak` and `make bench`. An engine is named by its major version:
#   20  the system's dockerd (Debian bookworm's docker.io 20.10), in the host's network namespace
#   26  Debian trixie's docker.io + containerd
#   28  Debian sid's docker.io + containerd + tini-static
# 26 and 28 are fetched with apt-get download through an apt configuration of their own (the
# system's apt state is untouched), unpacked with dpkg-deb -x (nothing is installed), and run with
# their own containerd, data-root, exec-root and socket, in a network namespace of their own
# (cni-shim-eng-N) and one mount namespace shared by containerd, dockerd, the plugin and the tests
# (containerd must see dockerd's overlay mounts, the plugin Docker's sandbox mounts). In that mount
# namespace the network parts of sysfs (/sys/class/net, /sys/devices/virtual/net) answer for the
# engine's network namespace: a process that only enters the network namespace (nsenter --net)
# still sees the host's, and cni-shim's Join and dockerd's bridge code read them. The rest of /sys
# (cgroups) stays the host's. runc is the system's (sid's needs a newer glibc).
#
#   engine.sh fetch N         download and unpack (once; cached in $CNI_SHIM_ENGINES_CACHE)
#   engine.sh up N            fetch, then start containerd and dockerd when not running; wait
#   engine.sh run N -- CMD    run CMD against engine N: in its network and mount namespaces,
#                             with DOCKER_HOST and CNI_SHIM_* set
#   engine.sh with N -- CMD   up, the test image ($CNI_SHIM_TEST_IMAGE), run CMD, then down (26, 28)
#   engine.sh kill N [--containerd]   kill -9 dockerd (and containerd), as a crash would
#   engine.sh down N          stop the engine, remove its containers, namespace and data
#   engine.sh version N       the engine's version as its API reports it
#   engine.sh pid N dockerd|containerd   the process id (for CPU figures)
#   engine.sh env N           the variables `run` sets, one per line
# CNI_SHIM_ENGINE_INSTANCE=NAME runs a second engine N beside the first (its own dirs, namespaces
# and cgroup), e.g. for two people or two soaks on one machine; every call must then set it.
set -euo pipefail

CACHE=${CNI_SHIM_ENGINES_CACHE:-/var/cache/cni-shim-engines}
DATA=${CNI_SHIM_ENGINES_DATA:-/var/lib/cni-shim-engines}
RUNDIR=${CNI_SHIM_ENGINES_RUN:-/run/cni-shim-engines}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/debian-apt.sh
. "$HERE/lib/debian-apt.sh"

die() { echo "engine.sh: $*" >&2; exit 1; }

engine=${2:-}
case "$engine" in
  20 | 26 | 28) ;;
  *) die "usage: engine.sh fetch|up|run|kill|down|version|env 20|26|28 [-- CMD]" ;;
esac

suite() { case "$1" in 26) echo trixie ;; 28) echo sid ;; esac; }
packages() { case "$1" in 26) echo "docker.io containerd docker-cli" ;; 28) echo "docker.io containerd docker-cli tini-static" ;; esac; }

inst=${CNI_SHIM_ENGINE_INSTANCE:+-$CNI_SHIM_ENGINE_INSTANCE}
[[ "$inst" =~ ^(-[a-z0-9]{1,8})?$ ]] || die "CNI_SHIM_ENGINE_INSTANCE must be 1-8 of a-z0-9"
root="$CACHE/$engine/root"    # unpacked packages
data="$DATA/$engine$inst"     # data-root, containerd root
run="$RUNDIR/$engine$inst"    # sockets, pids, exec-root
netns="cni-shim-eng-$engine$inst"

fetch() {
  [ "$engine" = 20 ] && return 0
  [ -x "$root/usr/sbin/dockerd" ] && [ -x "$root/usr/bin/containerd" ] && [ -x "$root/usr/bin/docker" ] && return 0
  echo "engine.sh: fetching Docker $engine (Debian $(suite "$engine"): $(packages "$engine"))"
  # shellcheck disable=SC2046 # the package names, one word each
  debian_download "$CACHE/apt" "$(suite "$engine")" "$CACHE/$engine/debs" $(packages "$engine") || die "Docker $engine: apt-get download failed"
  rm -rf "$root.new" && mkdir -p "$root.new"
  for deb in "$CACHE/$engine/debs"/*.deb; do dpkg-deb -x "$deb" "$root.new"; done
  rm -rf "$root" && mv "$root.new" "$root"
  [ -x "$root/usr/sbin/dockerd" ] || die "Docker $engine: no dockerd in the fetched packages"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# The engine's mount namespace, kept by a bind mount of its nsfs file ($run/mnt, on a private bind
# mount of $run so that the namespace cannot contain itself). Inside that namespace the file is an
# empty one, and entering is not needed: $run/mnt.id says which namespace it is.
# The nsenter command line that enters the engine (one word per line).
enter_engine() {
  if [ "$(readlink /proc/self/ns/mnt)" = "$(cat "$run/mnt.id" 2>/dev/null)" ]; then
    printf '%s\n' nsenter "--net=/run/netns/$netns"
  elif [ "$(stat -f -c %T "$run/mnt" 2>/dev/null)" = nsfs ]; then
    printf '%s\n' nsenter "--mount=$run/mnt" "--net=/run/netns/$netns" "--wd=$PWD"
  else
    die "the mount namespace of Docker $engine is gone: run engine.sh down $engine, then up $engine"
  fi
}

in_engine() {
  local -a enter
  mapfile -t enter < <(enter_engine)
  [ ${#enter[@]} -gt 0 ] || exit 1
  "${enter[@]}" "$@"
}

make_namespaces() {
  [ -e "/run/netns/$netns" ] || ip netns add "$netns"
  ip -n "$netns" link set lo up
  [ "$(stat -f -c %T "$run/mnt" 2>/dev/null)" = nsfs ] && return 0
  [ "$(readlink /proc/self/ns/mnt)" = "$(cat "$run/mnt.id" 2>/dev/null)" ] && return 0
  mkdir -p "$run"
  mountpoint -q "$run" || { mount --bind "$run" "$run" && mount --make-private "$run"; }
  touch "$run/mnt"
  unshare --mount="$run/mnt" --propagation slave true
  # A sysfs of the engine's network namespace, and its network parts over the host's.
  # shellcheck disable=SC2016 # the script's own variables, expanded by the sh inside the namespaces
  nsenter --mount="$run/mnt" --net="/run/netns/$netns" env OWN_NETNS="/run/netns/$netns" sh -euc '
    # Copies of the namespace mounts of the host (the sandboxes of the system Docker, the staging
    # namespaces of plugins, other engines) would keep those namespaces, and their veths, alive
    # after the host removed them: a host of its own has none of them.
    grep " nsfs " /proc/self/mounts | cut -d" " -f2 | grep -vx "$OWN_NETNS" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    d=$(mktemp -d); mount -t sysfs sysfs "$d"
    mount --bind "$d/class/net" /sys/class/net
    mount --bind "$d/devices/virtual/net" /sys/devices/virtual/net
    umount -l "$d"; rmdir "$d"
    # /run/netns shared here too (a slave of the host mount is not): the staging namespaces a
    # managed plugin mounts there must reach this namespace, as on a systemd host.
    mountpoint -q /run/netns || mount --bind /run/netns /run/netns
    mount --make-shared /run/netns
    readlink /proc/self/ns/mnt' >"$run/mnt.id"
}

start_containerd() {
  alive "$run/containerd.pid" && return 0
  mkdir -p "$run" "$data/containerd"
  rm -f "$run/containerd.sock" # a killed containerd leaves it
  cat >"$run/containerd.toml" <<EOF
version = 2
root = "$data/containerd"
state = "$run/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$run/containerd.sock"
[ttrpc]
  address = "$run/containerd.sock.ttrpc"
[debug]
  address = "$run/containerd-debug.sock"
EOF
  # setsid + nohup: the engine outlives the shell that started it (a test, the soak).
  local -a enter
  mapfile -t enter < <(enter_engine)
  PATH="$root/usr/bin:$root/usr/sbin:$PATH" setsid nohup \
    "${enter[@]}" "$root/usr/bin/containerd" --config "$run/containerd.toml" \
    >>"$data/containerd.log" 2>&1 </dev/null &
  echo $! >"$run/containerd.pid"
  for _ in $(seq 1 100); do
    timeout 5 "$root/usr/bin/ctr" --address "$run/containerd.sock" version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "containerd of Docker $engine did not come up; see $data/containerd.log"
}

start_dockerd() {
  alive "$run/dockerd.pid" && return 0
  mkdir -p "$run/exec" "$data/docker"
  [ -f "$run/daemon.json" ] || echo '{}' >"$run/daemon.json"
  local -a enter
  mapfile -t enter < <(enter_engine)
  PATH="$root/usr/bin:$root/usr/sbin:$PATH" setsid nohup \
    "${enter[@]}" "$root/usr/sbin/dockerd" \
    --config-file "$run/daemon.json" --data-root "$data/docker" --exec-root "$run/exec" \
    -H "unix://$run/docker.sock" --pidfile "$run/dockerd.pid.own" --containerd "$run/containerd.sock" \
    --cgroup-parent "/$netns" \
    >>"$data/dockerd.log" 2>&1 </dev/null &
  echo $! >"$run/dockerd.pid"
}

wait_api() {
  local sock=$1
  for _ in $(seq 1 240); do
    curl -sf --max-time 2 --unix-socket "$sock" http://d/_ping >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

up() {
  if [ "$engine" = 20 ]; then bash "$HERE/ensure-dockerd.sh"; return; fi
  fetch
  make_namespaces
  start_containerd
  start_dockerd
  wait_api "$run/docker.sock" || die "Docker $engine did not answer on $run/docker.sock in 60 s; see $data/dockerd.log"
}

env_lines() {
  if [ "$engine" = 20 ]; then
    echo "DOCKER_HOST=unix:///var/run/docker.sock"
    echo "CNI_SHIM_DOCKER_SOCKET=/var/run/docker.sock"
    echo "CNI_SHIM_DOCKER_CLI=/usr/bin/docker"
  else
    echo "DOCKER_HOST=unix://$run/docker.sock"
    echo "CNI_SHIM_DOCKER_SOCKET=$run/docker.sock"
    echo "CNI_SHIM_DOCKER_CLI=$root/usr/bin/docker"
  fi
  echo "CNI_SHIM_ENGINE=$engine"
  echo "CNI_SHIM_ENGINE_HARNESS=$HERE/engine.sh"
}

run_cmd() {
  local -a envs
  mapfile -t envs < <(env_lines)
  if [ "$engine" = 20 ]; then exec env "${envs[@]}" "$@"; fi
  [ -e "/run/netns/$netns" ] || die "Docker $engine is not up: run engine.sh up $engine first"
  in_engine env "${envs[@]}" "$@"
}

kill_engine() {
  local with_containerd=${1:-}
  if [ "$engine" = 20 ]; then
    local pid
    pid=$(for p in $(pgrep -x dockerd); do if [ "$(readlink "/proc/$p/exe")" = /usr/sbin/dockerd ]; then echo "$p"; fi; done | head -1)
    [ -n "$pid" ] || return 0
    local also=()
    [ "$with_containerd" = --containerd ] && mapfile -t also < <(pgrep -P "$pid" -x containerd)
    kill -9 "$pid" "${also[@]}" 2>/dev/null || true
    # Gone, not a zombie: a new dockerd refuses to start while the pid of its pid file exists.
    for _ in $(seq 1 300); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
    return 0
  fi
  local f
  for f in dockerd ${with_containerd:+containerd}; do
    if alive "$run/$f.pid"; then
      local pid
      pid=$(cat "$run/$f.pid")
      kill -9 "$pid" 2>/dev/null || true
      for _ in $(seq 1 300); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
    fi
    rm -f "$run/$f.pid"
  done
  rm -f "$run/dockerd.pid.own"
}

down() {
  [ "$engine" = 20 ] && die "engine 20 is the system's dockerd: the harness never stops it"
  if alive "$run/dockerd.pid"; then
    # Containers first, while dockerd can still tear their networking down.
    local -a ids
    mapfile -t ids < <(DOCKER_HOST="unix://$run/docker.sock" timeout 60 "$root/usr/bin/docker" ps -aq 2>/dev/null)
    [ ${#ids[@]} -eq 0 ] || DOCKER_HOST="unix://$run/docker.sock" timeout 120 "$root/usr/bin/docker" rm -f "${ids[@]}" >/dev/null 2>&1 || true
    kill -TERM "$(cat "$run/dockerd.pid")" 2>/dev/null || true
    for _ in $(seq 1 150); do alive "$run/dockerd.pid" || break; sleep 0.2; done
  fi
  if alive "$run/containerd.pid"; then
    kill -TERM "$(cat "$run/containerd.pid")" 2>/dev/null || true
    for _ in $(seq 1 100); do alive "$run/containerd.pid" || break; sleep 0.1; done
  fi
  kill_engine --containerd
  # Shims whose containerd is gone, and whatever is mounted under the engine's dirs.
  pkill -9 -f "containerd-shim-runc-v2 -namespace moby -address $run/containerd.sock" 2>/dev/null || true
  grep -E " ($data|$run)/" /proc/self/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  umount -l "$run/mnt" 2>/dev/null || true
  umount -l "$run" 2>/dev/null || true
  [ ! -e "/run/netns/$netns" ] || ip netns del "$netns"
  rm -rf "$run" "$data"
}

version() {
  local sock=/var/run/docker.sock
  [ "$engine" = 20 ] || sock="$run/docker.sock"
  curl -sf --max-time 5 --unix-socket "$sock" http://d/version | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).Version))'
}

case "${1:-}" in
  fetch) fetch ;;
  up) up ;;
  with)
    shift 2
    [ "${1:-}" = -- ] && shift
    [ $# -gt 0 ] || die "with: no command"
    [ "$engine" = 20 ] || trap down EXIT
    up
    echo "engine.sh: Docker $engine is $(version)"
    (run_cmd bash "$HERE/test-image.sh" "${CNI_SHIM_TEST_IMAGE:-cni-shim-busybox:latest}")
    rc=0
    (run_cmd "$@") || rc=$?
    exit $rc
    ;;
  run)
    shift 2
    [ "${1:-}" = -- ] && shift
    [ $# -gt 0 ] || die "run: no command"
    run_cmd "$@"
    ;;
  kill) kill_engine "${3:-}" ;;
  down) down ;;
  version) version ;;
  pid)
    case "${3:-}" in dockerd | containerd) ;; *) die "pid: dockerd or containerd" ;; esac
    if [ "$engine" = 20 ]; then
      d=$(for p in $(pgrep -x dockerd); do if [ "$(readlink "/proc/$p/exe")" = /usr/sbin/dockerd ]; then echo "$p"; fi; done | head -1)
      if [ "$3" = dockerd ]; then echo "$d"; else pgrep -P "$d" -x containerd || pgrep -x containerd -f "^/usr/bin/containerd" | head -1; fi
    else
      alive "$run/$3.pid" && cat "$run/$3.pid"
    fi
    ;;
  env) env_lines ;;
  *) die "unknown command ${1:-}: fetch, up, run, kill, down, version or env" ;;
esac
