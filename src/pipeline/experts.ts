/**
 * Synthetic experts written as real PEFT folders, plus the loader of an experts root.
 *
 * No trained adapters can be downloaded here, so the three experts of the original
 * (`banking_expert`, `investment_expert`, `shared_attention`) are generated for a given model
 * shape from a seed. They are real PEFT folders (any PEFT-aware tool reads them) with a
 * `router.json` beside them holding the original's keywords. Values are deterministic in the
 * seed (a splitmix-style hash per element, not a CSPRNG: these are test fixtures, not secrets).
 *
 * Magnitudes: the delta size is stated and configurable. A ~ uniform with std 1/sqrt(in), and B
 * uniform with the std that makes the adapter's output a chosen fraction rho (`relativeDelta`,
 * default DEFAULT_RELATIVE_DELTA = 5%) of its input's norm:
 *     E |scaling * B A x| / |x| = rho   for x of any direction,
 * since |A x|^2 ~ r |x|^2 / in and |B y|^2 ~ out * std_B^2 * |y|^2, so
 *     std_B = rho / (scaling * sqrt(out * r / in)).
 * For the final-hidden placement x is the final hidden state h (the delta is added to h: rho is
 * |delta| / |h| at the adapted point); for layers x is the projection's input. A few percent is
 * the order of magnitude of real LoRA fine-tunes (they move the hidden state a little; earlier
 * fixtures used about 30%, which drowned any DP utility trade-off). measuredRelativeDelta()
 * measures rho on real hidden states (the pipeline bench reports it; a unit test checks it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loraScaling, PeftAdapter, type AdapterConfig, type LoraPair, type ProjectionName } from './adapter';
import { KeywordRouter, ORIGINAL_ROUTER_CONFIG } from './router';
import type { SafetensorsDType } from './safetensors';

/** The parts of a Qwen2 shape an adapter depends on. */
export interface ModelShape {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
}

export const QWEN25_1P5B_SHAPE: ModelShape = { hiddenSize: 1536, numLayers: 28, numHeads: 12, numKvHeads: 2, headDim: 128, intermediateSize: 8960 };

export function projectionDims(shape: ModelShape, m: ProjectionName): { inDim: number; outDim: number } {
  const q = shape.numHeads * shape.headDim;
  const kv = shape.numKvHeads * shape.headDim;
  switch (m) {
    case 'q_proj': return { inDim: shape.hiddenSize, outDim: q };
    case 'k_proj':
    case 'v_proj': return { inDim: shape.hiddenSize, outDim: kv };
    case 'o_proj': return { inDim: q, outDim: shape.hiddenSize };
    case 'gate_proj':
    case 'up_proj': return { inDim: shape.hiddenSize, outDim: shape.intermediateSize };
    case 'down_proj': return { inDim: shape.intermediateSize, outDim: shape.hiddenSize };
  }
}

export interface SyntheticExpertSpec {
  name: string;
  r: number;
  alpha: number;
  targetModules: ProjectionName[];
  useRslora?: boolean;
  /** Layers to adapt (default: every layer). */
  layers?: number[];
  /** |scaling B A x| / |x| the adapter is built for (default DEFAULT_RELATIVE_DELTA). */
  relativeDelta?: number;
}

/** The synthetic experts' default delta: 5% of the norm of the hidden state at the adapted point. */
export const DEFAULT_RELATIVE_DELTA = 0.05;

function checkRelativeDelta(v: number, name: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 10) throw new RangeError(`${name} must be a number in (0, 10], got ${String(v)}`);
  return v;
}

