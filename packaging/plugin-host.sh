# shellcheck shell=sh
# The managed plugin's host paths (sourced by plugin-entrypoint.sh; test/unit/plugin-host.test.ts
# runs these functions against a fake host). The plugin mounts the host's / at $HOST (rbind,
# rshared: plugin-config/config.json) instead of one mount per host path, so that nothing has to
# exist on the host before `docker plugin enable`: the settings CNI_SHIM_HOST_* name the paths,
# missing directories are made here, and each is bound to the fixed path inside the plugin that
# serve uses (CNI_SHIM_STATE_DIR ...). What cannot be made fails the start with one line.
HOST=${HOST:-/host}

host_fail() {
  echo "cni-shim plugin: $*" >&2
  exit 1
}

# host_path PATH: PATH as the host resolves it (no symlinks left), without the $HOST prefix. An
# absolute symlink is the host's (Debian's /var/run -> /run), so it is followed under $HOST, a
# component at a time; components that do not exist yet are kept as they are.
host_path() {
  case $1 in /*) ;; *) return 1 ;; esac
  rest=${1#/} out='' hops=0
  while [ -n "$rest" ]; do
    comp=${rest%%/*}
    case $rest in */*) rest=${rest#*/} ;; *) rest= ;; esac
    case $comp in
      '' | .) continue ;;
      ..) out=${out%/*}; continue ;;
    esac
    if [ -L "$HOST$out/$comp" ]; then
      hops=$((hops + 1))
      [ "$hops" -le 40 ] || return 1
      link=$(readlink "$HOST$out/$comp")
      case $link in /*) out= ;; esac
      rest=${link#/}${rest:+/$rest}
    else
      out=$out/$comp
    fi
  done
  echo "${out:-/}"
}

# bind_host_dir SETTING HOST_PATH IN_PLUGIN [ro]: the host dir, made when missing, bound at IN_PLUGIN.
bind_host_dir() {
  p=$(host_path "$2") || host_fail "$1=$2: not an absolute path on the host (or a symlink loop)"
  if [ ! -d "$HOST$p" ]; then
    mode=755
    [ "$1" = CNI_SHIM_HOST_STATE_DIR ] && mode=700
    { mkdir -p "$HOST$p" && chmod "$mode" "$HOST$p"; } 2>/dev/null || host_fail "$1=$2: cannot create it on the host; create it there (mkdir -p $2), or set $1 to a directory that exists"
  fi
  mkdir -p "$3"
  mount --rbind "$HOST$p" "$3" || host_fail "$1=$2: cannot bind it at $3"
  if [ "${4:-}" = ro ]; then mount -o remount,bind,ro "$3" || host_fail "$1=$2: cannot make $3 read-only"; fi
}

# link_host_socket SETTING HOST_PATH IN_PLUGIN: a symlink to the socket under $HOST, followed at
# each connect (a bind of the socket file would keep the old one when dockerd makes a new one).
link_host_socket() {
  p=$(host_path "$2") || host_fail "$1=$2: not an absolute path on the host (or a symlink loop)"
  [ -S "$HOST$p" ] || host_fail "$1=$2: no socket there on the host; set it to the API socket of the engine that runs this plugin (docker plugin set PLUGIN $1=PATH while it is disabled)"
  mkdir -p "$(dirname "$3")"
  ln -sfn "$HOST$p" "$3"
}

# netns_shared DIR SETTING_VALUE SELF_MOUNTINFO PARENT_MOUNTINFO: the staging namespaces that
# `ip netns add` mounts on DIR must reach dockerd's mount namespace, or they vanish with this
# plugin's (a disable, an upgrade) and the endpoints made in them can no longer be torn down. They
# do when the host's netns dir is on a shared mount: then DIR's mount is a peer of a mount of
# dockerd's namespace, which containerd's shim, this process's parent, shares.
netns_shared() {
  group=$(awk -v d="$1" '$5 == d { for (i = 7; $i != "-"; i++) if ($i ~ /^shared:/) g = $i } END { print g }' "$3")
  if [ -z "$group" ] || ! awk -v g="$group" '{ for (i = 7; $i != "-"; i++) if ($i == g) f = 1 } END { exit !f }' "$4"; then
    host_fail "the host's netns dir $2 (CNI_SHIM_HOST_NETNS_DIR) is not a shared mount, so staging namespaces would vanish with the plugin; run on the host: mount --bind $2 $2 && mount --make-shared $2, then docker plugin enable again"
  fi
}

# own_nsfs_copies SELF_MOUNTINFO PARENT_MOUNTINFO: the namespace mounts under $HOST (Docker's
# sandbox keys, others' namespaces) copied when this mount namespace was made that are peers of no
# mount of dockerd's namespace. Docker 20.10 never removes a sandbox key's file, so no unmount or
# unlink on the host reaches such a copy: it would keep the container's namespace (and what is in
# it) alive until the plugin stops. Copies that are peers follow the host's unmounts, and an
# unmount here would reach the host: those stay.
own_nsfs_copies() {
  awk -v h="$HOST/" 'NR == FNR { for (i = 7; $i != "-"; i++) if ($i ~ /^shared:/) host[$i] = 1; next }
    index($5, h) == 1 {
      g = ""
      for (i = 7; $i != "-"; i++) if ($i ~ /^shared:/) g = $i
      if ($(i + 1) == "nsfs" && (g == "" || !(g in host))) print $5
    }' "$2" "$1"
}

# The host paths of the settings, bound (or linked) where serve looks for them.
prepare_host_paths() {
  mountpoint -q "$HOST" || host_fail "$HOST is not mounted: the plugin's config.json must bind the host's / there"
  # The binds below go into the plugin's root mount: private, so that they stay in this namespace
  # (Docker makes the root rshared for the propagated mount, and it may be a peer of the host's).
  mount --make-private /
  bind_host_dir CNI_SHIM_HOST_STATE_DIR "${CNI_SHIM_HOST_STATE_DIR:-/var/lib/cni-shim}" "$CNI_SHIM_STATE_DIR"
  bind_host_dir CNI_SHIM_HOST_CACHE_DIR "${CNI_SHIM_HOST_CACHE_DIR:-/var/lib/cni}" "$CNI_SHIM_CACHE_DIR"
  bind_host_dir CNI_SHIM_HOST_CONF_DIR "${CNI_SHIM_HOST_CONF_DIR:-/etc/cni/net.d}" "$CNI_SHIM_CONF_DIR" ro
  bind_host_dir CNI_SHIM_HOST_NETNS_DIR "${CNI_SHIM_HOST_NETNS_DIR:-/run/netns}" /run/netns
  link_host_socket CNI_SHIM_HOST_DOCKER_SOCKET "${CNI_SHIM_HOST_DOCKER_SOCKET:-/var/run/docker.sock}" "$CNI_SHIM_DOCKER_SOCKET"
  [ -r "/proc/$PPID/mountinfo" ] || return 0
  netns_shared /run/netns "${CNI_SHIM_HOST_NETNS_DIR:-/run/netns}" /proc/self/mountinfo "/proc/$PPID/mountinfo"
  # $HOST's mounts are copies of dockerd's, and its shared ones are peers of dockerd's: an unmount
  # under such a parent reaches dockerd's namespace at the same place (an engine lost its own
  # network namespace file that way). A slave still gets the host's new mounts, and sends nothing.
  mount --make-rslave "$HOST"
  own_nsfs_copies /proc/self/mountinfo "/proc/$PPID/mountinfo" | sort -r | while read -r m; do umount -l "$m" || true; done
}
