/**
 * `npm run bench -- model [--backend cpu|cuda|auto] [--quick] [--new 128] [--prompt 8] [--runs 3]
 *                         [--presets tiny,qwen2.5-0.5b-shape] [--full] [--no-transformers]`
 *
 * Batch-1 greedy decode of the presets (generated weights: the shapes are exact, the text is
 * meaningless) after an 8-token prompt, 128 new tokens, timed by the native generation loop
 * (prefill and the first token excluded from the decode rate). Then a run with every stage
 * synchronised and timed separately (forward, LM head, sampling) for the breakdown.
 *
 * CPU (default presets tiny and the 0.5B shape; --full adds the 1.5B shape): also the LM head
 * alone (151936 x 1536, float32): a plain single-threaded loop (the original's numpy path took
 * ~650 ms) versus our SIMD multi-threaded kernel.
 * CUDA (1.5B and 0.5B shapes through ModelCuda): also Hugging Face transformers on the same shape
 * in fp16 (python3 scripts/fixtures/bench_transformers_decode.py, same run), the speed-up, and the
 * fraction of the bandwidth floor (weight bytes per token / measured device copy bandwidth).
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
}

async function measureDecode(preset: string, backend: Backend, newTokens: number, promptLen: number, runs: number): Promise<DecodeRun> {
  const t0 = performance.now();
  const model = await Model.load(preset, { backend, contextLength: Math.max(256, promptLen + newTokens + 8) });
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
    };
  } finally {
    model.dispose();
  }
}

interface TransformersRun {
  tok_s: number;
  runs_tok_s: number[];
  torch: string;
  transformers: string;
  attn_implementation?: string;
}

function measureTransformers(preset: string, newTokens: number, promptLen: number, runs: number): TransformersRun | string {
  const script = path.join(packageRoot(), 'scripts', 'fixtures', 'bench_transformers_decode.py');
  const r = spawnSync('python3', [script, '--preset', preset, '--new', String(newTokens), '--prompt', String(promptLen), '--runs', String(runs)], {
    encoding: 'utf8',
    timeout: 600_000,
  });
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
  const notes: string[] = [
    `presets use generated weights (exact Qwen2.5 shapes, meaningless text); prompt ${promptLen} tokens, ${newTokens} new tokens, greedy, batch 1`,
    'decode tok/s = (new tokens - 1) / decode time (prefill and the first token excluded); median of runs',
    'forward/lm_head/sampling ms: a separate run with each stage synchronised and timed (per-token medians)',
  ];
  if (backend === 'cpu') {
    notes.push(`CPU: ${info().cpuModel}, ${info().cpuThreads} threads, float32 arithmetic`);
    // The CPU machines are shared: say how busy this one was, since it bounds what was measured.
    notes.push(`host load average (1 min) at start: ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs`);
  }

  log(`model bench on ${backend} (${result.device})`);
  for (const preset of presets) {
    const short = SHORT[preset] ?? preset;
    const d = await measureDecode(preset, backend, newTokens, promptLen, runs);
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
    result.summary[`decode_tok_s_${short}`] = d.tokS;
    if (bw) {
      const floor = bw / d.weightBytes;
      row.bandwidth_floor_tok_s = floor;
      row.bandwidth_floor_fraction = d.tokS / floor;
      result.summary[`bandwidth_floor_fraction_${short}`] = d.tokS / floor;
    }
    if (backend === 'cuda' && d.lmHeadMs !== undefined && preset === 'qwen2.5-1.5b-shape') result.summary.lm_head_ms_gpu = d.lmHeadMs;
    result.rows.push(row);

    if (backend === 'cuda' && args.options['no-transformers'] !== 'true' && preset !== 'tiny') {
      const t = measureTransformers(preset, newTokens, promptLen, runs);
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
        result.summary[`speedup_vs_transformers_${short}`] = d.tokS / t.tok_s;
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