/** Median over hidden states of |scaling B (A h)| / |h| for one pair (A: [r, in], B: [out, r]). */
export function measuredRelativeDelta(pair: Pick<LoraPair, 'rank' | 'inDim' | 'outDim' | 'a' | 'b'>, scaling: number, hiddens: ArrayLike<number>[]): number {
  if (hiddens.length === 0) throw new RangeError('measuredRelativeDelta: no hidden states');
  const ratios = hiddens.map((h) => {
    if (h.length !== pair.inDim) throw new RangeError(`measuredRelativeDelta: hidden state of ${h.length} values, the pair takes ${pair.inDim}`);
    const y = new Float64Array(pair.rank);
    for (let r = 0; r < pair.rank; r++) {
      let acc = 0;
      for (let j = 0; j < pair.inDim; j++) acc += pair.a[r * pair.inDim + j] * h[j];
      y[r] = acc;
    }
    let dd = 0, hh = 0;
    for (let o = 0; o < pair.outDim; o++) {
      let acc = 0;
      for (let r = 0; r < pair.rank; r++) acc += pair.b[o * pair.rank + r] * y[r];
      dd += (scaling * acc) ** 2;
    }
    for (let j = 0; j < h.length; j++) hh += h[j] * h[j];
    return Math.sqrt(dd / hh);
  }).sort((x, y) => x - y);
  const m = ratios.length >> 1;
  return ratios.length % 2 ? ratios[m] : (ratios[m - 1] + ratios[m]) / 2;
}

/** The three experts of the original, with the shapes a real fine-tune would use. */
export const DEFAULT_EXPERT_SPECS: SyntheticExpertSpec[] = [
  { name: 'banking_expert', r: 32, alpha: 64, targetModules: ['q_proj', 'v_proj'] },
  { name: 'investment_expert', r: 32, alpha: 64, targetModules: ['q_proj', 'v_proj'] },
  { name: 'shared_attention', r: 32, alpha: 32, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], useRslora: true },
];

/** Deterministic uniform [-1, 1) stream (xorshift128+ on 32-bit halves; fixtures only). */
class FixtureRng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  constructor(seed: number, stream: number) {
    // splitmix32 expansion of (seed, stream) into a 128-bit state
    let x = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next() | 1;
  }
  /** xoshiro128** step. */
  nextU32(): number {
    const result = Math.imul(((Math.imul(this.s1, 5) << 7) | (Math.imul(this.s1, 5) >>> 25)) >>> 0, 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result;
  }
  uniform(): number {
    return this.nextU32() / 2 ** 31 - 1;
  }
}

function hashName(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Builds one synthetic expert in memory. */
export function makeSyntheticExpert(shape: ModelShape, spec: SyntheticExpertSpec, seed: number, baseModel = 'synthetic'): PeftAdapter {
  const layers = spec.layers ?? Array.from({ length: shape.numLayers }, (_, i) => i);
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l >= shape.numLayers) throw new RangeError(`spec.layers: ${l} is outside [0, ${shape.numLayers})`);
  }
  const config: AdapterConfig = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    r: spec.r,
    lora_alpha: spec.alpha,
    lora_dropout: 0,
    bias: 'none',
    fan_in_fan_out: false,
    use_rslora: spec.useRslora ?? false,
    target_modules: [...spec.targetModules],
    layers_to_transform: spec.layers ? [...spec.layers] : null,
  };
  const scaling = loraScaling(config);
  const rho = checkRelativeDelta(spec.relativeDelta ?? DEFAULT_RELATIVE_DELTA, 'spec.relativeDelta');
  const sqrt3 = Math.sqrt(3);
  const pairs: LoraPair[] = [];
  let stream = 0;
  for (const layer of layers) {
    for (const module of spec.targetModules) {
      const { inDim, outDim } = projectionDims(shape, module);
      const rng = new FixtureRng((seed ^ hashName(spec.name)) >>> 0, stream++);
      const a = new Float32Array(spec.r * inDim);
      const aHalf = sqrt3 / Math.sqrt(inDim);
      for (let i = 0; i < a.length; i++) a[i] = aHalf * rng.uniform();
      const b = new Float32Array(outDim * spec.r);
      // std_B = rho / (scaling sqrt(out r / in)): |scaling B A x| = rho |x| (see the file comment)
      const bHalf = (sqrt3 * rho) / (scaling * Math.sqrt((outDim * spec.r) / inDim));
      for (let i = 0; i < b.length; i++) b[i] = bHalf * rng.uniform();
      pairs.push({ layer, module, rank: spec.r, inDim, outDim, a, b });
    }
  }
  return new PeftAdapter(spec.name, config, pairs);
}

