# shellcheck shell=bash
# Sourced by scripts/engine.sh and scripts/cni-plugins.sh: Debian packages of another suite
# (trixie, sid) fetched with apt-get download through an apt configuration of their own under
# $1 (lists, archives, sources), so that the system's apt state is untouched and nothing is
# installed. The caller unpacks the .debs with dpkg-deb -x.

# The Debian mirror the system's apt uses (deb822 .sources or one-line lists); its host is never
# written here, only read from the system's configuration.
debian_mirror() {
  local uri
  uri=$(awk '/^URIs:/ { u = $2 } /^Suites:/ && / bookworm( |$)/ { print u; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 ~ / bookworm / { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  [ -n "$uri" ] || { echo "no Debian mirror found in /etc/apt/sources.list{,.d}: packages of other suites are fetched from the mirror the system uses" >&2; return 1; }
  echo "$uri"
}

# debian_download APT_DIR SUITE DEST_DIR PACKAGE...: the suite's lists (updated), then the .debs
# of PACKAGE... into DEST_DIR (emptied of .debs first).
debian_download() {
  local apt=$1 s=$2 dest=$3 mirror
  shift 3
  mirror=$(debian_mirror) || return 1
  mkdir -p "$apt/lists/$s/partial" "$apt/archives/partial" "$apt/etc/sources.list.d" "$apt/etc/preferences.d" "$dest"
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' "$mirror" "$s" >"$apt/etc/sources.list.$s"
  local -a opts=(-o "Dir::Etc::SourceList=$apt/etc/sources.list.$s" -o "Dir::Etc::SourceParts=$apt/etc/sources.list.d"
    -o "Dir::State::Lists=$apt/lists/$s" -o "Dir::Cache=$apt" -o "Dir::Cache::Archives=$apt/archives"
    -o "Dir::Etc::Preferences=$apt/etc/preferences" -o "Dir::Etc::PreferencesParts=$apt/etc/preferences.d"
    -o "APT::Sandbox::User=root" -o "Acquire::Retries=3")
  apt-get -qq "${opts[@]}" update || return 1
  rm -f "$dest"/*.deb
  (cd "$dest" && apt-get -qq "${opts[@]}" download "$@")
}
