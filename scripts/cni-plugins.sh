#!/usr/bin/env bash
# The CNI plugin sets the tests run against, side by side:
#   1.1 (or system)  the system's containernetworking-plugins (bookworm's 1.1.1) in /usr/lib/cni
#   1.9              Debian sid's containernetworking-plugins 1.9.x, fetched with apt-get download
#                    through an apt configuration of its own (scripts/lib/debian-apt.sh) and
#                    unpacked with dpkg-deb -x under $CNI_SHIM_PLUGINS_CACHE/1.9 (nothing installed)
#
#   cni-plugins.sh fetch SET   fetch when missing (idempotent), then print the plugin directory
#   cni-plugins.sh dir SET     print the plugin directory; fails when SET is not fetched
#   cni-plugins.sh version SET the package version of the set (e.g. 1.9.1+ds1-1)
# serve's --cni-path takes the printed directory; the tests pick the set with CNI_SHIM_CNI_PLUGINS.
set -euo pipefail

CACHE=${CNI_SHIM_PLUGINS_CACHE:-/var/cache/cni-shim-plugins}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/debian-apt.sh
. "$HERE/lib/debian-apt.sh"

die() { echo "cni-plugins.sh: $*" >&2; exit 1; }

set_name=${2:-}
case "$set_name" in
  system | 1.1) set_name=1.1 ;;
  1.9) ;;
  *) die "usage: cni-plugins.sh fetch|dir|version 1.1|system|1.9" ;;
esac
suite() { case "$1" in 1.9) echo sid ;; esac; }

dir_of() { if [ "$1" = 1.1 ]; then echo /usr/lib/cni; else echo "$CACHE/$1/root/usr/lib/cni"; fi; }
complete() { local d; d=$(dir_of "$1"); [ -x "$d/bridge" ] && [ -x "$d/host-local" ] && [ -x "$d/portmap" ] && [ -x "$d/loopback" ]; }

fetch() {
  complete "$set_name" && return 0
  [ "$set_name" = 1.1 ] && die "no plugins in /usr/lib/cni: make deps installs containernetworking-plugins"
  local base="$CACHE/$set_name" v
  mkdir -p "$base"
  # One fetch at a time (tests and helpers may ask together); the second finds it done.
  exec 9>"$base.lock"
  flock 9
  complete "$set_name" && return 0
  echo "cni-plugins.sh: fetching CNI plugins $set_name (Debian $(suite "$set_name") containernetworking-plugins)" >&2
  debian_download "$CACHE/apt" "$(suite "$set_name")" "$base/debs" containernetworking-plugins >&2 || die "apt-get download failed"
  v=$(dpkg-deb -f "$base"/debs/containernetworking-plugins_*.deb Version)
  # Debian sid moves on: a set named 1.9 that is not 1.9 would test something else under its name.
  [[ "$v" == "$set_name".* ]] || die "Debian $(suite "$set_name") now has containernetworking-plugins $v, not $set_name.x: update the set in scripts/cni-plugins.sh"
  rm -rf "$base/root.new" && mkdir -p "$base/root.new"
  dpkg-deb -x "$base"/debs/containernetworking-plugins_*.deb "$base/root.new"
  rm -rf "$base/root" && mv "$base/root.new" "$base/root"
  complete "$set_name" || die "the fetched package has no bridge, host-local, portmap or loopback in $(dir_of "$set_name")"
}

case "${1:-}" in
  fetch) fetch && dir_of "$set_name" ;;
  dir) complete "$set_name" || die "CNI plugins $set_name are not fetched: run scripts/cni-plugins.sh fetch $set_name"; dir_of "$set_name" ;;
  version)
    if [ "$set_name" = 1.1 ]; then dpkg-query -W -f='${Version}\n' containernetworking-plugins; else dpkg-deb -f "$CACHE/$set_name"/debs/containernetworking-plugins_*.deb Version; fi
    ;;
  *) die "unknown command ${1:-}: fetch, dir or version" ;;
esac
