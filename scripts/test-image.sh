#!/usr/bin/env bash
# Builds the probe/test image from the host's busybox-static (no registry is reachable).
set -euo pipefail
name=${1:-cni-shim-busybox:latest}
if docker image inspect "$name" >/dev/null 2>&1; then exit 0; fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/www"
cp /bin/busybox "$dir/bin/busybox"
chroot "$dir" /bin/busybox --install -s /bin
echo "root:x:0:0:root:/:/bin/sh" > "$dir/etc/passwd"
echo "root:x:0:" > "$dir/etc/group"
echo "cni-shim test page" > "$dir/www/index.html"
tar -C "$dir" -c . | docker import -c 'CMD ["/bin/sh"]' - "$name" >/dev/null
echo "test-image: built $name"
