#!/usr/bin/env bash
# `make install` / `make uninstall`: cni-shim as a plain program with a systemd unit.
#   $LIBDIR/cni-shim/         the built program, production node_modules, embedded configs
#   $BINDIR/cni-shim          wrapper running it with $NODE
#   $UNITDIR/cni-shim.service systemd unit (Before=docker.service, Restart=on-failure)
#   $SYSCONFDIR/default/cni-shim   settings, all commented out (kept when it exists or was edited)
#   $LIBDIR/tmpfiles.d/cni-shim.conf  cni-shim's default host dirs
# All under $DESTDIR when set (staging; then systemctl is left alone).
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:?usage: install.sh install|uninstall}
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
BINDIR=${BINDIR:-$PREFIX/bin}
LIBDIR=${LIBDIR:-$PREFIX/lib}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-/etc/systemd/system}
NODE=${NODE:-$(command -v node || true)}
app="$LIBDIR/cni-shim"

have_systemd() { [ -z "$DESTDIR" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; }

case "$action" in
install)
  [ -n "$NODE" ] || { echo "install: node not found; set NODE=/path/to/node" >&2; exit 1; }
  [ -f dist/cli/main.js ] || { echo "install: dist/ is missing: run make build" >&2; exit 1; }
  [ -d node_modules ] || { echo "install: node_modules is missing: run npm ci" >&2; exit 1; }
  rm -rf "$DESTDIR$app.new"
  mkdir -p "$DESTDIR$app.new"
  cp -a dist plugin-config package.json package-lock.json node_modules "$DESTDIR$app.new/"
  # dist/scripts and dist/src are the soak's, fuzz's and bench's build (tsconfig.scripts.json): not the program's.
  rm -rf "$DESTDIR$app.new/dist/scripts" "$DESTDIR$app.new/dist/src"
  (cd "$DESTDIR$app.new" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >/dev/null)
  chmod 0755 "$DESTDIR$app.new/dist/cli/main.js"
  rm -rf "$DESTDIR$app"
  mv "$DESTDIR$app.new" "$DESTDIR$app"

  mkdir -p "$DESTDIR$BINDIR"
  # serve runs with the node flags of packaging/serve-node-flags (a smaller footprint for a daemon).
  flags=$(cat packaging/serve-node-flags)
  # shellcheck disable=SC2016 # "$1" and "$@" are the wrapper's own arguments, written as they are
  printf '#!/bin/sh\nif [ "$1" = serve ]; then exec %s %s %s "$@"; fi\nexec %s %s "$@"\n' "$NODE" "$flags" "$app/dist/cli/main.js" "$NODE" "$app/dist/cli/main.js" >"$DESTDIR$BINDIR/cni-shim"
  chmod 0755 "$DESTDIR$BINDIR/cni-shim"

  mkdir -p "$DESTDIR$UNITDIR"
  sed -e "s|@BINDIR@|$BINDIR|g" -e "s|@SYSCONFDIR@|$SYSCONFDIR|g" packaging/cni-shim.service.in >"$DESTDIR$UNITDIR/cni-shim.service"
  chmod 0644 "$DESTDIR$UNITDIR/cni-shim.service"

  mkdir -p "$DESTDIR$SYSCONFDIR/default"
  if [ -e "$DESTDIR$SYSCONFDIR/default/cni-shim" ]; then
    echo "install: keeping $SYSCONFDIR/default/cni-shim"
  else
    "$NODE" scripts/settings-defaults.mjs >"$DESTDIR$SYSCONFDIR/default/cni-shim"
    chmod 0644 "$DESTDIR$SYSCONFDIR/default/cni-shim"
  fi
  install -D -m 0644 packaging/cni-shim.tmpfiles "$DESTDIR$LIBDIR/tmpfiles.d/cni-shim.conf"

  echo "install: cni-shim in $DESTDIR$app, $DESTDIR$BINDIR/cni-shim, $DESTDIR$UNITDIR/cni-shim.service"
  if have_systemd; then
    systemctl daemon-reload
    echo "install: start it with: systemctl enable --now cni-shim"
  fi
  ;;
uninstall)
  if have_systemd && systemctl list-unit-files cni-shim.service >/dev/null 2>&1; then
    systemctl disable --now cni-shim.service >/dev/null 2>&1 || true
  fi
  rm -rf "$DESTDIR$app" "$DESTDIR$app.new"
  rm -f "$DESTDIR$BINDIR/cni-shim" "$DESTDIR$UNITDIR/cni-shim.service" "$DESTDIR$LIBDIR/tmpfiles.d/cni-shim.conf"
  conf="$DESTDIR$SYSCONFDIR/default/cni-shim"
  if [ -e "$conf" ]; then
    if [ -n "$NODE" ] && [ -f dist/settings.js ] && "$NODE" scripts/settings-defaults.mjs | cmp -s - "$conf"; then
      rm -f "$conf"
    else
      echo "uninstall: keeping $SYSCONFDIR/default/cni-shim (edited)"
    fi
  fi
  if have_systemd; then systemctl daemon-reload || true; fi
  echo "uninstall: removed cni-shim (state in /var/lib/cni-shim and /var/lib/cni is kept)"
  ;;
*)
  echo "usage: install.sh install|uninstall" >&2
  exit 2
  ;;
esac
