// The cited datasets parse and agree with themselves and with the original's printed arithmetic.
import { describe, expect, it } from 'vitest';
import { BENCH_NAMES } from '../../src/results';
import { type BreakdownNode, isServerKey, loadOriginal, loadPeers, loadResults, loadSota } from '../../src/lab/datasets';

const original = loadOriginal();
const sota = loadSota();
const peers = loadPeers();

function leafSum(n: BreakdownNode): number {
  return (n.children ?? []).reduce((a, c) => a + c.ms, 0);
}

describe('datasets/original-a2000.json', () => {
  it('names its source and hardware on every table', () => {
    expect(original.source).toBe('seed-performance-analysis.md');
    expect(original.hardware).toBe('RTX A2000 8GB');
    for (const [name, t] of Object.entries(original.tables)) {
      expect((t as { source: string }).source, name).toBe('seed-performance-analysis.md');
    }
    const names = Object.keys(original.tables);
    for (const required of ['headline', 'optimisation_websocket', 'optimisation_split', 'breakdown_websocket', 'breakdown_split_cpu_head',
      'breakdown_split_gpu_head', 'lm_head_analysis', 'lm_head_backends', 'ckks_op_costs', 'poly_n_comparison', 'sota_bars', 'sota_table',
      'sota_factors', 'hardware_profile', 'scaling_projections', 'methodology']) {
      expect(names).toContain(required);
    }
  });

  it('breakdown trees: unaccounted_ms is exactly the printed total minus the printed parts', () => {
    for (const name of ['breakdown_websocket', 'breakdown_split_cpu_head', 'breakdown_split_gpu_head'] as const) {
      const tree = original.tables[name].tree;
      expect(tree.ms - leafSum(tree), name).toBeCloseTo(tree.unaccounted_ms ?? NaN, 9);
      expect(tree.ms - leafSum(tree), name).toBeGreaterThanOrEqual(0);
    }
    // The split CPU-head tree adds up exactly (806 ms); the WebSocket one leaves 13.9 ms unitemised.
    expect(leafSum(original.tables.breakdown_split_cpu_head.tree)).toBeCloseTo(806, 9);
    expect(leafSum(original.tables.breakdown_websocket.tree)).toBeCloseTo(121.1, 9);
  });

  it("split mode's server forward is the WebSocket token (same 135 ms, by ref)", () => {
    for (const name of ['breakdown_split_cpu_head', 'breakdown_split_gpu_head'] as const) {
      const server = original.tables[name].tree.children!.find((c) => c.ref);
      expect(server?.ref).toBe('breakdown_websocket');
      expect(server?.ms).toBe(original.tables.breakdown_websocket.tree.ms);
    }
  });

  it('headline: tok/s and ms/token describe the same rate (within 2%)', () => {
    for (const r of original.tables.headline.rows) {
      expect(Math.abs(r.tok_s * r.ms_per_token - 1000) / 1000, r.mode).toBeLessThan(0.02);
    }
  });

  it("poly_n comparison: the printed totals follow from the printed op costs", () => {
    const ops = original.tables.ckks_op_costs.rows;
    const cost = (n: number, op: string) => ops.find((r) => r.poly_n === n && r.op === op)!.ms;
    for (const r of original.tables.poly_n_comparison.rows) {
      expect(r.ct_pt_ms).toBe(cost(r.poly_n, 'ct_pt_multiply'));
      expect(r.decrypt_ms).toBe(cost(r.poly_n, 'decrypt_to_gpu'));
      const total = r.batches * r.ct_pt_ms + r.batches * r.decrypt_ms + (r.encrypt_ms ?? 0) + (r.transfer_ms ?? 0);
      expect(total).toBeCloseTo(r.total_he_ms, 6);
      // Products per token: ceil(r / replicas), replicas = floor(slots / d), r = 32, d = 1536.
      const replicas = Math.floor(r.poly_n / 2 / 1536);
      expect(r.batches).toBe(Math.ceil(32 / replicas));
    }
  });

  it('optimisation steps: cumulative percentages are consistent with the ranges (loosely, as printed)', () => {
    const rows = original.tables.optimisation_websocket.rows;
    const mid = (r: (typeof rows)[number]) => (r.tok_s_min + r.tok_s_max) / 2;
    expect(rows.map((r) => r.step)).toEqual([0, 1, 2]);
    // +94% printed; midpoints give +96%.
    expect(Math.abs(mid(rows[2]) / mid(rows[0]) - 1 - 0.94)).toBeLessThan(0.05);
    for (const r of rows) expect(r.tok_s_min).toBeLessThanOrEqual(r.tok_s_max);
  });

  it('CKKS op costs: 32768 is about 2.3x 16384 for the NTT-bound ops, as printed', () => {
    const ops = original.tables.ckks_op_costs.rows;
    for (const op of ['encrypt', 'ct_pt_multiply', 'decrypt_to_gpu']) {
      const a = ops.find((r) => r.poly_n === 16384 && r.op === op)!.ms;
      const b = ops.find((r) => r.poly_n === 32768 && r.op === op)!.ms;
      expect(b / a).toBeGreaterThan(2.2);
      expect(b / a).toBeLessThan(2.4);
    }
  });

  it('hardware profile: the memory parts add up to the used memory', () => {
    const mem = original.tables.hardware_profile.gpu_memory_gb as { used: number; parts: Array<{ gb: number }> };
    expect(mem.parts.reduce((a, p) => a + p.gb, 0)).toBeCloseTo(mem.used, 9);
  });
});

