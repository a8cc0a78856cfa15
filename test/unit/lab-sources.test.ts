// Adapters from result files (both bench row shapes) to plot series, with provenance.
import { describe, expect, it } from 'vitest';
import type { ResultFile } from '../../src/lab/datasets';
import { loadOriginal } from '../../src/lab/datasets';
import {
  measuredSotaRows, originalOpCosts, originalOptimisation, originalPolyNSeries, resultBreakdownSeries, resultHeLoraSeries,
  resultLmHead, resultOpCosts,
} from '../../src/lab/sources';

function result(partial: Partial<ResultFile>): ResultFile {
  return {
    bench: 'ckks', backend: 'cpu', device: 'Test CPU', commit: 'abc', date: '2026-11-26T10:00:00Z', command: 'x',
    summary: {}, rows: [], file: 'datasets/results/x.json', ...partial,
  };
}

describe('result adapters', () => {
  const r = Math.random;
  it('ckks CPU rows: ops for tensafe and node-seal (same run), HE-LoRA stages per poly_n', () => {
    const enc = r() * 100, mul = r() * 10, sealEnc = r() * 1000, fwd = r();
    const file = result({
      rows: [
        { kind: 'op', op: 'encrypt', poly_n: 16384, median_us: enc, runs: 5, node_seal_us: sealEnc },
        { kind: 'op', op: 'multiply_plain', poly_n: 16384, median_us: mul, runs: 5 },
        { kind: 'helora_stage', stage: 'encrypt', poly_n: 16384, ms: fwd, node_seal_ms: 14.6 },
        { kind: 'helora_stage', stage: 'total', poly_n: 16384, ms: 3 * fwd },
      ],
    });
    const [ours, seal] = resultOpCosts(file);
    expect(ours.rows).toEqual([{ op: 'encrypt', poly_n: 16384, us: enc }, { op: 'ct_pt_multiply', poly_n: 16384, us: mul }]);
    expect(seal.rows).toEqual([{ op: 'encrypt', poly_n: 16384, us: sealEnc }]);
    expect(ours.provenance).toMatchObject({ kind: 'measured', device: 'Test CPU', committed: true });
    const he = resultHeLoraSeries(file);
    expect(he[0].stages).toEqual({ encrypt: fwd });
    expect(he[0].total).toBe(3 * fwd);
    expect(he[1].label).toContain('node-seal');
    expect(he[1].stages).toEqual({ encrypt: 14.6 });
  });

  it('ckks CUDA rows: helora_* ops become stages in ms, not op costs', () => {
    const us = r() * 50;
    const file = result({ backend: 'cuda', device: 'NVIDIA H100 80GB HBM3', rows: [
      { op: 'decrypt', poly_n: 8192, median_us: 12, runs: 200 },
      { op: 'helora_decrypt', poly_n: 8192, median_us: us, runs: 50 },
    ] });
    const series = resultOpCosts(file);
    expect(series).toHaveLength(1);
    expect(series[0].rows.map((x) => x.op)).toEqual(['decrypt']);
    expect(series[0].label).toBe('tensafe cuda (H100 80GB HBM3)');
    expect(resultHeLoraSeries(file)[0].stages.decrypt).toBeCloseTo(us / 1000, 15);
  });

  it('CUDA op rows make one series per timing method, named with the primes; CPU one-thread rows their own series', () => {
    const b = Math.random() * 10, one = b + 5;
    const cuda = resultOpCosts(result({ backend: 'cuda', device: 'NVIDIA H200', rows: [
      { op: 'encrypt', poly_n: 16384, method: 'batched', ops_per_sample: 10, primes: 3, median_us: b },
      { op: 'encrypt', poly_n: 16384, method: 'single', ops_per_sample: 1, primes: 3, median_us: one },
      { op: 'helora_total', poly_n: 16384, method: 'per token', median_us: 99 },
    ] }));
    expect(cuda.map((s) => s.label)).toEqual(['tensafe cuda (H200), batched 10 ops / 10, 3 primes', 'tensafe cuda (H200), single op, 3 primes']);
    expect(cuda.map((s) => s.rows[0].us)).toEqual([b, one]);
    const cpu = result({ summary: { threads: 2 }, rows: [
      { kind: 'op', op: 'encrypt', poly_n: 16384, median_us: b, one_thread_us: one, node_seal_us: 3 * one },
      { kind: 'helora_stage', stage: 'total', poly_n: 16384, ms: b, one_thread_ms: one, node_seal_ms: 3 * one },
    ] });
    expect(resultOpCosts(cpu).map((s) => [s.label, s.rows[0].us])).toEqual([
      ['tensafe cpu (Test CPU), 2 threads', b], ['tensafe cpu (Test CPU), 1 thread (same run)', one], ['node-seal@6 WASM, 1 thread, same run (Test CPU)', 3 * one],
    ]);
    expect(resultHeLoraSeries(cpu).map((s) => [s.label, s.total])).toEqual([
      ['tensafe cpu (Test CPU), 2 threads N=16384', b], ['tensafe cpu (Test CPU), 1 thread N=16384', one], ['node-seal@6, 1 thread, same run (Test CPU) N=16384', 3 * one],
    ]);
  });

  it('peers: Phantom H200 per-op figures by both methods; the 9-prime H100 row is not on equal terms and not drawn', async () => {
    const { peerOpCosts } = await import('../../src/lab/sources');
    const { loadPeers } = await import('../../src/lab/datasets');
    const labels = peerOpCosts(loadPeers().peers).map((s) => s.label);
    expect(labels).toContain('Phantom-FHE (H200, batched 10 ops / 10, 3 primes)');
    expect(labels).toContain('Phantom-FHE (H200, single op)');
    expect(labels.some((l) => l.includes('H100'))).toBe(false);
  });

  it('model summary keys give the LM head series; pipeline and server summaries give the SOTA rows', () => {
    expect(resultLmHead(result({ bench: 'model' }))).toBeNull();
    const lm = resultLmHead(result({ bench: 'model', summary: { lm_head_ms_cpu: 40, lm_head_ms_gpu: 0.3 } }))!;
    expect(lm.rows).toEqual([{ backend: 'CPU, tensafe', ms: 40 }, { backend: 'GPU, tensafe', ms: 0.3 }]);
    const rows = measuredSotaRows([
      result({ bench: 'pipeline', summary: { he_lora_tok_s_best: 123, he_lora_best_setting: 'coefficients' } }),
      result({ bench: 'server', summary: { ws_he_tok_s: 99 } }),
      result({ bench: 'ntt', summary: { forward_us_16384_2limbs: 1 } }),
    ]);
    expect(rows.map((x) => x.tok_s)).toEqual([123, 99]);
    expect(rows[0].system).toContain('coefficients');
    expect(rows.every((x) => x.provenance.kind === 'measured')).toBe(true);
    // both are server-key modes: they say so
    expect(rows.map((x) => x.key_holder)).toEqual(['server', 'server']);
    expect(rows.every((x) => x.protects.startsWith('nothing from the server'))).toBe(true);
    // the private bench's file (results.md keys) adds client-key rows by data alone
    const priv = measuredSotaRows([result({ bench: 'private', summary: { final_hidden_tok_s: 40, layers_tok_s: 12, layers_bytes_per_token: 1e6 } })]);
    expect(priv.map((x) => [x.tok_s, x.key_holder])).toEqual([[40, 'client'], [12, 'client']]);
    expect(priv[1].system).toContain('adapted layers');
  });

  it('takes the model from the summary or the notes', async () => {
    const { resultModel } = await import('../../src/lab/sources');
    expect(resultModel(result({ summary: { model: 'm1' } }))).toBe('m1');
    expect(resultModel(result({ notes: ['x', 'model: qwen2.5-1.5b-shape, 4 of 28 layers (d = 1536, vocab 151936); experts'] }))).toBe('qwen2.5-1.5b-shape, 4 of 28 layers');
    expect(resultModel(result({}))).toBe('Qwen2.5-1.5B shape');
  });

  it('pipeline stage rows group by setting', () => {
    const s = resultBreakdownSeries(result({ bench: 'pipeline', rows: [
      { setting: 'a', stage: 'forward', median_ms: 1 }, { setting: 'a', stage: 'encrypt', median_ms: 2 },
      { setting: 'b', stage: 'forward', median_ms: 3 }, { setting: 'b', tok_s: 5 },
    ] }));
    expect(s.map((x) => x.stages)).toEqual([{ forward: 1, encrypt: 2 }, { forward: 3 }]);
  });
});

describe('original adapters', () => {
  const o = loadOriginal();
  it('op costs in microseconds, decrypt to GPU as decrypt', () => {
    const s = originalOpCosts(o);
    expect(s.rows.find((x) => x.op === 'decrypt' && x.poly_n === 16384)!.us).toBeCloseTo(7100, 9);
    expect(s.rows.find((x) => x.op === 'decrypt + copy to host' && x.poly_n === 32768)!.us).toBeCloseTo(43800, 9);
    expect(s.provenance.kind).toBe('cited');
  });
  it('optimisation steps at range midpoints', () => {
    const s = originalOptimisation(o);
    expect(s.steps.map((x) => x.tok_s)).toEqual([3.6, 5.3, 7.0]);
  });
  it("poly_n bars add up to the original's printed totals", () => {
    for (const s of originalPolyNSeries(o)) {
      const sum = Object.values(s.stages).reduce((a, b) => a + b, 0);
      expect(sum).toBeCloseTo(s.total!, 9);
    }
  });
});
