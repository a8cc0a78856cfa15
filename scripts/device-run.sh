#!/usr/bin/env bash
# Runs on the GPU machine (device tool), from the repository root, with .device carried:
#   bash scripts/device-run.sh [steps...]      steps: info test bench:<name>[:args] sanitize shell:<cmd>
# e.g.  bash scripts/device-run.sh info test bench:ntt bench:ckks:--backend,cuda
# Unpacks Node and the app into /tmp/tensafe, points the library at the carried addon, runs
# each step with its log, and leaves in $OUT (at most 8 files come back): results/*.json (one
# per benchmark), logs.tar.xz (every step's full log) and summary.txt.
set -uo pipefail
src="$(pwd)"
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT/results"; logs=/tmp/tensafe-logs; rm -rf "$logs"; mkdir -p "$logs"
app=/tmp/tensafe; mkdir -p "$app/bin"
if [ ! -x "$app/bin/node" ]; then xz -dc .device/node.xz > "$app/bin/node" && chmod +x "$app/bin/node"; fi
tar -xJf .device/nm.tar.xz -C "$app"; tar -xJf .device/app.tar.xz -C "$app"
mkdir -p "$app/native" "$app/build/native/Release"   # packageRoot() looks for native/
xz -dc .device/tensafe.node.xz > "$app/build/native/Release/tensafe.node"
export PATH="$app/bin:$app/node_modules/.bin:$PATH"
export TENSAFE_COMMIT="$(cat .device/COMMIT)"
export TENSAFE_RESULTS_DIR="$OUT/results"
cd "$app"
status=0
[ $# -gt 0 ] || set -- info test
for step in "$@"; do
  name="${step%%:*}"; arg="${step#*:}"; [ "$arg" = "$step" ] && arg=""
  log="$logs/${name}${arg:+-$(echo "$arg" | tr -c 'A-Za-z0-9_.-' '_' | cut -c1-40)}.log"
  echo "=== $step" | tee -a "$OUT/summary.txt"
  case "$name" in
    info)  node dist/cli/main.js info 2>&1 | tee "$log"; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv 2>&1 | tee -a "$log" ;;
    test)  TENSAFE_REQUIRE_GPU=1 node scripts/test.mjs --gpu ${arg//,/ } > "$log" 2>&1; rc=$?; tail -25 "$log"; [ $rc -eq 0 ] || status=1 ;;
    sanitize) compute-sanitizer --tool memcheck --print-limit 20 node node_modules/vitest/vitest.mjs run ${arg:-test/gpu} > "$log" 2>&1; rc=$?; grep -E "ERROR SUMMARY|Tests|passed|failed" "$log" | tail -8; [ $rc -eq 0 ] || status=1 ;;
    bench) b="${arg%%:*}"; rest="${arg#*:}"; [ "$rest" = "$arg" ] && rest=""; node dist/cli/main.js bench "$b" ${rest//,/ } > "$log" 2>&1; rc=$?; tail -40 "$log"; [ $rc -eq 0 ] || status=1 ;;
    shell) bash -c "$arg" > "$log" 2>&1; rc=$?; tail -30 "$log"; [ $rc -eq 0 ] || status=1 ;;
    *) echo "device-run: unknown step '$step'"; status=1 ;;
  esac
  # Re-tar after every step so a run stopped at its time limit still returns its logs.
  tar -cJf "$OUT/logs.tar.xz" -C "$logs" . 2>/dev/null
done
tar -cJf "$OUT/logs.tar.xz" -C "$logs" . 2>/dev/null
echo "device-run: exit $status" | tee -a "$OUT/summary.txt"
exit $status