describe('datasets/sota.csv (corrected)', () => {
  it('has the columns of issue 8 and a source on every row', () => {
    expect(Object.keys(sota[0])).toEqual(['system', 'model', 'hardware', 'what_encrypted', 'reported_metric', 'tok_s', 'comparable', 'year', 'source', 'note', 'key_holder', 'protects']);
    for (const r of sota) {
      expect(r.source.length, r.system).toBeGreaterThan(0);
      // issue 16 item 3: every row says who holds the key and what is protected from whom
      expect(r.key_holder.length, r.system).toBeGreaterThan(0);
      expect(r.protects.length, r.system).toBeGreaterThan(0);
      expect(typeof r.comparable).toBe('boolean');
      expect(Number.isInteger(r.year)).toBe(true);
    }
  });

  it('tok/s is given exactly where the row is comparable', () => {
    for (const r of sota) {
      if (r.comparable) expect(r.tok_s, r.system).toBeGreaterThan(0);
      else expect(r.tok_s, r.system).toBeNull();
    }
  });

  it('applies the field-notes corrections', () => {
    const chatglm = sota.find((r) => r.system.startsWith('ChatGLM2-6B'))!;
    expect(chatglm.source).toContain('2501.01672');
    expect(chatglm.tok_s).toBeCloseTo(1 / 1.61, 3);
    const puma = sota.find((r) => r.system === 'PUMA')!;
    expect(puma.tok_s).toBeCloseTo(1 / 300, 4);
    const bumblebee = sota.find((r) => r.system.toLowerCase().startsWith('bumblebee'))!;
    expect(bumblebee.model).toBe('LLaMA-7B');
    for (const name of ['NEXUS', 'BOLT']) {
      const r = sota.find((x) => x.system === name)!;
      expect(r.comparable, name).toBe(false);
      expect(r.model).toBe('BERT-base');
    }
    for (const r of sota.filter((x) => x.system.startsWith('Orion'))) {
      expect(r.comparable).toBe(false);
      expect(r.source).toMatch(/no published source/);
    }
    for (const name of ['MOAI', 'THOR', 'Cachemir']) expect(sota.some((r) => r.system === name), name).toBe(true);
  });

  it('marks the original TenSafe rows as server-key rows that protect nothing from the server, and the FHE rows as client-key', () => {
    const tenSafe = sota.filter((r) => r.system.startsWith('TenSafe'));
    expect(tenSafe.length).toBe(2);
    for (const r of tenSafe) {
      expect(isServerKey(r), r.system).toBe(true);
      expect(r.protects).toMatch(/^nothing from the server/);
    }
    for (const name of ['ChatGLM2-6B FHE (Zhang, Zheng, Bao)', 'NEXUS', 'MOAI', 'THOR', 'Cachemir']) {
      const r = sota.find((x) => x.system === name)!;
      expect(r.key_holder, name).toBe('client');
      expect(r.protects, name).toMatch(/from the server/);
    }
    expect(sota.filter((r) => isServerKey(r)).length).toBe(2);
  });
});

describe('datasets/peers.json', () => {
  it('every figure says how it was obtained and where', () => {
    for (const p of peers.peers) {
      expect(p.how.length, p.id).toBeGreaterThan(0);
      expect(p.source.length, p.id).toBeGreaterThan(0);
      expect(p.measured_here === null || typeof p.measured_here.hardware === 'string', p.id).toBe(true);
    }
  });

  it('per-token parts add up to the per-token totals (to the printed precision)', () => {
    const withParts = peers.peers.filter((p) => p.parts_ms);
    expect(withParts.length).toBeGreaterThanOrEqual(2);
    for (const p of withParts) {
      const sum = Object.values(p.parts_ms!).reduce((a, b) => a + b, 0);
      expect(Math.abs(sum - p.ms_per_token!), p.id).toBeLessThan(0.002 * p.ms_per_token! + 0.0015);
    }
  });

  it('the bandwidth floor is the weights over the copy bandwidth', () => {
    const f = peers.peers.find((p) => p.kind === 'decode_floor')!;
    const ms = ((f.weights_gb as number) / ((f.copy_bandwidth_tb_s as number) * 1000)) * 1000;
    expect(ms).toBeCloseTo(f.ms_per_token!, 1);
    expect(Math.abs(1000 / ms - f.tok_s!) / f.tok_s!).toBeLessThan(0.03);
  });
});

describe('datasets/results', () => {
  it('every committed result file follows the results.md format', () => {
    const { results, skipped } = loadResults();
    expect(skipped).toEqual([]);
    for (const r of results) {
      // the benches of results.md (ntt, ckks, model, pipeline, server, private, private-site), from the one schema
      expect(['ntt', 'ckks', 'model', 'pipeline', 'server', 'private', 'private-site']).toEqual([...BENCH_NAMES]);
      expect(BENCH_NAMES).toContain(r.bench);
      expect(['cpu', 'cuda']).toContain(r.backend);
      expect(Number.isNaN(Date.parse(r.date))).toBe(false);
      expect(r.file).toMatch(new RegExp(`^datasets/results/${r.bench}-${r.backend}-[a-z0-9-]+\\.json$`));
    }
  });
});
