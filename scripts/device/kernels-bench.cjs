#!/usr/bin/env node
// Kernel timings for the decode and prefill work of issue 13, on the GPU machine (device tool):
//   node scripts/device/kernels-bench.cjs [--quick] [--out DIR]     (DIR default: $OUT or /tmp/out)
// Uses the built addon's modelCudaBench (CUDA events, medians, warm-up, random inputs, weights
// rotated past L2). Measures, in order of what the next round needs:
//   1. the copy bandwidth (the ceiling of every memory-bound number below);
//   2. the decode step of the 1.5B and 0.5B shapes, f16 and bf16: the layer kernels in a graph
//      vs the megakernel at several L2-prefetch distances, with the megakernel's per-stage times
//      (block 0's clock at each grid barrier) and the LM head / argmax / host share of a token;
//   3. each gemv shape alone (GB/s, fraction of the copy bandwidth) and decode attention;
//   4. prefill: GEMMs (ours vs cuBLAS, TFLOP/s), the causal attention kernels, whole 1024-token
//      prefills.
// Prints a table per part and writes DIR/kernels-bench.json (every row, with the device name).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const outDir = argv.includes('--out') ? argv[argv.indexOf('--out') + 1] : process.env.OUT || '/tmp/out';
const root = path.resolve(__dirname, '..', '..');
const addonPath = process.env.TENSAFE_ADDON || path.join(root, 'build', 'native', 'Release', 'tensafe.node');
const addon = require(addonPath);
const B = addon.modelCudaBench;

const rows = [];
let copyGBs = 0;
const fmt = (v, d = 1) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : String(v ?? ''));
function table(title, cols, items) {
  console.log(`\n${title}`);
  const w = cols.map((c) => Math.max(c.length, ...items.map((r) => String(r[c] ?? '').length)));
  console.log(cols.map((c, i) => c.padStart(w[i])).join('  '));
  console.log(w.map((n) => '-'.repeat(n)).join('  '));
  for (const r of items) console.log(cols.map((c, i) => String(r[c] ?? '').padStart(w[i])).join('  '));
}
async function attempt(what, fn) {
  try {
    return await fn();
  } catch (e) {
    console.log(`  ${what}: FAILED ${e.code ?? ''} ${e.message}`);
    rows.push({ part: 'error', what, error: `${e.code ?? ''} ${e.message}` });
    return undefined;
  }
}
const gbs = (t) => t.bytes / (t.medianUs * 1e-6) / 1e9;

const SHAPES = {
  'qwen2.5-1.5b-shape': { short: '1.5B', d: 1536, qd: 1536, kvd: 256, I: 8960, V: 151936, heads: 12, kv: 2, hd: 128 },
  'qwen2.5-0.5b-shape': { short: '0.5B', d: 896, qd: 896, kvd: 128, I: 4864, V: 151936, heads: 14, kv: 2, hd: 64 },
};

