#!/usr/bin/env bash
# Builds a local stand-in for the Dockerfile's default base (node:20-bookworm-slim) when no image
# registry is reachable: a minimal Debian from this machine's own apt mirror (debootstrap) with
# the packages the plugin needs already in it (iptables, iproute2, containernetworking-plugins),
# plus this machine's Node (and npm) in /usr/local like the official image. Build the plugin on
# it with INSTALL_PACKAGES=0:
#   scripts/plugin-base.sh cni-shim-base:local
#   make plugin BASE=cni-shim-base:local INSTALL_PACKAGES=0
# Reuses an existing image of that name (remove it to rebuild).
set -euo pipefail
name=${1:-cni-shim-base:local}
DOCKER=${DOCKER:-docker}
if "$DOCKER" image inspect "$name" >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "plugin-base: must run as root (debootstrap)" >&2; exit 1; fi

node_bin=$(command -v node) || { echo "plugin-base: node is not installed" >&2; exit 1; }
node_major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then echo "plugin-base: $node_bin is Node $node_major; cni-shim needs Node 20 or later" >&2; exit 1; fi

# shellcheck source=/dev/null # the build machine's own, read at run time
. /etc/os-release
suite=${SUITE:-${VERSION_CODENAME:-bookworm}}
# The mirror this machine's apt already uses for Debian itself (deb822 or one-line format).
mirror=${MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(awk -v s="$suite" '
    /^URIs:/ { uri = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) found = uri }
    END { if (found) print found }' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
fi
if [ -z "$mirror" ]; then
  mirror=$(awk -v s="$suite" '$1 == "deb" && $0 !~ /\[/ && $3 == s { print $2; exit }
    $1 == "deb" && $0 ~ /\]/ { for (i = 2; i <= NF; i++) if ($i ~ /\]$/) { if ($(i + 2) == s) { print $(i + 1); exit } } }' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n1)
fi
if [ -z "$mirror" ]; then
  echo "plugin-base: found no apt source for $suite in /etc/apt; pass MIRROR=<your Debian mirror URL>" >&2
  exit 1
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "plugin-base: installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
fi

dir=$(mktemp -d /var/tmp/cni-shim-base.XXXXXX)
cleanup() {
  # A failed debootstrap can leave /proc or /sys mounted in the target: never descend into them.
  awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf --one-file-system "$dir"
}
trap cleanup EXIT
echo "plugin-base: debootstrap $suite from $mirror (about a minute)"
if ! debootstrap --variant=minbase --include=iptables,iproute2,containernetworking-plugins,ca-certificates \
  "$suite" "$dir" "$mirror" >"$dir.log" 2>&1; then
  tail -n 30 "$dir.log" >&2
  echo "plugin-base: debootstrap failed (full log: $dir.log)" >&2
  exit 1
fi
rm -f "$dir.log"

install -D -m 0755 "$node_bin" "$dir/usr/local/bin/node"
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")") 2>/dev/null || npm_dir=
if [ -n "$npm_dir" ] && [ -f "$npm_dir/package.json" ]; then
  mkdir -p "$dir/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$dir/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$dir/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$dir/usr/local/bin/npx"
fi
# What the slim image leaves out as well: package caches and lists.
rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/var/log/*.log

tar -C "$dir" -c . | "$DOCKER" import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'CMD ["node"]' - "$name" >/dev/null
echo "plugin-base: built $name (Debian $suite, Node $("$node_bin" --version), iptables, iproute2, CNI plugins)"
