#!/usr/bin/env bash
# Issue 13 (decode at the memory floor, batched prefill) in ONE device call, ~5 minutes.
# Here first: npm run build:native && npm run device:pack   (the addon is built here, sm_90)
# Then on the device tool, carry [".device"], from the repository root:
#   bash scripts/device/kernels-bench.sh [quick]
# Steps (scripts/device-run.sh, each with its own log; $OUT gets results/*.json, kernels-bench.json,
# logs.tar.xz, summary.txt):
#   1. info (GPU, driver, clocks; whether cuBLAS loads);
#   2. the GPU tests of the model kernels and of ModelCuda (decode megakernel vs layer kernels vs
#      ModelCpu, batched prefill vs token-by-token and ModelCpu, our GEMM vs cuBLAS), cuBLAS required;
#   3. the kernel timings (scripts/device/kernels-bench.cjs);
#   4. the model benchmark with transformers in the same run (decode f16/bf16, 1024-token prefill).
# Set TENSAFE_DECODE=graph in the environment to measure everything with the layer kernels.
set -uo pipefail
cd "$(dirname "$0")/../.."
quick="${1:-}"

# cuBLAS: the image's CUDA toolkit or the wheels of its Python (torch's nvidia-cublas).
if [ -z "${TENSAFE_CUBLAS:-}" ]; then
  for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
             $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, s, "lib") for p in nvidia.__path__ for s in ("cu13", "cublas")))' 2>/dev/null); do
    for so in libcublas.so.13 libcublas.so.12; do
      if [ -f "$dir/$so" ]; then export TENSAFE_CUBLAS="$dir/$so"; break 2; fi
    done
  done
fi
echo "kernels-bench: TENSAFE_CUBLAS=${TENSAFE_CUBLAS:-<not found: the prefill uses our own GEMM>}"
export TENSAFE_REQUIRE_CUBLAS=1
[ -n "${TENSAFE_CUBLAS:-}" ] || export TENSAFE_REQUIRE_CUBLAS=0

tests="test/gpu/model-kernels.test.ts,test/gpu/model-kernels-prefill.test.ts,test/gpu/model-cuda-decode.test.ts,test/gpu/model-cuda-prefill.test.ts,test/gpu/model-cuda.test.ts,test/gpu/model-cuda-split.test.ts,test/gpu/model-context.test.ts"
if [ "$quick" = "quick" ]; then
  exec bash scripts/device-run.sh info "test:$tests" "shell:node scripts/device/kernels-bench.cjs --quick" \
    "bench:model:--backend,cuda,--quick"
fi
exec bash scripts/device-run.sh info "test:$tests" "shell:node scripts/device/kernels-bench.cjs" "bench:model:--backend,cuda"