async function main() {
  const info = addon.info();
  const device = info?.cuda?.devices?.[0]?.name ?? 'GPU';
  console.log(`kernels-bench on ${device}${quick ? ' (quick)' : ''}`);

  // 1. ceiling
  const c = await attempt('copy', () => B.copy({ bytes: 2 ** 31, reps: 10 }));
  if (c) {
    copyGBs = gbs(c);
    rows.push({ part: 'copy', what: 'device-to-device copy 2 GiB', us: c.medianUs, gb_s: copyGBs });
    console.log(`copy bandwidth ${copyGBs.toFixed(0)} GB/s (read + write, median of ${c.runs})`);
  }

  // 2. decode steps
  const steps = quick ? 32 : 128;
  const dec = [];
  const configs = [];
  for (const preset of Object.keys(SHAPES)) {
    for (const dtype of ['f16', 'bf16']) {
      configs.push({ preset, dtype, variant: 'graph' });
      const looks = preset === 'qwen2.5-1.5b-shape' && dtype === 'f16' && !quick ? [0, 32, 64, 96, 160, 256] : [-1];
      for (const lookaheadKb of looks) configs.push({ preset, dtype, variant: 'mega', lookaheadKb });
    }
  }
  for (const cfg of configs) {
    const r = await attempt(`decode ${JSON.stringify(cfg)}`, () => B.decode({ ...cfg, startPos: 8, steps }));
    if (!r) continue;
    const floorUs = copyGBs ? (r.weightBytes / (copyGBs * 1e9)) * 1e6 : NaN;
    const row = {
      part: 'decode',
      model: SHAPES[cfg.preset].short,
      dtype: cfg.dtype,
      variant: cfg.variant === 'mega' ? `mega la=${cfg.lookaheadKb < 0 ? 'default' : cfg.lookaheadKb + 'K'}` : 'graph',
      step_us: r.step.medianUs,
      lm_head_us: r.lmHead.medianUs,
      argmax_host_us: r.argmax.medianUs,
      token_us: r.token.medianUs,
      tok_s: 1e6 / r.token.medianUs,
      floor_frac: floorUs / r.token.medianUs,
      step_floor_frac: copyGBs ? (r.step.bytes / (copyGBs * 1e9)) * 1e6 / r.step.medianUs : NaN,
      stages_us: r.stageUs.length ? r.stageUs.map((v) => v.toFixed(0)).join('/') : '',
      detail: r.detail,
    };
    rows.push(row);
    dec.push(row);
  }
  table('decode step (token = step + LM head + argmax/host; floor_frac = weight bytes / copy BW / token time; stages A qkv/B attn/C o/D gate-up/E down/final norm, us summed over layers)',
    ['model', 'dtype', 'variant', 'step_us', 'lm_head_us', 'argmax_host_us', 'token_us', 'tok_s', 'floor_frac', 'step_floor_frac', 'stages_us'],
    dec.map((r) => ({ ...r, step_us: fmt(r.step_us), lm_head_us: fmt(r.lm_head_us), argmax_host_us: fmt(r.argmax_host_us), token_us: fmt(r.token_us), tok_s: fmt(r.tok_s, 0), floor_frac: fmt(r.floor_frac, 3), step_floor_frac: fmt(r.step_floor_frac, 3) })));
  for (const r of dec) if (r.detail) console.log(`  ${r.model} ${r.dtype} ${r.variant}: ${r.detail}`);

  // 3. gemv shapes and decode attention
  const gv = [];
  for (const [preset, s] of Object.entries(SHAPES)) {
    const shapes = [
      ['qkv + norm', s.qd + 2 * s.kvd, s.d, 'store', true],
      ['o (accumulate)', s.d, s.qd, 'accumulate', false],
      ['gate/up + norm + SwiGLU', s.I, s.d, 'swiglu', true],
      ['down (accumulate)', s.d, s.I, 'accumulate', false],
      ['LM head', s.V, s.d, 'store', false],
    ];
    for (const [what, n, k, epilogue, norm] of shapes) {
      for (const dtype of preset === 'qwen2.5-1.5b-shape' ? ['f16', 'bf16'] : ['f16']) {
        const t = await attempt(`gemv ${what}`, () => B.gemv({ n, k, epilogue, dtype, norm, reps: quick ? 10 : 30 }));
        if (!t) continue;
        const row = { part: 'gemv', model: s.short, what, dtype, n, k, mb: t.bytes / 1e6, us: t.medianUs, gb_s: gbs(t), copy_frac: copyGBs ? gbs(t) / copyGBs : NaN };
        rows.push(row);
        gv.push(row);
      }
    }
    for (const pos of quick ? [135] : [135, 1023, 4095]) {
      const t = await attempt('attention', () => B.attention({ heads: s.heads, kvHeads: s.kv, headDim: s.hd, context: 4096, pos, dtype: 'f16', reps: 20 }));
      if (!t) continue;
      const row = { part: 'attention', model: s.short, what: `decode attention at position ${pos}`, dtype: 'f16', mb: t.bytes / 1e6, us: t.medianUs, gb_s: gbs(t) };
      rows.push(row);
      gv.push(row);
    }
  }
  table('decode kernels alone (graph of back-to-back launches, weights rotated past L2)',
    ['model', 'what', 'dtype', 'n', 'k', 'mb', 'us', 'gb_s', 'copy_frac'],
    gv.map((r) => ({ ...r, mb: fmt(r.mb, 2), us: fmt(r.us, 2), gb_s: fmt(r.gb_s, 0), copy_frac: fmt(r.copy_frac, 3) })));

  // 4. prefill
  const pf = [];
  const s = SHAPES['qwen2.5-1.5b-shape'];
  const m = quick ? 256 : 1024;
  for (const [what, n, k] of [['qkv', s.qd + 2 * s.kvd, s.d], ['o', s.d, s.qd], ['gate/up', 2 * s.I, s.d], ['down', s.d, s.I]]) {
    for (const impl of ['cublas', 'own']) {
      for (const dtype of ['f16', 'bf16']) {
        const t = await attempt(`gemm ${what} ${impl}`, () => B.gemm({ m, n, k, dtype, impl, reps: 10 }));
        if (!t) continue;
        const row = { part: 'gemm', what: `${what} ${m}x${n}x${k}`, impl, dtype, us: t.medianUs, tflop_s: t.flops / (t.medianUs * 1e-6) / 1e12 };
        rows.push(row);
        pf.push(row);
      }
    }
  }
  for (const simple of [false, true]) {
    const t = await attempt('prefill attention', () => B.prefillAttention({ heads: s.heads, kvHeads: s.kv, headDim: s.hd, m, dtype: 'f16', simple, reps: 5 }));
    if (!t) continue;
    const row = { part: 'prefill-attention', what: `causal attention ${m} tokens`, impl: simple ? 'simple' : 'tensor-core', dtype: 'f16', us: t.medianUs, tflop_s: t.flops / (t.medianUs * 1e-6) / 1e12 };
    rows.push(row);
    pf.push(row);
  }
  for (const preset of Object.keys(SHAPES)) {
    for (const impl of ['cublas', 'own']) {
      for (const dtype of ['f16', 'bf16']) {
        for (const split of [true, false]) {
          if (preset !== 'qwen2.5-1.5b-shape' && (dtype === 'bf16' || !split)) continue;
          const r = await attempt(`prefill ${preset} ${impl} ${split}`, () => B.prefill({ preset, dtype, n: m, impl, split, reps: 5 }));
          if (!r) continue;
          const t = r.prefill;
          // tflop_s counts the model's flops once (the split's second products are overhead).
          const row = { part: 'prefill', what: `${SHAPES[preset].short} prefill ${m} tokens`, impl: `${impl}${split ? ' split' : ' plain'}`, dtype, us: t.medianUs, tok_s: (m * 1e6) / t.medianUs, tflop_s: t.flops / (t.medianUs * 1e-6) / 1e12, detail: r.detail };
          rows.push(row);
          pf.push(row);
        }
      }
    }
  }
  table('prefill', ['what', 'impl', 'dtype', 'us', 'tflop_s', 'tok_s'],
    pf.map((r) => ({ ...r, us: fmt(r.us, 1), tflop_s: fmt(r.tflop_s, 1), tok_s: fmt(r.tok_s, 0) })));

  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, 'kernels-bench.json');
  fs.writeFileSync(file, JSON.stringify({ bench: 'kernels', device, date: new Date().toISOString(), commit: process.env.TENSAFE_COMMIT ?? null, copy_gb_s: copyGBs, rows }, null, 1));
  console.log(`\nwrote ${file}`);
  if (rows.some((r) => r.part === 'error')) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
