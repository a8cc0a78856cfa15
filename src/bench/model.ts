/**
 * `npm run bench -- model [--backend cpu|cuda|auto] [--quick] [--new 128] [--prompt 8] [--runs 3]
 *                         [--presets tiny,qwen2.5-0.5b-shape] [--full] [--no-transformers]
 *                         [--dtypes f16,bf16] [--prefill 1024]`
 *
 * Batch-1 greedy decode of the presets (generated weights: the shapes are exact, the text is
 * meaningless) after an 8-token prompt, 128 new tokens, timed by the native generation loop
 * (prefill and the first token excluded from the decode rate). Then a run with every stage
 * synchronised and timed separately (forward, LM head, sampling) for the breakdown.
 *
 * CPU (default presets tiny and the 0.5B shape; --full adds the 1.5B shape): also the LM head
 * alone (151936 x 1536, float32): a plain single-threaded loop (the original's numpy path took
 * ~650 ms) versus our SIMD multi-threaded kernel.
 * CUDA (1.5B and 0.5B shapes through ModelCuda, f16 and bf16 weights): also Hugging Face
 * transformers on the same shape in fp16 (python3 scripts/fixtures/bench_transformers_decode.py,
 * same run), the speed-up, and the fraction of the bandwidth floor (weight bytes per token /
 * measured device copy bandwidth); and for the 1.5B shape the time to first token of a
 * 1024-token prompt (batched tensor-core prefill + LM head + sampling, the native loop's
 * prefillMs) against transformers' in the same run (one forward over the prompt, last logits).
 * 'auto' measures CUDA when a GPU is usable, else the CPU.
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';

import type { BenchArgs } from './index';
import { newResult, printTable, stats, writeResult, type ResultFile, type Row } from './results';
import { deviceName, info, resolveBackend, type Backend } from '../engine/info';
import { Model } from '../engine/model';
import { native, packageRoot } from '../engine/native';

const SHORT: Record<string, string> = {
  'qwen2.5-1.5b-shape': '1p5b',
  'qwen2.5-0.5b-shape': '0p5b',
  tiny: 'tiny',
};

function log(msg: string): void {
  // eslint-disable-next-line no-console
  console.log(msg);
}

function promptIds(n: number, vocab: number): number[] {
  // Fixed, ordinary ids (no specials): the same prompt for every backend and for transformers' shape.
  return Array.from({ length: n }, (_, i) => (1000 + 7919 * i) % Math.min(vocab, 151643));
}

/** Device copy bandwidth in bytes/s, measured by the NTT binding when it offers it. */
function copyBandwidth(): number | undefined {
  const cls = native().NttPlanCuda;
  if (!cls || typeof cls.measureCopyBandwidth !== 'function') return undefined;
  const v = cls.measureCopyBandwidth();
  if (typeof v === 'number') return v;
  if (v && typeof v.bytesPerSecond === 'number') return v.bytesPerSecond;
  if (v && typeof v.gbPerSecond === 'number') return v.gbPerSecond * 1e9;
  return undefined;
}

interface DecodeRun {
  tokS: number;
  msPerToken: number;
  runsTokS: number[];
  forwardMs?: number;
  lmHeadMs?: number;
  samplingMs?: number;
  weightBytes: number;
  dtype: string;
  name: string;
  /** Time to first token of a `prefillTokens`-token prompt (median), when asked for. */
  prefill?: { tokens: number; ttftMs: number; runsMs: number[] };
}

