#!/usr/bin/env bash
# make test: the whole suite on the system's Docker 20.10, then the driver's end-to-end scenarios
# on Debian trixie's Docker 26.1 and sid's Docker 28.5 (scripts/engine.sh fetches and runs them
# beside the system's), the parity matrix and the driver's scenarios again on 20.10 with CNI
# plugins 1.9.1 (CNI19_FILES), and a summary per engine. ENGINES=20 (or "20 28") runs fewer.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
IMAGE=${CNI_SHIM_TEST_IMAGE:-cni-shim-busybox:latest}
if [ "${SUITE:-test}" = engines ]; then ENGINES=${ENGINES:-26 28}; else ENGINES=${ENGINES:-20 26 28}; fi
OUT=build/test-results
mkdir -p "$OUT"
rm -f "$OUT"/*.json
SUITE=${SUITE:-test}

# What runs on the other engines. `make test` (SUITE=test): the whole suite on 20, and on 28 and 26
# what a user does (lifecycle, -p, --ip/--mac-address, DNS, connect/disconnect, restart) plus, on
# 28, the short kill -9 soak and cni-shim networks beside Docker-managed ones (mixed-networks).
# `make test-engines` (SUITE=engines): the heavier rest on 26 and 28:
# a dockerd crash, one compare, the short soak and the forward chain under FORWARD policy DROP
# on 26, the parity matrix, the managed plugin's in-sandbox Join and its upgrade with containers
# running on 28, and on both the managed plugin installed from a registry (all but those two run
# on 20 in `make test`). ENGINE_FILES replaces the file
# list of the other engines.
SUITE=${SUITE:-test}
USER_FILES="test/e2e/engine-scenario.test.ts test/e2e/driver-lifecycle.test.ts test/e2e/driver-default-network.test.ts test/e2e/published-ports.test.ts test/e2e/null-ipam.test.ts"
HEAVY_FILES="test/e2e/dockerd-restart.test.ts test/e2e/compare.test.ts"
# CNI plugins 1.9.1 (Debian sid's, scripts/cni-plugins.sh) beside the system's 1.1.1: `make test`
# runs these files again on Docker 20.10 with CNI_SHIM_CNI_PLUGINS=1.9 (the lists in their 1.1.0
# form). CNI19=0 leaves the pass out; CNI19_FILES replaces the list.
CNI19_FILES=${CNI19_FILES:-"test/e2e/parity-matrix.test.ts test/e2e/cni-versions.test.ts test/e2e/driver-lifecycle.test.ts test/e2e/driver-default-network.test.ts test/e2e/published-ports.test.ts test/e2e/null-ipam.test.ts"}
# The managed plugin pushed to a registry in the engine's namespace and installed from it.
PLUGIN_FILES="test/e2e/managed-plugin.test.ts"
files_for() {
  [ -n "${ENGINE_FILES:-}" ] && { echo "$ENGINE_FILES"; return; }
  case "$SUITE/$1" in
    test/20 | engines/20) echo "" ;; # everything
    test/28) echo "$USER_FILES test/e2e/soak.test.ts test/e2e/mixed-networks.test.ts" ;;
    test/26) echo "$USER_FILES" ;;
    # The managed plugin upgraded while containers run (a second push of the same rootfs): on 28 only.
    engines/28) echo "$HEAVY_FILES test/e2e/parity-matrix.test.ts test/e2e/managed-plugin-sandbox.test.ts $PLUGIN_FILES test/e2e/managed-plugin-upgrade.test.ts" ;;
    engines/26) echo "$HEAVY_FILES test/e2e/soak.test.ts test/e2e/forward-accept.test.ts $PLUGIN_FILES" ;;
  esac
}

cat <<EOF
make $([ "$SUITE" = engines ] && echo test-engines || echo test): note before it starts
 - It kill -9s and restarts the system's dockerd (crash tests and the short soak). Containers
   without a restart policy that run on this machine's Docker are stopped by that.
 - It starts Docker 26.1 and 28.5 beside the system's (scripts/engine.sh: own network namespace,
   data-root and containerd) and removes them at the end.
EOF

declare -A VERSION SECONDS_OF RC
started_engines=()
# shellcheck disable=SC2317 # run by the EXIT trap below
stop_engines() { for e in "${started_engines[@]}"; do [ -z "$e" ] || bash scripts/engine.sh down "$e" || true; done; }
trap stop_engines EXIT

for e in $ENGINES; do
  echo
  echo "=============== Docker $e ==============="
  t0=$(date +%s)
  if ! bash scripts/engine.sh up "$e"; then RC[$e]=1; SECONDS_OF[$e]=0; VERSION[$e]="did not start"; continue; fi
  [ "$e" = 20 ] || started_engines+=("$e")
  VERSION[$e]=$(bash scripts/engine.sh version "$e")
  echo "engine $e: Docker ${VERSION[$e]}"
  bash scripts/engine.sh run "$e" -- bash scripts/test-image.sh "$IMAGE" || { RC[$e]=1; continue; }
  files=$(files_for "$e")
  # Docker 20 runs every file but the managed plugin's in-sandbox Join, which needs 28, its
  # upgrade, a second push of the plugin, which one engine is enough for (both in engines/28), and
  # the swarm's, which needs the 3-node swarm of scripts/swarm.sh (make test-swarm).
  [ -n "$files" ] || files="--exclude test/e2e/managed-plugin-sandbox.test.ts --exclude test/e2e/managed-plugin-upgrade.test.ts --exclude test/e2e/swarm.test.ts"
  # shellcheck disable=SC2086
  bash scripts/engine.sh run "$e" -- env CNI_SHIM_TEST_IMAGE="$IMAGE" \
    npx vitest run $files --reporter=default --reporter=json --outputFile.json="$OUT/$e.json"
  RC[$e]=$?
  # A crashed file can leave the json report missing: that counts as a failure below.
  if [ "$e" != 20 ]; then bash scripts/engine.sh down "$e"; started_engines=("${started_engines[@]/$e/}"); fi
  SECONDS_OF[$e]=$(($(date +%s) - t0))
done

# The 1.9 pass, a row of its own ("20+cni1.9") in the summary.
ROWS=$ENGINES
if [ "$SUITE" = test ] && [[ " $ENGINES " == *" 20 "* ]] && [ "${CNI19:-1}" != 0 ] && [ -z "${ENGINE_FILES:-}" ]; then
  e=20+cni1.9 ROWS="$ENGINES $e"
  echo
  echo "=============== Docker 20, CNI plugins 1.9 ==============="
  t0=$(date +%s)
  if bash scripts/cni-plugins.sh fetch 1.9 >/dev/null; then
    VERSION[$e]="${VERSION[20]:-?} cni $(bash scripts/cni-plugins.sh version 1.9 | cut -d+ -f1)"
    # shellcheck disable=SC2086
    bash scripts/engine.sh run 20 -- env CNI_SHIM_TEST_IMAGE="$IMAGE" CNI_SHIM_CNI_PLUGINS=1.9 \
      npx vitest run $CNI19_FILES --reporter=default --reporter=json --outputFile.json="$OUT/$e.json"
    RC[$e]=$?
  else
    RC[$e]=1
  fi
  SECONDS_OF[$e]=$(($(date +%s) - t0))
fi

echo
echo "=============== summary per engine ==============="
total_pass=0 total_fail=0 worst=0
for e in $ROWS; do
  read -r files pass fail < <(node -e '
    const fs = require("fs");
    try {
      const r = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
      console.log(r.numTotalTestSuites === undefined ? 0 : r.testResults.length, r.numPassedTests, r.numFailedTests + (r.numRuntimeErrorTestSuites || 0));
    } catch { console.log(0, 0, 1); }' "$OUT/$e.json")
  [ "${RC[$e]:-1}" = 0 ] || { [ "$fail" -gt 0 ] || fail=1; worst=1; }
  printf '  Docker %-9s %-22s files %3s  passed %4s  failed %3s  %4s s\n' "$e" "${VERSION[$e]:-?}" "$files" "$pass" "$fail" "${SECONDS_OF[$e]:-0}"
  total_pass=$((total_pass + pass)) total_fail=$((total_fail + fail))
done
# The failed tests by name, last: CI keeps only the tail of what make test prints.
for e in $ROWS; do
  # shellcheck disable=SC2016 # ${...} are the script's JavaScript template literals
  node -e '
    const fs = require("fs");
    let r;
    try { r = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); } catch { console.log(`  Docker ${process.argv[2]}: no report (the run crashed or did not start)`); process.exit(0); }
    for (const f of r.testResults) {
      const file = f.name.replace(process.cwd() + "/", "");
      if (f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed")) console.log(`  Docker ${process.argv[2]}  FAILED ${file}: ${(f.message || "").split("\n")[0]}`);
      for (const a of f.assertionResults) if (a.status === "failed") console.log(`  Docker ${process.argv[2]}  FAILED ${file} > ${a.fullName}\n      ${(a.failureMessages[0] || "").split("\n")[0].slice(0, 300)}`);
    }' "$OUT/$e.json" "$e"
done
echo "$total_pass passed, $total_fail failed"
exit $worst
