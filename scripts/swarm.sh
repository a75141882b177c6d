#!/usr/bin/env bash
# The swarm harness: a 3-node Docker swarm of Debian sid's Docker 28.5 (the binaries
# scripts/engine.sh fetches) on this one machine, for `make test-swarm`.
#
# Each node looks like a host of its own, because swarm and the managed plugin assume one:
#  - a network namespace with eth0 on one bridge (br0) in a separate "switch" namespace, so that
#    the host's network is untouched and every packet stays in namespaces made here;
#  - a mount namespace with a private tmpfs on /run (/run/docker/plugins, /run/containerd and
#    /run/netns are the node's; the managed plugin's sockets are always under /run/docker/plugins)
#    and private /etc/docker, /etc/cni/net.d, /var/lib/{docker,containerd,cni,cni-shim}; `/` is
#    rshared inside it, as on a systemd host (the managed plugin's netns dir, /run/netns, must be on
#    a shared mount; the plugin sees the node's / and its dirs there);
#  - its own hostname (a UTS namespace: swarm names nodes by it);
#  - its own containerd (own root: containerds sharing one wait on its lock; CRI off) and dockerd.
# nsenter, not `ip netns exec`, enters the namespaces: the latter remounts /sys and hides
# /sys/fs/cgroup from dockerd; the network parts of sysfs are bound from a fresh sysfs instead.
# Debian's docker-registry serves on the switch's address (each node's insecure-registries); the
# managed plugin is pushed there and installed on every node from it, as a user does on a cluster.
#
#   swarm.sh up             the switch, the nodes, the registry, swarm init + join, the test image
#   swarm.sh plugin         build + push the managed plugin, install it on every node as cni-shim:latest
#   swarm.sh run N -- CMD   CMD in node N's namespaces (DOCKER_HOST set)
#   swarm.sh with -- CMD    up, plugin, CMD on the host with `swarm.sh env`, then down
#   swarm.sh kill N         kill -9 node N's dockerd (a crash); swarm.sh start N starts it again
#   swarm.sh status         what runs; exit 1 when the swarm is not whole
#   swarm.sh env            the variables `with` sets, one per line
#   swarm.sh down           removes every trace: processes, namespaces, bridge, mounts, dirs
# CNI_SHIM_ENGINE_INSTANCE=NAME (1-8 of a-z0-9, default sw) names the nodes NAME1..NAME3 and keeps
# their namespaces and dirs apart from another swarm's; every call must then set it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
CACHE=${CNI_SHIM_ENGINES_CACHE:-/var/cache/cni-shim-engines}
inst=${CNI_SHIM_ENGINE_INSTANCE:-sw}
[[ "$inst" =~ ^[a-z0-9]{1,8}$ ]] || { echo "swarm.sh: CNI_SHIM_ENGINE_INSTANCE must be 1-8 of a-z0-9" >&2; exit 1; }
DATA=${CNI_SHIM_ENGINES_DATA:-/var/lib/cni-shim-engines}/swarm-$inst
RUN=${CNI_SHIM_ENGINES_RUN:-/run/cni-shim-engines}/swarm-$inst
ROOT28="$CACHE/28/root"
NODES="1 2 3"
# The switch's LAN. Only the namespaces made here see it, so it cannot clash with the host's.
LAN=10.231.0
REGISTRY="$LAN.1:5000"
# Swarm's own networks (ingress, docker_gwbridge) away from the LAN and from the tests' ranges.
ADDR_POOL=10.240.0.0/16
PLUGIN_BASE=${CNI_SHIM_PLUGIN_BASE:-cni-shim-base:local}
TEST_IMAGE=cni-shim-busybox:latest

die() { echo "swarm.sh: $*" >&2; exit 1; }
say() { echo "swarm.sh: $*" >&2; }