async function measureDecode(
  preset: string, backend: Backend, newTokens: number, promptLen: number, runs: number, dtype?: 'f16' | 'bf16', prefillTokens = 0,
): Promise<DecodeRun> {
  const t0 = performance.now();
  const contextLength = Math.max(256, promptLen + newTokens + 8, prefillTokens + 8);
  const model = await Model.load(preset, { backend, contextLength, ...(dtype ? { dtype } : {}) });
  log(`  ${preset}: loaded on ${backend} (${model.dtype}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  try {
    const prompt = promptIds(promptLen, model.config.vocabSize);
    const opts = { maxNewTokens: newTokens, stopAtEos: false, seed: 1 };
    await model.generateIds(prompt, { ...opts, maxNewTokens: Math.min(8, newTokens) }); // warm-up
    const rates: number[] = [];
    for (let r = 0; r < runs; r++) {
      const g = await model.generateIds(prompt, opts);
      rates.push(((g.tokens.length - 1) * 1000) / g.decodeMs);
    }
    const timed = await model.generateIds(prompt, { ...opts, timing: true });
    const med = stats(rates).median;
    let prefill: DecodeRun['prefill'];
    if (prefillTokens > 0) {
      // prefillMs of the native loop: prompt forward + LM head + sampling, synchronised.
      const long = promptIds(prefillTokens, model.config.vocabSize);
      await model.generateIds(long, { ...opts, maxNewTokens: 1 }); // warm-up (scratch, cuBLAS heuristics)
      const ms: number[] = [];
      for (let r = 0; r < Math.max(runs, 5); r++) ms.push((await model.generateIds(long, { ...opts, maxNewTokens: 1 })).prefillMs);
      prefill = { tokens: prefillTokens, ttftMs: stats(ms).median, runsMs: ms };
    }
    return {
      tokS: med,
      msPerToken: 1000 / med,
      runsTokS: rates,
      forwardMs: timed.forwardMs ? stats(Array.from(timed.forwardMs)).median : undefined,
      lmHeadMs: timed.lmHeadMs ? stats(Array.from(timed.lmHeadMs)).median : undefined,
      samplingMs: timed.samplingMs ? stats(Array.from(timed.samplingMs)).median : undefined,
      weightBytes: model.weightBytesPerToken,
      dtype: model.dtype,
      name: model.name,
      prefill,
    };
  } finally {
    await model.dispose();
  }
}

interface TransformersRun {
  tok_s: number;
  runs_tok_s: number[];
  torch: string;
  transformers: string;
  attn_implementation?: string;
  prefill_tokens?: number;
  ttft_ms?: number;
  runs_ttft_ms?: number[];
  prefill_tok_s?: number;
}

function measureTransformers(preset: string, newTokens: number, promptLen: number, runs: number, prefillTokens = 0): TransformersRun | string {
  const script = path.join(packageRoot(), 'scripts', 'fixtures', 'bench_transformers_decode.py');
  const args = [script, '--preset', preset, '--new', String(newTokens), '--prompt', String(promptLen), '--runs', String(runs)];
  if (prefillTokens > 0) args.push('--prefill', String(prefillTokens));
  const r = spawnSync('python3', args, { encoding: 'utf8', timeout: 600_000 });
  if (r.error) return `transformers not measured: ${r.error.message}`;
  const line = (r.stdout ?? '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (r.status !== 0 || !line) return `transformers not measured: exit ${r.status}: ${(r.stderr ?? '').trim().split('\n').pop()}`;
  const j = JSON.parse(line);
  if (typeof j.tok_s !== 'number') return `transformers not measured: ${j.error ?? line}`;
  return j as TransformersRun;
}

async function lmHeadCpu(result: ResultFile, quick: boolean): Promise<void> {
  const addon = native();
  const naive = await addon.lmHeadBench({ mode: 'naive', runs: quick ? 1 : 3, warmup: quick ? 0 : 1 });
  const fast = await addon.lmHeadBench({ mode: 'threads', runs: quick ? 3 : 10, warmup: 2 });
  const n = stats(Array.from(naive.ms as Float64Array));
  const f = stats(Array.from(fast.ms as Float64Array));
  const bytes = 151936 * 1536 * 4;
  for (const [label, s, threads] of [['naive (1 thread, scalar)', n, 1], ['ours (SIMD, threads)', f, fast.threads]] as const) {
    result.rows.push({
      op: 'lm_head 151936x1536 f32',
      variant: label,
      threads,
      median_ms: s.median,
      min_ms: s.min,
      max_ms: s.max,
      runs: s.runs,
      gb_per_s: bytes / (s.median * 1e-3) / 1e9,
    });
  }
  result.summary.lm_head_ms_cpu_naive = n.median;
  result.summary.lm_head_ms_cpu = f.median;
  result.summary.lm_head_speedup_cpu = n.median / f.median;
}

async function runBackend(backend: Backend, args: BenchArgs): Promise<void> {
  const quick = args.quick;
  const newTokens = Number(args.options.new ?? (quick ? 16 : 128));
  const promptLen = Number(args.options.prompt ?? 8);
  const runs = Number(args.options.runs ?? (quick ? 1 : 3));
  const defaults = backend === 'cuda' ? ['qwen2.5-1.5b-shape', 'qwen2.5-0.5b-shape'] : ['tiny', 'qwen2.5-0.5b-shape'];
  if (backend === 'cpu' && args.options.full === 'true') defaults.push('qwen2.5-1.5b-shape');
  const presets = args.options.presets ? args.options.presets.split(',') : quick && backend === 'cpu' ? ['tiny'] : defaults;
  const result = newResult('model', backend, deviceName(backend), args.argv);
  const bw = backend === 'cuda' ? copyBandwidth() : undefined;
  // CUDA: f16 (the summary's headline keys) and bf16 weights (keys with a _bf16 suffix).
  const dtypes = backend === 'cuda' ? (args.options.dtypes ?? 'f16,bf16').split(',') as Array<'f16' | 'bf16'> : [undefined];
  const prefillTokens = backend === 'cuda' ? Number(args.options.prefill ?? (quick ? 256 : 1024)) : 0;
  const notes: string[] = [
    `presets use generated weights (exact Qwen2.5 shapes, meaningless text); prompt ${promptLen} tokens, ${newTokens} new tokens, greedy, batch 1`,
    'decode tok/s = (new tokens - 1) / decode time (prefill and the first token excluded); median of runs',
    'forward/lm_head/sampling ms: a separate run with each stage synchronised and timed (per-token medians)',
  ];
  if (prefillTokens > 0) {
    notes.push(`prefill: time to first token of a ${prefillTokens}-token prompt (1.5B shape): our batched prefill + LM head + sampling (the native loop's prefillMs), transformers one forward over the prompt (last logits) + argmax, medians after a warm-up; prefill tok/s = prompt tokens / that time`);
  }
  if (backend === 'cpu') {
    notes.push(`CPU: ${info().cpuModel}, ${info().cpuThreads} threads, float32 arithmetic`);
    // The CPU machines are shared: say how busy this one was, since it bounds what was measured.
    notes.push(`host load average (1 min) at start: ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs`);
  }

  log(`model bench on ${backend} (${result.device})`);
  for (const preset of presets) {
    const short = SHORT[preset] ?? preset;
    for (const dtype of dtypes) {
      const suffix = dtype === 'bf16' ? '_bf16' : '';
      const withPrefill = prefillTokens > 0 && preset === 'qwen2.5-1.5b-shape' ? prefillTokens : 0;
      const d = await measureDecode(preset, backend, newTokens, promptLen, runs, dtype, withPrefill);
      const row: Row = {
        op: 'decode',
        model: d.name,
        dtype: d.dtype,
        tok_s: d.tokS,
        ms_per_token: d.msPerToken,
        min_tok_s: Math.min(...d.runsTokS),
        max_tok_s: Math.max(...d.runsTokS),
        runs: d.runsTokS.length,
        forward_ms: d.forwardMs ?? null,
        lm_head_ms: d.lmHeadMs ?? null,
        sampling_ms: d.samplingMs ?? null,
        weight_gb_per_token: d.weightBytes / 1e9,
      };
      result.summary[`decode_tok_s_${short}${suffix}`] = d.tokS;
      if (bw) {
        const floor = bw / d.weightBytes;
        row.bandwidth_floor_tok_s = floor;
        row.bandwidth_floor_fraction = d.tokS / floor;
        result.summary[`bandwidth_floor_fraction_${short}${suffix}`] = d.tokS / floor;
      }
      if (backend === 'cuda' && d.lmHeadMs !== undefined && preset === 'qwen2.5-1.5b-shape' && !suffix) result.summary.lm_head_ms_gpu = d.lmHeadMs;
      result.rows.push(row);
      if (d.prefill) {
        const p = d.prefill;
        const tag = `${short}_${p.tokens}${suffix}`;
        result.rows.push({
          op: `prefill ${p.tokens} tokens (time to first token)`,
          model: d.name,
          dtype: d.dtype,
          tok_s: (p.tokens * 1000) / p.ttftMs,
          ttft_ms: p.ttftMs,
          min_ms: Math.min(...p.runsMs),
          max_ms: Math.max(...p.runsMs),
          runs: p.runsMs.length,
        });
        result.summary[`prefill_tok_s_${tag}`] = (p.tokens * 1000) / p.ttftMs;
        result.summary[`ttft_ms_${tag}`] = p.ttftMs;
      }
    }

    if (backend === 'cuda' && args.options['no-transformers'] !== 'true' && preset !== 'tiny') {
      const withPrefill = prefillTokens > 0 && preset === 'qwen2.5-1.5b-shape' ? prefillTokens : 0;
      const t = measureTransformers(preset, newTokens, promptLen, runs, withPrefill);
      if (typeof t === 'string') {
        notes.push(t);
        log(`  ${t}`);
      } else {
        result.rows.push({
          op: 'decode (transformers, fp16)',
          model: `${preset} (random weights)`,
          dtype: 'f16',
          tok_s: t.tok_s,
          ms_per_token: 1000 / t.tok_s,
          min_tok_s: Math.min(...t.runs_tok_s),
          max_tok_s: Math.max(...t.runs_tok_s),
          runs: t.runs_tok_s.length,
        });
        result.summary[`transformers_tok_s_${short}`] = t.tok_s;
        const ours = result.summary[`decode_tok_s_${short}`];
        if (typeof ours === 'number') result.summary[`speedup_vs_transformers_${short}`] = ours / t.tok_s;
        if (t.prefill_tok_s !== undefined && t.ttft_ms !== undefined && t.prefill_tokens !== undefined) {
          const tag = `${short}_${t.prefill_tokens}`;
          result.rows.push({
            op: `prefill ${t.prefill_tokens} tokens (transformers, fp16, time to first token)`,
            model: `${preset} (random weights)`,
            dtype: 'f16',
            tok_s: t.prefill_tok_s,
            ttft_ms: t.ttft_ms,
            min_ms: Math.min(...(t.runs_ttft_ms ?? [t.ttft_ms])),
            max_ms: Math.max(...(t.runs_ttft_ms ?? [t.ttft_ms])),
            runs: (t.runs_ttft_ms ?? [t.ttft_ms]).length,
          });
          result.summary[`transformers_prefill_tok_s_${tag}`] = t.prefill_tok_s;
          const oursPrefill = result.summary[`prefill_tok_s_${tag}`];
          if (typeof oursPrefill === 'number') result.summary[`prefill_speedup_vs_transformers_${t.prefill_tokens}`] = oursPrefill / t.prefill_tok_s;
        }
        notes.push(`transformers ${t.transformers}, torch ${t.torch}, attention ${t.attn_implementation ?? '?'}, same run`);
      }
    }
  }
  if (bw) {
    result.summary.copy_bandwidth_gb_s = bw / 1e9;
    notes.push('bandwidth floor: weight bytes read per token / device-to-device copy bandwidth measured in this run');
  }
  if (backend === 'cpu') {
    await lmHeadCpu(result, quick);
    notes.push(`host load average (1 min) at end: ${os.loadavg()[0].toFixed(1)}`);
  }
  result.notes = notes;
  printTable(result.rows, undefined, `Qwen2 decode, ${backend} on ${result.device}`);
  log(`summary ${JSON.stringify(result.summary)}`);
  log(`wrote ${writeResult(result)}`);
}

export async function run(args: BenchArgs): Promise<void> {
  const backend = resolveBackend(args.backend);
  await runBackend(backend, args);
}
