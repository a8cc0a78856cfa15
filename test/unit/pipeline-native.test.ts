/**
 * The native HE-LoRA step on the CPU: packing arithmetic against naive float64, HE results
 * against float64 (1e-4 relative), and HE-LoRA == plaintext LoRA token for token (64 greedy
 * steps, DP off) for every packing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, type ModelContext } from '../../src/engine/model';
import { makeSyntheticExpert } from '../../src/pipeline/experts';
import {
  createGenerator,
  heLinear,
  nativeNoise,
  packingLayout,
  simulatePacking,
  toStageTimes,
  type GeneratorConfig,
} from '../../src/pipeline/native';

const PACKINGS = ['replicated-slots', 'rotations', 'coefficients'] as const;

function randA(rank: number, d: number): Float32Array {
  return Float32Array.from({ length: rank * d }, () => ((Math.random() * 2 - 1) * 1.7) / Math.sqrt(d));
}
function randX(d: number, scale = 1): Float64Array {
  return Float64Array.from({ length: d }, () => (Math.random() * 2 - 1) * scale);
}
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

describe('packing layouts', () => {
  it('match the counts of the analysis at d = 1536, r = 32', () => {
    const L = (packing: (typeof PACKINGS)[number], polyN: number) => packingLayout({ packing, polyN, rank: 32, inDim: 1536 });
    // the original: 5 replicas / 7 products at 16384, 10 / 4 at 32768, 2 / 16 at 8192
    expect([L('replicated-slots', 16384).rowsPerPlaintext, L('replicated-slots', 16384).products]).toEqual([5, 7]);
    expect([L('replicated-slots', 32768).rowsPerPlaintext, L('replicated-slots', 32768).products]).toEqual([10, 4]);
    expect([L('replicated-slots', 8192).rowsPerPlaintext, L('replicated-slots', 8192).products]).toEqual([2, 16]);
    // coefficients: N / d rows per plaintext
    expect([L('coefficients', 16384).rowsPerPlaintext, L('coefficients', 16384).products]).toEqual([10, 4]);
    expect(L('coefficients', 32768).products).toBe(2);
    // rotations: segments padded to 2048, log2(2048) = 11 rotations per product
    expect([L('rotations', 16384).segment, L('rotations', 16384).products, L('rotations', 16384).rotationsPerProduct]).toEqual([2048, 8, 11]);
  });
  it('cuts inputs longer than the capacity into balanced chunks', () => {
    const l = packingLayout({ packing: 'replicated-slots', polyN: 16384, rank: 32, inDim: 8960 });
    expect([l.chunks, l.chunk]).toEqual([2, 4480]);
    expect(packingLayout({ packing: 'coefficients', polyN: 16384, rank: 32, inDim: 8960 }).chunks).toBe(1);
  });
  it('rejects bad specs naming the field', () => {
    expect(() => packingLayout({ packing: 'diagonal' as never, polyN: 16384, rank: 32, inDim: 64 })).toThrow(/spec.packing/);
    expect(() => packingLayout({ packing: 'rotations', polyN: 1000, rank: 32, inDim: 64 })).toThrow(/polyN/);
    expect(() => packingLayout({ packing: 'rotations', polyN: 1024, rank: 0, inDim: 64 })).toThrow(/rank/);
  });
});

describe('packing arithmetic in float64 (the reference of the HE versions)', () => {
  for (const packing of PACKINGS) {
    it(`${packing}: simulation equals naive A x, with and without chunking`, () => {
      for (const [polyN, rank, d] of [
        [64, 5, 12], // several rows per plaintext
        [64, 7, 50], // chunked: 50 > 32 slots
        [128, 3, 128], // exactly full (coefficients) / chunked (slots)
        [256, 32, 40],
      ] as const) {
        const a = randA(rank, d);
        const x = randX(d);
        const y = simulatePacking({ packing, polyN, rank, inDim: d }, a, x);
        expect(maxRel(y, naive(a, x, rank))).toBeLessThan(1e-12);
      }
    });
  }
});

describe('HE A x on the CPU', () => {
  for (const packing of PACKINGS) {
    it(`${packing}: within 1e-4 relative of float64 (d = 1536 and, for the slot/coefficient packings, r = 32 at N = 16384 plus a chunked input)`, async () => {
      const cases: Array<[number, number, number]> = packing === 'rotations' ? [[8192, 8, 1536]] : [[16384, 32, 1536], [8192, 4, 5000]];
      for (const [polyN, rank, d] of cases) {
        const a = randA(rank, d);
        const x = randX(d, 3);
        for (const [decrypt, encryption] of [['batched', 'secret-key'], ['sequential', 'public-key']] as const) {
          const { y, stages } = await heLinear({ packing, polyN, rank, inDim: d, decrypt, encryption }, a, x);
          expect(maxRel(y, naive(a, x, rank))).toBeLessThan(1e-4);
          const st = toStageTimes(stages[0]);
          expect(Object.keys(st).sort()).toEqual(['ct_pt_multiply', 'decrypt', 'encode', 'encrypt', 'extract_sum']);
        }
      }
    });
  }
});

describe('native DP sampler', () => {
  it('draws N(0, 1) (moments within 6 standard errors)', () => {
    const n = 100_000;
    const z = nativeNoise(n);
    let m = 0;
    let v = 0;
    for (const x of z) m += x;
    m /= n;
    for (const x of z) v += (x - m) ** 2;
    v /= n;
    expect(Math.abs(m)).toBeLessThan(6 / Math.sqrt(n));
    expect(Math.abs(v - 1)).toBeLessThan(6 * Math.sqrt(2 / n));
    expect(nativeNoise(2)[0]).not.toBe(nativeNoise(2)[0]);
  });
});

describe('generation: HE-LoRA equals plaintext LoRA (tiny model, DP off, greedy)', () => {
  let model: Model;
  let context: ModelContext;
  const STEPS = 64;
  const prompt = Int32Array.from([1, 17, 42, 99, 5]);
  beforeAll(async () => {
    model = await Model.load('tiny', { seed: 3, backend: 'cpu', contextLength: 256 });
    context = await model.createContext();
  });
  afterAll(async () => {
    await context?.dispose();
    await model?.dispose();
  });

  async function run(config: GeneratorConfig): Promise<{ tokens: number[]; stages: Float64Array[] }> {
    const g = await createGenerator(context, config);
    try {
      const tokens: number[] = [];
      const stages: Float64Array[] = [];
      let s = await g.start(prompt, { temperature: 0 });
      for (let i = 0; i < STEPS; i++) {
        tokens.push(s.token);
        stages.push(s.stages);
        if (i + 1 < STEPS) s = await g.next(s.token);
      }
      return { tokens, stages };
    } finally {
      await g.dispose();
    }
  }

  it('final-hidden: lora differs from base, he-lora equals lora for every packing and decrypt mode', async () => {
    const cfg = model.config;
    const shape = { hiddenSize: cfg.hiddenSize, numLayers: cfg.numHiddenLayers, numHeads: cfg.numAttentionHeads, numKvHeads: cfg.numKeyValueHeads, headDim: cfg.headDim, intermediateSize: cfg.intermediateSize };
    const expert = makeSyntheticExpert(shape, { name: 'banking_expert', r: 32, alpha: 64, targetModules: ['q_proj'] }, Math.floor(Math.random() * 1e9));
    const pair = expert.finalHiddenPair(cfg.hiddenSize);
    const finalPair = { rank: pair.rank, a: pair.a, b: pair.b };
    const base = await run({ mode: 'base' });
    const lora = await run({ mode: 'lora', finalPair, scaling: expert.scaling });
    expect(lora.tokens).not.toEqual(base.tokens);
    for (const packing of PACKINGS) {
      for (const decrypt of packing === 'rotations' ? (['batched'] as const) : (['batched', 'sequential'] as const)) {
        const he = await run({ mode: 'he-lora', finalPair, scaling: expert.scaling, packing, decrypt, polyN: 8192 });
        expect(he.tokens, `${packing}/${decrypt}`).toEqual(lora.tokens);
        const st = toStageTimes(he.stages[3]);
        for (const s of ['forward', 'encode', 'encrypt', 'ct_pt_multiply', 'decrypt', 'extract_sum', 'lora_b', 'lm_head', 'sampling']) {
          expect(st[s as keyof typeof st], s).toBeGreaterThanOrEqual(0);
        }
        expect(st.dp_noise).toBeUndefined();
      }
    }
  });

  it('layers: HE pairs through the projection hook equal the model\'s plaintext adapters', async () => {
    const cfg = model.config;
    const shape = { hiddenSize: cfg.hiddenSize, numLayers: cfg.numHiddenLayers, numHeads: cfg.numAttentionHeads, numKvHeads: cfg.numKeyValueHeads, headDim: cfg.headDim, intermediateSize: cfg.intermediateSize };
    const expert = makeSyntheticExpert(shape, { name: 'shared_attention', r: 8, alpha: 16, targetModules: ['q_proj', 'v_proj', 'down_proj'] }, 11);
    const pairs = expert.pairs.map((p, i) => ({ rank: p.rank, a: p.a, b: p.b, layer: p.layer, module: p.module, underHe: i % 2 === 0 }));
    const base = await run({ mode: 'base' });
    const lora = await run({ mode: 'lora', placement: 'layers', pairs, scaling: expert.scaling });
    expect(lora.tokens).not.toEqual(base.tokens);
    const he = await run({ mode: 'he-lora', placement: 'layers', pairs, scaling: expert.scaling, packing: 'coefficients', polyN: 8192 });
    expect(he.tokens).toEqual(lora.tokens);
  });

  it('DP on: noise is drawn per token and releases are counted', async () => {
    const cfg = model.config;
    const d = cfg.hiddenSize;
    const a = randA(4, d);
    const b = Float32Array.from({ length: d * 4 }, () => Math.random() * 0.1);
    const g = await createGenerator(context, { mode: 'he-lora', finalPair: { rank: 4, a, b }, polyN: 8192, dp: { clipNorm: 1, sigma: 2 } });
    let s = await g.start(prompt);
    for (let i = 0; i < 4; i++) s = await g.next(s.token);
    expect(g.info().releases).toBe(5);
    expect(toStageTimes(s.stages).dp_noise).toBeGreaterThanOrEqual(0);
    await g.dispose();
  });

  it('validates the config at the boundary', async () => {
    await expect(createGenerator(context, { mode: 'fast' as never })).rejects.toThrow(/config.mode/);
    await expect(createGenerator(context, { mode: 'lora', finalPair: { rank: 4, a: new Float32Array(3), b: new Float32Array(4 * 64) } })).rejects.toThrow(/finalPair.a/);
    await expect(createGenerator({} as never, { mode: 'base' })).rejects.toThrow(/model/);
    await expect(createGenerator(context, { mode: 'he-lora', finalPair: { rank: 4, a: randA(4, 64), b: new Float32Array(256) }, polyN: 1000 })).rejects.toThrow(/polyN/);
  });
});
