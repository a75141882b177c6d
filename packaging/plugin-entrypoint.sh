#!/bin/sh
# Entry point of the managed Docker plugin (plugin-config/config.json), run as root in the
# host's network namespace. Two host details a plugin container hides are fixed first:
#  - Docker mounts /proc/sys read-only in plugins, but CNI plugins write sysctls (portmap sets
#    route_localnet on the bridge, bridge turns on ip_forward): the plugin's own view of
#    /proc/sys is remounted read-write (CAP_SYS_ADMIN, which `ip netns add` needs anyway).
#  - iptables must use the backend the host uses (Docker's own rules tell which): rules of one
#    backend are invisible to the other, and mixing them breaks NAT in confusing ways.
#    CNI_SHIM_IPTABLES_BACKEND=auto (default), nft or legacy.
set -eu

if [ ! -w /proc/sys/net/ipv4/ip_forward ]; then
  mount -o remount,bind,rw /proc/sys || echo "cni-shim plugin: cannot make /proc/sys writable; CNI plugins that set sysctls will fail" >&2
fi

# The staging namespaces `ip netns add` mounts on /run/netns must reach dockerd's mount namespace,
# or they vanish with this plugin's (a disable, an upgrade) and the endpoints made in them can no
# longer be torn down. They do when the host's source of the netns mount (netns.source) is a
# shared mount: then the plugin's /run/netns is a peer of a mount of dockerd's namespace, which
# containerd's shim, this process's parent, shares.
if [ "${1:-}" = serve ] && [ -r "/proc/$PPID/mountinfo" ]; then
  group=$(awk '$5 == "/run/netns" { for (i = 7; $i != "-"; i++) if ($i ~ /^shared:/) g = $i } END { print g }' /proc/self/mountinfo)
  if [ -z "$group" ] || ! awk -v g="$group" '{ for (i = 7; $i != "-"; i++) if ($i == g) f = 1 } END { exit !f }' "/proc/$PPID/mountinfo"; then
    echo "cni-shim plugin: the host's netns mount source (default /run/netns) is not a shared mount; run on the host: mkdir -p /run/netns && mount --bind /run/netns /run/netns && mount --make-shared /run/netns, then docker plugin enable again" >&2
    exit 1
  fi
fi

backend=${CNI_SHIM_IPTABLES_BACKEND:-auto}
if [ "$backend" = auto ]; then
  count() { ("$1" 2>/dev/null || true) | grep -c '^-' || true; }
  legacy=$(count iptables-legacy-save)
  nft=$(count iptables-nft-save)
  backend=nft
  [ "$legacy" -gt "$nft" ] && backend=legacy
fi
case "$backend" in
  nft | legacy)
    for tool in iptables ip6tables; do
      if [ -x "/usr/sbin/$tool-$backend" ]; then update-alternatives --quiet --set "$tool" "/usr/sbin/$tool-$backend" || true; fi
    done
    ;;
  *) echo "cni-shim plugin: CNI_SHIM_IPTABLES_BACKEND must be auto, nft or legacy, not \"$backend\"" >&2; exit 2 ;;
esac

# serve runs with the node flags of packaging/serve-node-flags (a smaller footprint for a daemon).
if [ "${1:-}" = serve ]; then
  # shellcheck disable=SC2046 # the flags are words
  exec node $(cat /opt/cni-shim/serve-node-flags) /opt/cni-shim/dist/cli/main.js "$@"
fi
exec node /opt/cni-shim/dist/cli/main.js "$@"
