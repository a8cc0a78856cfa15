/**
 * The HE-LoRA step on the GPU: CKKS on the CUDA backend (model on the GPU too), checked against
 * float64 and against plaintext LoRA token for token; the CUDA HE result against the CPU one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type ModelContext } from '../../src/engine/model';
import { makeSyntheticExpert } from '../../src/pipeline/experts';
import { createGenerator, toStageTimes, type GeneratorConfig } from '../../src/pipeline/native';
import { Pipeline } from '../../src/pipeline/pipeline';
import { noGpu } from '../helpers/gpu';
import { compareSteps } from '../helpers/model-steps';
import { maxAbsDiff } from '../helpers/numeric';

const PACKINGS = ['replicated-slots', 'rotations', 'coefficients'] as const;

function naive(a: Float32Array, x: Float64Array, rank: number): Float64Array {
  const d = x.length;
  const y = new Float64Array(rank);
  for (let i = 0; i < rank; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += a[i * d + j] * x[j];
    y[i] = s;
  }
  return y;
}
function maxRel(y: Float64Array, ref: Float64Array): number {
  let e = 0;
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    e = Math.max(e, Math.abs(y[i] - ref[i]));
    m = Math.max(m, Math.abs(ref[i]));
  }
  return e / m;
}

describe.skipIf(noGpu)('HE-LoRA on the GPU', () => {
  let model: Model;
  let tiny: ModelContext;
  const prompt = Int32Array.from([1, 17, 42, 99, 5]);
  beforeAll(async () => {
    model = await Model.load('tiny', { seed: 3, backend: 'cuda', contextLength: 256 });
    tiny = await model.createContext();
  });
  afterAll(async () => {
    await tiny?.dispose();
    await model?.dispose();
  });

  async function tokens(config: GeneratorConfig, steps = 64): Promise<{ ids: number[]; last: Float64Array; heBackend: string }> {
    const g = await createGenerator(tiny, config);
    try {
      const ids: number[] = [];
      let s = await g.start(prompt, { temperature: 0 });
      let last = s.stages;
      for (let i = 0; i < steps; i++) {
        ids.push(s.token);
        last = s.stages;
        if (i + 1 < steps) s = await g.next(s.token);
      }
      return { ids, last, heBackend: g.info().heBackend };
    } finally {
      await g.dispose();
    }
  }

  it('HE-LoRA equals plaintext LoRA for 64 greedy steps, every packing and decrypt mode (CUDA CKKS)', async () => {
    const c = model.config;
    const shape = { hiddenSize: c.hiddenSize, numLayers: c.numHiddenLayers, numHeads: c.numAttentionHeads, numKvHeads: c.numKeyValueHeads, headDim: c.headDim, intermediateSize: c.intermediateSize };
    const ex = makeSyntheticExpert(shape, { name: 'banking_expert', r: 32, alpha: 64, targetModules: ['q_proj'] }, 77);
    const p = ex.finalHiddenPair(c.hiddenSize);
    const finalPair = { rank: p.rank, a: p.a, b: p.b };
    const base = await tokens({ mode: 'base' });
    const lora = await tokens({ mode: 'lora', finalPair, scaling: ex.scaling });
    expect(lora.ids).not.toEqual(base.ids);
    for (const packing of PACKINGS) {
      for (const decrypt of ['batched', 'sequential'] as const) {
        const he = await tokens({ mode: 'he-lora', finalPair, scaling: ex.scaling, packing, decrypt, polyN: 8192 });
        expect(he.heBackend).toBe(packing === 'coefficients' && decrypt === 'batched' ? 'cuda-resident' : 'cuda');
        expect(he.ids, `${packing}/${decrypt}`).toEqual(lora.ids);
        const st = toStageTimes(he.last);
        for (const s of ['encode', 'encrypt', 'ct_pt_multiply', 'decrypt', 'extract_sum', 'lm_head', 'sampling', 'forward']) {
          expect(st[s as keyof typeof st], `${packing}/${decrypt} ${s}`).toBeGreaterThanOrEqual(0);
        }
      }
    }
  });

  it('resident and per-op CUDA paths give the same tokens; DP on the device draws noise and counts releases', async () => {
    const c = model.config;
    const d = c.hiddenSize;
    const a = Float32Array.from({ length: 32 * d }, () => ((Math.random() * 2 - 1) * 1.7) / Math.sqrt(d));
    const b = Float32Array.from({ length: d * 32 }, () => (Math.random() * 2 - 1) * 0.05);
    const finalPair = { rank: 32, a, b };
    const lora = await tokens({ mode: 'lora', finalPair, scaling: 2 });
    const res = await tokens({ mode: 'he-lora', finalPair, scaling: 2, packing: 'coefficients', polyN: 16384 });
    const perOp = await tokens({ mode: 'he-lora', finalPair, scaling: 2, packing: 'coefficients', polyN: 16384, resident: false });
    expect(res.heBackend).toBe('cuda-resident');
    expect(perOp.heBackend).toBe('cuda');
    expect(res.ids).toEqual(lora.ids);
    expect(perOp.ids).toEqual(lora.ids);
    const g = await createGenerator(tiny, { mode: 'he-lora', finalPair, scaling: 2, packing: 'coefficients', polyN: 16384, dp: { clipNorm: 1, sigma: 3 } });
    let s = await g.start(prompt);
    for (let i = 0; i < 3; i++) s = await g.next(s.token);
    expect(g.info().releases).toBe(4);
    expect(toStageTimes(s.stages).dp_noise).toBeGreaterThanOrEqual(0);
    await g.dispose();
  });

  it('HE A h within 1e-4 relative of float64 at d = 1536, r = 32 on CUDA, and equal to the CPU CKKS result within 1e-6', async () => {
    const bigModel = await Model.load('qwen2.5-1.5b-shape', { numLayers: 1, seed: 1, backend: 'cuda', contextLength: 64 });
    const big = await bigModel.createContext();
    try {
      const d = 1536;
      const r = 32;
      const a = Float32Array.from({ length: r * d }, () => ((Math.random() * 2 - 1) * 1.7) / Math.sqrt(d));
      const b = new Float32Array(d * r);
      const x = Float64Array.from({ length: d }, () => Math.random() * 2 - 1);
      const ref = naive(a, x, r);
      for (const packing of PACKINGS) {
        for (const polyN of [8192, 16384, 32768]) {
          for (const decrypt of ['batched', 'sequential'] as const) {
            const g = await createGenerator(big, { mode: 'he-lora', finalPair: { rank: r, a, b }, packing, polyN, decrypt });
            const y = await g.heApply(x);
            await g.dispose();
            expect(maxRel(y, ref), `${packing}/${polyN}/${decrypt}`).toBeLessThan(1e-4);
          }
        }
        const gc = await createGenerator(big, { mode: 'he-lora', finalPair: { rank: r, a, b }, packing, polyN: 16384, heBackend: 'cpu' });
        const gg = await createGenerator(big, { mode: 'he-lora', finalPair: { rank: r, a, b }, packing, polyN: 16384 });
        expect(maxRel(await gg.heApply(x), await gc.heApply(x))).toBeLessThan(1e-6);
        await gc.dispose();
        await gg.dispose();
      }
    } finally {
      await big.dispose();
      await bigModel.dispose();
    }
  });

  it('the Pipeline opens on CUDA with the 1.5B shape and streams he-lora tokens', async () => {
    const p = await Pipeline.open({ backend: 'cuda', maxTokens: 8 });
    try {
      expect(p.describe()).toMatchObject({ backend: 'cuda', hiddenSize: 1536, vocabSize: 151936 });
      const lora = await p.run('What is a savings account?', { mode: 'lora', temperature: 0 });
      const he = await p.run('What is a savings account?', { mode: 'he-lora', temperature: 0 });
      expect(he.events.map((e) => e.id)).toEqual(lora.events.map((e) => e.id));
      expect(he.summary.tokPerS).toBeGreaterThan(0);
      expect(he.summary.heBackend).toBe('cuda-resident'); // default: coefficients, batched
      for (const s of ['encode', 'encrypt', 'ct_pt_multiply', 'decrypt', 'extract_sum', 'lora_b'] as const) {
        expect(he.summary.stageMedians[s], s).toBeGreaterThan(0);
      }
    } finally {
      await p.dispose();
    }
  });

  it('placement layers under HE on the GPU (issue 13 item 4): r 16 q_proj + v_proj on all 28 layers of the 1.5B shape, 64 greedy tokens equal plaintext LoRA', async () => {
    const bigModel = await Model.load('qwen2.5-1.5b-shape', { seed: 5, backend: 'cuda', contextLength: 128 });
    const big = await bigModel.createContext();
    try {
      const c = bigModel.config;
      expect(c.numHiddenLayers).toBe(28);
      const shape = { hiddenSize: c.hiddenSize, numLayers: c.numHiddenLayers, numHeads: c.numAttentionHeads, numKvHeads: c.numKeyValueHeads, headDim: c.headDim, intermediateSize: c.intermediateSize };
      const ex = makeSyntheticExpert(shape, { name: 'qv16', r: 16, alpha: 32, targetModules: ['q_proj', 'v_proj'] }, Math.floor(Math.random() * 1e9));
      expect(ex.pairs).toHaveLength(56);
      const pairs = ex.pairs.map((p) => ({ rank: p.rank, a: p.a, b: p.b, layer: p.layer, module: p.module, underHe: true }));
      const run = async (config: GeneratorConfig): Promise<{ ids: number[]; heBackend: string; releases: number }> => {
        const g = await createGenerator(big, config);
        try {
          const ids: number[] = [];
          let s = await g.start(prompt, { temperature: 0 });
          for (let i = 0; i < 64; i++) {
            ids.push(s.token);
            if (i + 1 < 64) s = await g.next(s.token);
          }
          return { ids, heBackend: g.info().heBackend, releases: g.info().releases };
        } finally {
          await g.dispose();
        }
      };
      const base = await run({ mode: 'base' });
      const lora = await run({ mode: 'lora', placement: 'layers', pairs, scaling: ex.scaling });
      expect(lora.ids).not.toEqual(base.ids);
      const he = await run({ mode: 'he-lora', placement: 'layers', pairs, scaling: ex.scaling, packing: 'coefficients', polyN: 16384 });
      expect(he.heBackend).toMatch(/^cuda/);
      // 56 sites x (5 prompt positions + 63 decode steps)
      expect(he.releases).toBe(56 * (prompt.length + 63));
      expect(he.ids).toEqual(lora.ids);
    } finally {
      await big.dispose();
      await bigModel.dispose();
    }
  });
});

/**
 * Plaintext LoRA resident on the GPU (issue 13 item 2), so HE-LoRA vs LoRA compares like with
 * like: on a CUDA model the final-hidden LoRA step and the in-model layer adapters run on the
 * device (loraBackend 'cuda-resident'). Checked against the host float64 path of the same CUDA
 * model (same tokens), against the CPU backend with the same synthetic weights (teacher-forced
 * on the CPU's greedy tokens: logits within 2e-2, the same argmax wherever the CPU's top-2
 * margin exceeds twice the error), and mixed with HE at hooked sites.
 */
