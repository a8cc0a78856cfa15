/**
 * `GET /api/v1/split/selftest`: the split path end to end inside the server, as the
 * original's phone selftest: tokenize the prompt, embed it with the client-side head, run the
 * server part (decoder + HE-LoRA) with an incremental KV cache, project with the client's LM
 * head, sample greedily, repeat for up to 64 tokens. Reports tok/s and where the time went.
 */
import type { StageName, StageTimes } from '../pipeline/types';
import type { SplitEngine, SplitHead, SplitInput } from './split-engine';

export interface SelftestResult {
  query: string;
  generated_text: string;
  total_tokens: number;
  input_tokens: number;
  /** Generated tokens per second over the whole run (prefill included), as the original. */
  tok_s: number;
  /** Tokens per second of the decode steps alone (prefill excluded). */
  decode_tok_s: number;
  ms_per_token: number;
  prefill_ms: number;
  /** Median ms per stage over the decode steps; `embed` is the client's embedding lookup,
   * `he` the HE step when the engine times it as one call (encode .. sums). */
  stage_medians: StageTimes & { embed?: number; he?: number };
  head_backend: 'cpu' | 'cuda';
  /** What the client sent: embedding rows (the original) or token ids. */
  input: 'hidden_states' | 'token_ids';
  server_backend: 'cpu' | 'cuda';
  he_active: boolean;
  expert: string;
  simd_slots: number;
  dp_sigma: number;
  model: string;
  verdict: string;
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export async function runSelftest(engine: SplitEngine, head: SplitHead, query: string, maxTokens: number, signal: AbortSignal): Promise<SelftestResult> {
  const cfg = engine.config();
  const expert = engine.routeExpert(query);
  const ids = engine.tokenize(engine.prompt(query));
  const stop = new Set(engine.stopTokens());
  const session = engine.createSession();
  const perStage = new Map<string, number[]>();
  const push = (k: string, v: number | undefined) => {
    if (typeof v !== 'number') return;
    const a = perStage.get(k) ?? [];
    a.push(v);
    perStage.set(k, a);
  };
  const generated: number[] = [];
  let heActive = false;
  let dpSigma = 0;
  try {
    const useEmbeddings = !!head.embed && cfg.inputs.includes('hidden_states');
    // The client's input for a run of ids: embedding rows when both sides can, else the ids.
    const makeInput = async (tokens: number[]): Promise<SplitInput> =>
      useEmbeddings ? { kind: 'embeddings', data: await head.embed!(tokens), seqLen: tokens.length } : { kind: 'tokens', ids: tokens };
    const t0 = performance.now();
    let tEmbed = performance.now();
    let input = await makeInput(ids);
    let embedMs = performance.now() - tEmbed;
    let prefillMs = 0;
    let tDecode0 = 0;
    for (let step = 0; step < maxTokens && !signal.aborted; step++) {
      const tStep = performance.now();
      const r = await session.forward(input, { expert, useHe: true });
      heActive = r.heActive;
      dpSigma = r.dpSigma;
      const next = await head.next(r.hidden, { temperature: 0, topK: 1, topP: 1 }, step);
      if (step === 0) {
        prefillMs = performance.now() - t0;
        tDecode0 = performance.now();
      } else {
        for (const [k, v] of Object.entries(r.stages) as Array<[StageName, number]>) push(k, v);
        push('lm_head', next.lmHeadMs);
        push('sampling', next.samplingMs);
        push('embed', embedMs);
        push('he', r.heMs);
        push('total', performance.now() - tStep + embedMs);
      }
      if (stop.has(next.id)) break;
      generated.push(next.id);
      tEmbed = performance.now();
      input = await makeInput([next.id]);
      embedMs = performance.now() - tEmbed;
    }
    const total = performance.now() - t0;
    const decodeMs = tDecode0 ? performance.now() - tDecode0 : 0;
    const text = engine.detokenize(generated);
    const medians: Record<string, number> = {};
    for (const [k, v] of perStage) if (k !== 'total') medians[k] = Math.round(median(v) * 1e4) / 1e4;
    return {
      query,
      generated_text: text,
      total_tokens: generated.length,
      input_tokens: ids.length,
      tok_s: generated.length ? (generated.length / total) * 1000 : 0,
      decode_tok_s: generated.length > 1 && decodeMs > 0 ? ((generated.length - 1) / decodeMs) * 1000 : 0,
      ms_per_token: median(perStage.get('total') ?? []),
      prefill_ms: prefillMs,
      stage_medians: medians,
      head_backend: head.backend,
      input: useEmbeddings ? 'hidden_states' : 'token_ids',
      server_backend: cfg.backend,
      he_active: heActive,
      expert,
      simd_slots: cfg.simdSlots,
      dp_sigma: dpSigma,
      model: cfg.model,
      verdict: generated.length > 0 ? 'PASS: the split path generated tokens' : 'FAIL: no tokens generated',
    };
  } finally {
    await session.dispose();
  }
}