/**
 * Writes the synthetic experts as PEFT folders under `root` (root/<name>/...) and the router
 * config (root/router.json). Returns the folder names written.
 */
export function writeSyntheticExperts(
  root: string,
  shape: ModelShape,
  options: { seed?: number; specs?: SyntheticExpertSpec[]; dtype?: SafetensorsDType; baseModel?: string; relativeDelta?: number } = {},
): string[] {
  const rho = checkRelativeDelta(options.relativeDelta ?? DEFAULT_RELATIVE_DELTA, 'relativeDelta');
  const specs = (options.specs ?? DEFAULT_EXPERT_SPECS).map((s) => ({ relativeDelta: rho, ...s }));
  const seed = options.seed ?? 0;
  fs.mkdirSync(root, { recursive: true });
  for (const spec of specs) {
    makeSyntheticExpert(shape, spec, seed, options.baseModel).save(path.join(root, spec.name), options.dtype ?? 'F32');
  }
  const routerConfig = {
    ...ORIGINAL_ROUTER_CONFIG,
    experts: Object.fromEntries(specs.map((s) => [s.name, ORIGINAL_ROUTER_CONFIG.experts[s.name] ?? { gate_type: 'none', always_active: false }])),
  };
  if (!specs.some((s) => s.name === routerConfig.default)) delete (routerConfig as { default?: string }).default;
  fs.writeFileSync(path.join(root, 'router.json'), JSON.stringify(routerConfig, null, 2) + '\n');
  fs.writeFileSync(
    path.join(root, 'SYNTHETIC.md'),
    `Synthetic LoRA experts (random weights, seed ${seed}) for a model of shape ${JSON.stringify(shape)}.\n` +
      `Delta size: |scaling B A x| / |x| = ${specs.map((s) => `${s.name} ${s.relativeDelta}`).join(', ')} (relative to the adapted input's norm).\n` +
      'Generated by tensafe (src/pipeline/experts.ts); they are not trained and carry no knowledge.\n',
  );
  return specs.map((s) => s.name);
}

/** The experts of a folder: every sub-folder holding an adapter_config.json, plus router.json when present. */
export class ExpertSet {
  private readonly cache = new Map<string, PeftAdapter>();
  readonly router: KeywordRouter;

  constructor(readonly root: string) {
    if (!fs.existsSync(root)) throw new RangeError(`experts folder '${root}' does not exist`);
    const routerFile = path.join(root, 'router.json');
    const names = this.names();
    this.router = fs.existsSync(routerFile)
      ? KeywordRouter.fromFile(routerFile)
      : new KeywordRouter({ experts: Object.fromEntries(names.map((n) => [n, { gate_type: 'none' as const }])) });
    for (const n of this.router.experts()) {
      if (!names.includes(n)) throw new RangeError(`${routerFile}: expert '${n}' has no adapter folder in ${root}`);
    }
  }

  names(): string[] {
    return fs
      .readdirSync(this.root, { withFileTypes: true })
      .filter((e) => e.isDirectory() && fs.existsSync(path.join(this.root, e.name, 'adapter_config.json')))
      .map((e) => e.name)
      .sort();
  }

  get(name: string): PeftAdapter {
    let a = this.cache.get(name);
    if (!a) {
      if (!this.names().includes(name)) throw new RangeError(`expert '${name}' not found; available: ${this.names().join(', ')}`);
      a = PeftAdapter.load(path.join(this.root, name), name);
      this.cache.set(name, a);
    }
    return a;
  }

  /** 'auto' routes by keywords; any other value names the expert. */
  resolve(expert: string, query: string): { name: string; adapter: PeftAdapter; routed: boolean; matched: string[] } {
    if (expert === 'auto') {
      const d = this.router.route(query);
      return { name: d.expert, adapter: this.get(d.expert), routed: true, matched: d.matched };
    }
    return { name: expert, adapter: this.get(expert), routed: false, matched: [] };
  }
}