describe.skipIf(noGpu)('plaintext LoRA resident on the GPU (issue 13 item 2)', () => {
  let gpuModel: Model;
  let cpuModel: Model;
  let gpu: ModelContext;
  let cpu: ModelContext;
  const prompt = Int32Array.from([1, 17, 42, 99, 5]);
  beforeAll(async () => {
    gpuModel = await Model.load('tiny', { seed: 11, backend: 'cuda', dtype: 'bf16', contextLength: 256 });
    cpuModel = await Model.load('tiny', { seed: 11, backend: 'cpu', dtype: 'bf16', contextLength: 256 });
    gpu = await gpuModel.createContext();
    cpu = await cpuModel.createContext();
  });
  afterAll(async () => {
    await gpu?.dispose();
    await cpu?.dispose();
    await gpuModel?.dispose();
    await cpuModel?.dispose();
  });

  /** `steps` greedy tokens (teacher-forced on `forced` when given) and each step's logits. */
  async function run(ctx: ModelContext, config: GeneratorConfig, steps: number, forced?: number[]): Promise<{ ids: number[]; logits: Float32Array[]; loraBackend: string; heBackend: string }> {
    const g = await createGenerator(ctx, config);
    try {
      const ids: number[] = [];
      const logits: Float32Array[] = [];
      let s = await g.start(prompt, { temperature: 0 });
      for (let i = 0; i < steps; i++) {
        ids.push(s.token);
        logits.push(ctx.logits());
        if (i + 1 < steps) s = await g.next(forced ? forced[i] : s.token);
      }
      const info = g.info();
      return { ids, logits, loraBackend: info.loraBackend, heBackend: info.heBackend };
    } finally {
      await g.dispose();
    }
  }
  function shape() {
    const c = gpuModel.config;
    return { hiddenSize: c.hiddenSize, numLayers: c.numHiddenLayers, numHeads: c.numAttentionHeads, numKvHeads: c.numKeyValueHeads, headDim: c.headDim, intermediateSize: c.intermediateSize };
  }
  /** The CUDA run teacher-forced on the CPU's greedy tokens, step by step against the CPU's logits. */
  async function againstCpu(config: GeneratorConfig, steps: number, what: string): Promise<void> {
    const ref = await run(cpu, config, steps);
    expect(ref.loraBackend).toBe('host');
    const got = await run(gpu, config, steps, ref.ids);
    expect(got.loraBackend).toBe('cuda-resident');
    compareSteps(got.logits, ref.logits, 2e-2, what);
  }

  it('final-hidden: the device step gives the host float64 path\'s tokens for 64 greedy steps and matches the CPU backend', async () => {
    const ex = makeSyntheticExpert(shape(), { name: 'banking_expert', r: 32, alpha: 64, targetModules: ['q_proj'] }, 77);
    const p = ex.finalHiddenPair(gpuModel.config.hiddenSize);
    const config: GeneratorConfig = { mode: 'lora', finalPair: { rank: p.rank, a: p.a, b: p.b }, scaling: ex.scaling };
    const base = await run(gpu, { mode: 'base' }, 64);
    const dev = await run(gpu, config, 64);
    expect(dev.loraBackend).toBe('cuda-resident');
    expect(dev.ids).not.toEqual(base.ids);
    const host = await run(gpu, { ...config, resident: false }, 64);
    expect(host.loraBackend).toBe('host');
    expect(dev.ids).toEqual(host.ids);
    for (let s = 0; s < 64; s++) expect(maxAbsDiff(dev.logits[s], host.logits[s]), `step ${s}`).toBeLessThan(1e-3);
    await againstCpu(config, 64, 'final-hidden');
  });

  it('layers: q_proj + v_proj + down_proj adapters run on the device and match the CPU backend for 32 greedy steps', async () => {
    const ex = makeSyntheticExpert(shape(), { name: 'qvd', r: 16, alpha: 32, targetModules: ['q_proj', 'v_proj', 'down_proj'] }, 2024);
    const pairs = ex.pairs.map((p) => ({ rank: p.rank, a: p.a, b: p.b, layer: p.layer, module: p.module, underHe: false }));
    expect(pairs).toHaveLength(3 * gpuModel.config.numHiddenLayers);
    const config: GeneratorConfig = { mode: 'lora', placement: 'layers', pairs, scaling: ex.scaling };
    const base = await run(gpu, { mode: 'base' }, 32);
    const dev = await run(gpu, config, 32);
    expect(dev.loraBackend).toBe('cuda-resident');
    expect(dev.ids).not.toEqual(base.ids);
    await againstCpu(config, 32, 'layers');
  });

  it('layers mixed: q_proj under HE (hooked, host) beside plaintext v_proj and down_proj on the device equals all-plaintext LoRA', async () => {
    const ex = makeSyntheticExpert(shape(), { name: 'qvd', r: 16, alpha: 32, targetModules: ['q_proj', 'v_proj', 'down_proj'] }, 99);
    const pairs = ex.pairs.map((p) => ({ rank: p.rank, a: p.a, b: p.b, layer: p.layer, module: p.module, underHe: p.module === 'q_proj' }));
    const lora = await run(gpu, { mode: 'lora', placement: 'layers', pairs, scaling: ex.scaling }, 32);
    expect(lora.loraBackend).toBe('cuda-resident');
    const he = await run(gpu, { mode: 'he-lora', placement: 'layers', pairs, scaling: ex.scaling, packing: 'coefficients', polyN: 8192 }, 32);
    expect(he.heBackend).toMatch(/^cuda/);
    expect(he.loraBackend).toBe('cuda-resident'); // the plaintext pairs: no hook at their sites
    expect(he.ids).toEqual(lora.ids);
  });
});
