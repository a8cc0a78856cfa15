/**
 * Runs `fn` with environment variables set (undefined: removed), restoring them afterwards.
 * The native engine reads its switches (TENSAFE_PREFILL, TENSAFE_GEMM, TENSAFE_DECODE,
 * TENSAFE_CUDA_GRAPH, ...) when a model is constructed, so wrapping the load is enough. Test
 * files run in forked workers (vitest.config.mts), so the variables reach getenv().
 */
export async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(vars)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