switch_ns="cs-sw-$inst-switch"
node_ns() { echo "cs-sw-$inst-$1"; }
node_name() { echo "$inst$1"; }
node_addr() { echo "$LAN.1$1"; }
node_dir() { echo "$DATA/n$1"; }
# The node's API socket as the host sees it (the node's own /run/docker.sock is in its private /run).
node_sock() { echo "$DATA/n$1/docker.sock"; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# The node's namespaces, kept by bind mounts of their nsfs files on a private bind mount of $RUN
# (a mount namespace cannot be kept on a mount that propagates into it).
enter_node() {
  local n=$1
  [ "$(stat -f -c %T "$RUN/n$n.mnt" 2>/dev/null)" = nsfs ] || die "node $n is not up: run swarm.sh up"
  printf '%s\n' nsenter "--mount=$RUN/n$n.mnt" "--uts=$RUN/n$n.uts" "--net=/run/netns/$(node_ns "$n")"
}

in_node() {
  local n=$1 && shift
  local -a enter
  mapfile -t enter < <(enter_node "$n")
  [ ${#enter[@]} -gt 0 ] || exit 1
  "${enter[@]}" "$@"
}

# The node's docker client, run from the host on the node's host-visible socket.
node_docker() {
  local n=$1 && shift
  DOCKER_HOST="unix://$(node_sock "$n")" "$ROOT28/usr/bin/docker" "$@"
}

make_switch() {
  ip netns add "$switch_ns"
  ip -n "$switch_ns" link set lo up
  ip -n "$switch_ns" link add br0 type bridge
  ip -n "$switch_ns" addr add "$LAN.1/24" dev br0
  ip -n "$switch_ns" link set br0 up
}

# eth0 in the node's network namespace, its peer on the switch's bridge.
make_node_net() {
  local n=$1 ns
  ns=$(node_ns "$n")
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$switch_ns" link add "port$n" type veth peer name eth0 netns "$ns"
  ip -n "$switch_ns" link set "port$n" master br0 up
  ip -n "$ns" addr add "$(node_addr "$n")/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via "$LAN.1"
}

# The node's mount and UTS namespaces, made once and configured from inside.
make_node_mounts() {
  local n=$1 dir
  dir=$(node_dir "$n")
  mkdir -p "$dir"/{etc-docker,cni-conf,docker,containerd,cni,cni-shim}
  echo "{\"insecure-registries\": [\"$REGISTRY\"]}" >"$dir/etc-docker/daemon.json"
  touch "$RUN/n$n.mnt" "$RUN/n$n.uts"
  unshare --mount="$RUN/n$n.mnt" --uts="$RUN/n$n.uts" --propagation slave true
  # shellcheck disable=SC2016 # expanded by the sh inside the namespaces
  in_node "$n" env NAME="$(node_name "$n")" DIR="$dir" sh -euc '
    hostname "$NAME"
    # Copies of the host namespace mounts (the system Docker sandboxes, other engines) would keep
    # those namespaces and their veths alive after the host removed them (hidden under the tmpfs
    # on /run below, where nothing could unmount them): a host of its own has none of them.
    grep " nsfs " /proc/self/mounts | cut -d" " -f2 | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    mount --make-rshared /
    # The network parts of sysfs answer for the node network namespace (cni-shim and dockerd read them).
    d=$(mktemp -d); mount -t sysfs sysfs "$d"
    mount --bind "$d/class/net" /sys/class/net
    mount --bind "$d/devices/virtual/net" /sys/devices/virtual/net
    umount -l "$d"; rmdir "$d"
    for pair in etc-docker:/etc/docker cni-conf:/etc/cni/net.d docker:/var/lib/docker \
      containerd:/var/lib/containerd cni:/var/lib/cni cni-shim:/var/lib/cni-shim; do
      mkdir -p "${pair#*:}"
      mount --bind "$DIR/${pair%%:*}" "${pair#*:}"
    done
    mount -t tmpfs -o mode=755 tmpfs /run
    mkdir -p /run/netns /run/containerd /run/docker/plugins'

}

# setsid + nohup: the node outlives the shell that started it.
start_containerd() {
  local n=$1 dir
  dir=$(node_dir "$n")
  alive "$RUN/n$n.containerd.pid" && return 0
  cat >"$dir/containerd.toml" <<EOF
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "/run/containerd/containerd.sock"
EOF
  local -a enter
  mapfile -t enter < <(enter_node "$n")
  PATH="$ROOT28/usr/bin:$ROOT28/usr/sbin:$PATH" setsid nohup "${enter[@]}" --wd=/ \
    "$ROOT28/usr/bin/containerd" --config "$dir/containerd.toml" >>"$dir/containerd.log" 2>&1 </dev/null &
  echo $! >"$RUN/n$n.containerd.pid"
  for _ in $(seq 1 100); do
    in_node "$n" timeout 5 "$ROOT28/usr/bin/ctr" --address /run/containerd/containerd.sock version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "containerd of node $n did not come up; see $dir/containerd.log"
}

start_dockerd() {
  local n=$1 dir
  dir=$(node_dir "$n")
  if ! alive "$RUN/n$n.dockerd.pid"; then
    # A killed dockerd leaves its socket, and its pid file in the node's /run.
    rm -f "$(node_sock "$n")"
    in_node "$n" rm -f /run/docker.pid
    local -a enter
    mapfile -t enter < <(enter_node "$n")
    PATH="$ROOT28/usr/bin:$ROOT28/usr/sbin:$PATH" setsid nohup "${enter[@]}" --wd=/ \
      "$ROOT28/usr/sbin/dockerd" --containerd /run/containerd/containerd.sock \
      -H unix:///run/docker.sock -H "unix://$(node_sock "$n")" --cgroup-parent "/$(node_ns "$n")" \
      >>"$dir/dockerd.log" 2>&1 </dev/null &
    echo $! >"$RUN/n$n.dockerd.pid"
  fi
  for _ in $(seq 1 240); do
    curl -sf --max-time 2 --unix-socket "$(node_sock "$n")" http://d/_ping >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  die "dockerd of node $n did not answer in 120 s; see $dir/dockerd.log"
}

start_registry() {
  mkdir -p "$DATA/registry"
  printf '%s\n' "version: 0.1" "log:" "  level: warn" "storage:" "  filesystem:" \
    "    rootdirectory: $DATA/registry/storage" "http:" "  addr: $REGISTRY" >"$DATA/registry/config.yml"
  command -v docker-registry >/dev/null || die "docker-registry is missing: apt-get install docker-registry (make deps does it)"
  setsid nohup nsenter --net="/run/netns/$switch_ns" docker-registry serve "$DATA/registry/config.yml" \
    >>"$DATA/registry/log" 2>&1 </dev/null &
  echo $! >"$RUN/registry.pid"
  for _ in $(seq 1 100); do
    nsenter --net="/run/netns/$switch_ns" curl -sf --max-time 2 "http://$REGISTRY/v2/" >/dev/null && return 0
    sleep 0.1
  done
  die "the registry did not answer on $REGISTRY; see $DATA/registry/log"
}

make_swarm() {
  local token n
  node_docker 1 swarm init --advertise-addr "$(node_addr 1)" --default-addr-pool "$ADDR_POOL" >/dev/null
  token=$(node_docker 1 swarm join-token -q worker)
  for n in $NODES; do
    [ "$n" = 1 ] && continue
    node_docker "$n" swarm join --advertise-addr "$(node_addr "$n")" --token "$token" "$(node_addr 1):2377" >/dev/null
  done
  for _ in $(seq 1 120); do
    [ "$(node_docker 1 node ls --format '{{.Status}}' | grep -c Ready)" = 3 ] && return 0
    sleep 0.5
  done
  die "the swarm did not get 3 Ready nodes: $(node_docker 1 node ls 2>&1)"
}

# The test image (busybox-static, scripts/test-image.sh) in the registry: every node pulls it.
push_test_image() {
  DOCKER_HOST="unix://$(node_sock 1)" PATH="$ROOT28/usr/bin:$PATH" bash "$HERE/test-image.sh" "$TEST_IMAGE" >/dev/null
  node_docker 1 tag "$TEST_IMAGE" "$REGISTRY/$TEST_IMAGE"
  node_docker 1 push -q "$REGISTRY/$TEST_IMAGE" >/dev/null
}

up() {
  if status >/dev/null 2>&1; then return 0; fi
  down # whatever a failed or killed run left: up starts from nothing
  CNI_SHIM_ENGINE_INSTANCE=$inst bash "$HERE/engine.sh" fetch 28
  mkdir -p "$RUN" "$DATA"
  mount --bind "$RUN" "$RUN" && mount --make-private "$RUN"
  make_switch
  start_registry
  local n
  for n in $NODES; do
    make_node_net "$n"
    make_node_mounts "$n"
    start_containerd "$n"
    start_dockerd "$n"
  done
  make_swarm
  push_test_image
  say "up: nodes $(for n in $NODES; do printf '%s ' "$(node_name "$n")=$(node_addr "$n")"; done)registry $REGISTRY"
}

# The managed plugin's base image in node 1: the system Docker's copy (no node has a route to a
# Debian mirror), saved once to the engines' cache.
load_plugin_base() {
  node_docker 1 image inspect "$PLUGIN_BASE" >/dev/null 2>&1 && return 0
  local tar="$CACHE/swarm/plugin-base.tar"
  if [ ! -s "$tar" ]; then
    mkdir -p "$CACHE/swarm"
    DOCKER_HOST=unix:///var/run/docker.sock /usr/bin/docker image inspect "$PLUGIN_BASE" >/dev/null 2>&1 ||
      die "$PLUGIN_BASE is not on the system's Docker: run make plugin-base first"
    DOCKER_HOST=unix:///var/run/docker.sock /usr/bin/docker save -o "$tar.new" "$PLUGIN_BASE"
    mv "$tar.new" "$tar"
  fi
  node_docker 1 load -q -i "$tar" >/dev/null
}

# Built and pushed from node 1 (scripts/push-plugin.sh, what `make plugin-push` runs), then on
# every node `docker plugin install` from the registry under the alias the networks name.
plugin() {
  status >/dev/null || die "the swarm is not up: run swarm.sh up"
  local tag ref n
  tag=${TAG:-$(node -p 'require("'"$REPO"'/package.json").version')}
  ref="$REGISTRY/cni-shim:$tag"
  load_plugin_base
  (cd "$REPO" && DOCKER_HOST="unix://$(node_sock 1)" DOCKER="$ROOT28/usr/bin/docker" REGISTRY="$REGISTRY" TAG="$tag" \
    BASE="$PLUGIN_BASE" INSTALL_PACKAGES=0 PLUGIN_DIR="$DATA/plugin-build" bash scripts/push-plugin.sh >&2)
  rm -rf "$DATA/plugin-build"
  for n in $NODES; do
    node_docker "$n" plugin rm -f cni-shim:latest >/dev/null 2>&1 || true
    node_docker "$n" plugin install --grant-all-permissions --alias cni-shim "$ref" >/dev/null
  done
  say "plugin: $ref installed as cni-shim:latest on every node"
}

status() {
  local n ok=0
  if alive "$RUN/registry.pid"; then echo "registry $REGISTRY: pid $(cat "$RUN/registry.pid")"; else echo "registry: down"; ok=1; fi
  for n in $NODES; do
    if alive "$RUN/n$n.dockerd.pid" && alive "$RUN/n$n.containerd.pid"; then
      echo "node $n ($(node_name "$n"), $(node_addr "$n")): dockerd $(cat "$RUN/n$n.dockerd.pid"), swarm $(node_docker "$n" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo '?')"
    else
      echo "node $n: down"
      ok=1
    fi
  done
  [ "$ok" = 0 ] && [ "$(node_docker 1 node ls --format '{{.Status}}' 2>/dev/null | grep -c Ready)" = 3 ]
}

env_lines() {
  local n
  echo "CNI_SHIM_SWARM_HARNESS=$HERE/swarm.sh"
  echo "CNI_SHIM_ENGINE_INSTANCE=$inst"
  echo "CNI_SHIM_SWARM_REGISTRY=$REGISTRY"
  echo "CNI_SHIM_SWARM_LAN=$LAN.0/24"
  echo "CNI_SHIM_SWARM_DATA=$DATA"
  echo "CNI_SHIM_DOCKER_CLI=$ROOT28/usr/bin/docker"
  for n in $NODES; do
    echo "CNI_SHIM_SWARM_NODE$n=$(node_name "$n") $(node_addr "$n") unix://$(node_sock "$n")"
  done
  echo "CNI_SHIM_TEST_IMAGE=$REGISTRY/$TEST_IMAGE"
}

# Every process of the node: those in its mount namespace (dockerd, containerd, shims, plugin
# helpers) and all their descendants (containers and managed plugins live in namespaces of their own).
node_pids() {
  local p
  [ "$(stat -f -c %T "$RUN/n$1.mnt" 2>/dev/null)" = nsfs ] || return 0
  local -a roots=()
  # -ef (same inode, a builtin test, no fork per process): the process's namespace is the node's.
  for p in /proc/[0-9]*; do
    [[ "$p/ns/mnt" -ef "$RUN/n$1.mnt" ]] && roots+=("${p#/proc/}")
  done
  [ ${#roots[@]} -gt 0 ] || return 0
  # Descendants by parent pid, breadth first.
  ps -e -o pid=,ppid= | awk -v r="${roots[*]}" '
    BEGIN { n = split(r, q, " "); for (i = 1; i <= n; i++) keep[q[i]] = 1 }
    { parent[$1] = $2 }
    END { do { more = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; more = 1 } } while (more)
          for (p in keep) print p }'
}

stop_node() {
  local n=$1 pids
  if alive "$RUN/n$n.dockerd.pid"; then
    # TERM first: dockerd stops its containers and plugins while it still can.
    kill -TERM "$(cat "$RUN/n$n.dockerd.pid")" 2>/dev/null || true
    for _ in $(seq 1 100); do alive "$RUN/n$n.dockerd.pid" || break; sleep 0.2; done
  fi
  pids=$(node_pids "$n")
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086 # one pid per word
    kill -9 $pids 2>/dev/null || true
    for _ in $(seq 1 100); do [ -n "$(node_pids "$n")" ] || break; sleep 0.1; done
  fi
  rm -f "$RUN/n$n.dockerd.pid" "$RUN/n$n.containerd.pid"
  # The cgroups dockerd made under its --cgroup-parent (in each v1 hierarchy, or the v2 one),
  # deepest first, once empty.
  local cg
  for cg in /sys/fs/cgroup/"$(node_ns "$n")" /sys/fs/cgroup/*/"$(node_ns "$n")"; do
    [ ! -d "$cg" ] || find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

down() {
  local n
  for n in $NODES; do stop_node "$n"; done
  if alive "$RUN/registry.pid"; then kill -TERM "$(cat "$RUN/registry.pid")" 2>/dev/null || true; sleep 0.3; fi
  if alive "$RUN/registry.pid"; then kill -9 "$(cat "$RUN/registry.pid")" 2>/dev/null || true; fi
  # The namespaces die with their last process and the nsfs bind mounts that keep them.
  for n in $NODES; do
    umount "$RUN/n$n.mnt" 2>/dev/null || true
    umount "$RUN/n$n.uts" 2>/dev/null || true
    [ ! -e "/run/netns/$(node_ns "$n")" ] || ip netns del "$(node_ns "$n")"
  done
  [ ! -e "/run/netns/$switch_ns" ] || ip netns del "$switch_ns" # its bridge and the veths go with it
  ! mountpoint -q "$RUN" || umount "$RUN"
  rm -rf "$RUN" "$DATA"
}

kill_dockerd() {
  local n=$1 pid
  alive "$RUN/n$n.dockerd.pid" || return 0
  pid=$(cat "$RUN/n$n.dockerd.pid")
  kill -9 "$pid"
  for _ in $(seq 1 300); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
  rm -f "$RUN/n$n.dockerd.pid"
}

node_arg() { case "${1:-}" in 1 | 2 | 3) echo "$1" ;; *) die "node: 1, 2 or 3" ;; esac; }

case "${1:-}" in
  up) up ;;
  plugin) plugin ;;
  down) down ;;
  status) status ;;
  env) env_lines ;;
  kill) kill_dockerd "$(node_arg "${2:-}")" ;;
  start) n=$(node_arg "${2:-}"); start_containerd "$n"; start_dockerd "$n" ;;
  run)
    n=$(node_arg "${2:-}")
    shift 2
    [ "${1:-}" = -- ] && shift
    [ $# -gt 0 ] || die "run: no command"
    # exec all the way down: the caller's pid is CMD's, so that a signal to it reaches CMD.
    mapfile -t enter < <(enter_node "$n")
    [ ${#enter[@]} -gt 0 ] || exit 1
    exec "${enter[@]}" --wd="$PWD" env DOCKER_HOST=unix:///run/docker.sock PATH="$ROOT28/usr/bin:$PATH" "$@"
    ;;
  with)
    shift
    [ "${1:-}" = -- ] && shift
    [ $# -gt 0 ] || die "with: no command"
    trap down EXIT
    up
    plugin
    mapfile -t envs < <(env_lines)
    rc=0
    env "${envs[@]}" "$@" || rc=$?
    exit $rc
    ;;
  *) die "usage: swarm.sh up|plugin|down|status|env|kill N|start N|run N -- CMD|with -- CMD" ;;
esac
