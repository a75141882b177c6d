#!/bin/sh
# Entry point of the managed Docker plugin (plugin-config/config.json), run as root in the
# host's network namespace. Three host details a plugin container hides are fixed first:
#  - Docker mounts /proc/sys read-only in plugins, but CNI plugins write sysctls (portmap sets
#    route_localnet on the bridge, bridge turns on ip_forward): the plugin's own view of
#    /proc/sys is remounted read-write (CAP_SYS_ADMIN, which `ip netns add` needs anyway).
#  - iptables must use the backend the host uses (Docker's own rules tell which): rules of one
#    backend are invisible to the other, and mixing them breaks NAT in confusing ways.
#    CNI_SHIM_IPTABLES_BACKEND=auto (default), nft or legacy.
#  - the host paths it keeps its state in, which it reaches through the host's / (plugin-host.sh).
set -eu

if [ ! -w /proc/sys/net/ipv4/ip_forward ]; then
  mount -o remount,bind,rw /proc/sys || echo "cni-shim plugin: cannot make /proc/sys writable; CNI plugins that set sysctls will fail" >&2
fi

# The host paths (CNI_SHIM_HOST_*): made when missing and bound where serve looks (plugin-host.sh).
if [ "${1:-}" = serve ]; then
  # shellcheck source=packaging/plugin-host.sh
  . /opt/cni-shim/plugin-host.sh
  prepare_host_paths
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
