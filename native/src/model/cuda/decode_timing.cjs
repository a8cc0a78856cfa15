#!/usr/bin/env node
// Decode timing of the CUDA backend on the GPU machine (engineering numbers for NOTES.md; the
// project's benchmark of record is `npm run bench -- model`). Usage:
//   node decode_timing.cjs <path/to/tensafe.node> [out.json]
// For each preset: load (weights generated on the GPU), then generate 128 greedy tokens after an
// 8-token prompt with the native loop, 5 runs after a warm-up, median decode tok/s; the same
// with per-stage timing (forward / lm_head / sampling, each synchronised); the captured graph vs
// eager launches (TENSAFE_CUDA_GRAPH=0). Prints a table, writes JSON.
'use strict';
const fs = require('node:fs');

const addonPath = process.argv[2];
const outPath = process.argv[3];
const addon = require(addonPath);
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function measure(preset, graph) {
  if (!graph) process.env.TENSAFE_CUDA_GRAPH = '0';
  const t0 = Date.now();
  const m = await addon.ModelCuda.load({ preset, seed: 1, contextLength: 4096 });
  delete process.env.TENSAFE_CUDA_GRAPH;
  const loadMs = Date.now() - t0;
  const prompt = [3838, 374, 264, 18986, 2692, 30, 11, 13];
  const newTokens = 128;
  const runs = [];
  for (let i = 0; i < 6; i++) {
    m.reset();
    const r = await m.generate(prompt, { maxNewTokens: newTokens });
    if (i > 0) runs.push(r);
  }
  const tokS = runs.map((r) => (newTokens - 1) / (r.decodeMs / 1000));
  m.reset();
  const timed = await m.generate(prompt, { maxNewTokens: newTokens, timing: true });
  const row = {
    preset,
    graph,
    pdl: process.env.TENSAFE_CUDA_PDL !== '0',
    load_ms: loadMs,
    weight_bytes_per_token: m.weightBytesPerToken,
    decode_tok_s_median: median(tokS),
    decode_tok_s_min: Math.min(...tokS),
    decode_tok_s_max: Math.max(...tokS),
    ms_per_token: 1000 / median(tokS),
    prefill_ms_median: median(runs.map((r) => r.prefillMs)),
    stage_forward_ms: median(Array.from(timed.forwardMs)),
    stage_lm_head_ms: median(Array.from(timed.lmHeadMs)),
    stage_sampling_ms: median(Array.from(timed.samplingMs)),
    runs: runs.length,
  };
  // Bandwidth: bytes the step must read over its time (the KV cache is a rounding error here).
  row.achieved_gb_s = (row.weight_bytes_per_token / (row.ms_per_token / 1000)) / 1e9;
  m.dispose();
  return row;
}

(async () => {
  const info = addon.info();
  const device = info.cuda.devices[0] ? info.cuda.devices[0].name : 'none';
  const rows = [];
  for (const preset of ['qwen2.5-1.5b-shape', 'qwen2.5-0.5b-shape']) {
    for (const graph of [true, false]) {
      try {
        rows.push(await measure(preset, graph));
      } catch (e) {
        rows.push({ preset, graph, error: String(e && e.stack ? e.stack : e) });
      }
    }
  }
  const result = { device, date: new Date().toISOString(), rows };
  if (outPath) fs.writeFileSync(outPath, JSON.stringify(result, null, 2));
  console.log(`device: ${device}`);
  for (const r of rows) {
    if (r.error) {
      console.log(`${r.preset} graph=${r.graph} ERROR ${r.error}`);
      continue;
    }
    console.log(
      `${r.preset.padEnd(20)} graph=${String(r.graph).padEnd(5)} pdl=${String(r.pdl).padEnd(5)} ${r.decode_tok_s_median.toFixed(1)} tok/s ` +
        `(${r.ms_per_token.toFixed(3)} ms/token, ${r.achieved_gb_s.toFixed(0)} GB/s) ` +
        `stages fwd ${r.stage_forward_ms.toFixed(3)} lm ${r.stage_lm_head_ms.toFixed(3)} samp ${r.stage_sampling_ms.toFixed(3)} ms ` +
        `load ${r.load_ms} ms`,
    );
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
