/**
 * PEFT LoRA adapters: a folder holding `adapter_config.json` and `adapter_model.safetensors`
 * (field-notes section 2). Keys look like
 *   base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight   [r, in]
 *   base_model.model.model.layers.{i}.mlp.down_proj.lora_B.weight      [out, r]
 * (an adapter-name segment such as `.default` before `.weight` is accepted on reading).
 * The forward is y = W x + scaling * B (A x), scaling = alpha / r, or alpha / sqrt(r) with rsLoRA;
 * unlike the original, the scaling is always applied.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatError, readSafetensors, writeSafetensors, type SafetensorsDType, type TensorToWrite } from './safetensors';

export const PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type ProjectionName = (typeof PROJECTIONS)[number];

/** The fields of adapter_config.json this project reads and writes (others are preserved). */
export interface AdapterConfig {
  peft_type: 'LORA';
  r: number;
  lora_alpha: number;
  target_modules: ProjectionName[];
  use_rslora: boolean;
  /** Layers the adapter applies to; null/absent = every layer. */
  layers_to_transform?: number[] | null;
  base_model_name_or_path?: string | null;
  task_type?: string;
  bias?: string;
  lora_dropout?: number;
  fan_in_fan_out?: boolean;
  [key: string]: unknown;
}

/** One LoRA pair: delta(x) = scaling * B (A x). */
export interface LoraPair {
  layer: number;
  module: ProjectionName;
  rank: number;
  inDim: number;
  outDim: number;
  /** [rank, inDim] row-major (lora_A.weight). */
  a: Float32Array;
  /** [outDim, rank] row-major (lora_B.weight). */
  b: Float32Array;
}

export function moduleGroup(m: ProjectionName): 'self_attn' | 'mlp' {
  return m === 'gate_proj' || m === 'up_proj' || m === 'down_proj' ? 'mlp' : 'self_attn';
}

export function peftKey(layer: number, module: ProjectionName, which: 'A' | 'B'): string {
  return `base_model.model.model.layers.${layer}.${moduleGroup(module)}.${module}.lora_${which}.weight`;
}

const KEY_RE = /^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.([a-z_]+)\.lora_([AB])(?:\.[A-Za-z0-9_-]+)?\.weight$/;

export function loraScaling(config: Pick<AdapterConfig, 'r' | 'lora_alpha' | 'use_rslora'>): number {
  return config.use_rslora ? config.lora_alpha / Math.sqrt(config.r) : config.lora_alpha / config.r;
}

function checkConfig(raw: unknown, source: string): AdapterConfig {
  if (typeof raw !== 'object' || raw === null) throw formatError(`${source}: must be a JSON object`);
  const c = raw as Record<string, unknown>;
  if (c.peft_type !== 'LORA') throw formatError(`${source}: peft_type must be "LORA", got ${JSON.stringify(c.peft_type)}`);
  if (!Number.isInteger(c.r) || (c.r as number) < 1) throw formatError(`${source}: r must be a positive integer`);
  if (typeof c.lora_alpha !== 'number' || !Number.isFinite(c.lora_alpha) || c.lora_alpha <= 0) throw formatError(`${source}: lora_alpha must be a positive number`);
  let targets = c.target_modules;
  if (typeof targets === 'string') targets = [targets];
  if (!Array.isArray(targets) || targets.length === 0) throw formatError(`${source}: target_modules must be a non-empty list`);
  for (const t of targets) {
    if (!(PROJECTIONS as readonly string[]).includes(t as string)) {
      throw formatError(`${source}: target_modules entry ${JSON.stringify(t)} is not one of ${PROJECTIONS.join(', ')}`);
    }
  }
  let layers = c.layers_to_transform;
  if (typeof layers === 'number') layers = [layers];
  if (layers !== undefined && layers !== null) {
    if (!Array.isArray(layers) || !layers.every((l) => Number.isInteger(l) && l >= 0)) {
      throw formatError(`${source}: layers_to_transform must be a list of non-negative integers or null`);
    }
  }
  return {
    ...(c as object),
    peft_type: 'LORA',
    r: c.r as number,
    lora_alpha: c.lora_alpha as number,
    target_modules: targets as ProjectionName[],
    use_rslora: c.use_rslora === true,
    layers_to_transform: (layers as number[] | null | undefined) ?? null,
  };
}

export class PeftAdapter {
  constructor(
    readonly name: string,
    readonly config: AdapterConfig,
    readonly pairs: LoraPair[],
  ) {
    for (const p of pairs) {
      if (p.a.length !== p.rank * p.inDim) throw new RangeError(`pair ${p.module}@${p.layer}: A holds ${p.a.length} values, expected ${p.rank}x${p.inDim}`);
      if (p.b.length !== p.outDim * p.rank) throw new RangeError(`pair ${p.module}@${p.layer}: B holds ${p.b.length} values, expected ${p.outDim}x${p.rank}`);
      if (p.rank !== config.r) throw new RangeError(`pair ${p.module}@${p.layer}: rank ${p.rank} differs from r = ${config.r}`);
    }
  }

  get rank(): number {
    return this.config.r;
  }

  get scaling(): number {
    return loraScaling(this.config);
  }

  pair(layer: number, module: ProjectionName): LoraPair | undefined {
    return this.pairs.find((p) => p.layer === layer && p.module === module);
  }

  /**
   * The pair the `final-hidden` placement applies to the final hidden state: a square (d x d)
   * projection, preferring q_proj of the lowest layer (the pair the original used), else the
   * first square pair of o_proj.
   */
  finalHiddenPair(hiddenSize: number): LoraPair {
    const square = this.pairs.filter((p) => p.inDim === hiddenSize && p.outDim === hiddenSize);
    const order: ProjectionName[] = ['q_proj', 'o_proj'];
    for (const m of order) {
      const cands = square.filter((p) => p.module === m).sort((x, y) => x.layer - y.layer);
      if (cands.length) return cands[0];
    }
    throw new RangeError(`expert '${this.name}': no ${hiddenSize}x${hiddenSize} q_proj/o_proj pair for the final-hidden placement`);
  }

  /** Reads a PEFT folder. Every pair must have both A and B with matching shapes. */
  static load(dir: string, name = path.basename(dir)): PeftAdapter {
    const cfgFile = path.join(dir, 'adapter_config.json');
    const stFile = path.join(dir, 'adapter_model.safetensors');
    if (!fs.existsSync(cfgFile)) throw formatError(`${dir}: no adapter_config.json`);
    if (!fs.existsSync(stFile)) throw formatError(`${dir}: no adapter_model.safetensors (adapter_model.bin is not read: pickles are unsafe)`);
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    } catch (e) {
      throw formatError(`${cfgFile}: not valid JSON (${(e as Error).message})`);
    }
    const config = checkConfig(raw, cfgFile);
    const file = readSafetensors(stFile);
    const halves = new Map<string, { layer: number; module: ProjectionName; A?: { shape: number[]; data: Float32Array }; B?: { shape: number[]; data: Float32Array } }>();
    for (const [key, t] of file.tensors) {
      const m = KEY_RE.exec(key);
      if (!m) throw formatError(`${stFile}: unexpected tensor '${key}' (expected base_model.model.model.layers.{i}.<group>.<proj>.lora_{A,B}.weight)`);
      const [, layerStr, group, module, which] = m;
      if (!(PROJECTIONS as readonly string[]).includes(module)) throw formatError(`${stFile}: '${key}' targets unknown module ${module}`);
      if (moduleGroup(module as ProjectionName) !== group) throw formatError(`${stFile}: '${key}': ${module} belongs to ${moduleGroup(module as ProjectionName)}`);
      if (t.shape.length !== 2) throw formatError(`${stFile}: '${key}' must be 2-D, got [${t.shape.join(', ')}]`);
      const id = `${layerStr}.${module}`;
      const entry = halves.get(id) ?? { layer: Number(layerStr), module: module as ProjectionName };
      if (entry[which as 'A' | 'B']) throw formatError(`${stFile}: duplicate lora_${which} for layer ${layerStr} ${module}`);
      entry[which as 'A' | 'B'] = { shape: t.shape, data: t.data };
      halves.set(id, entry);
    }
    const pairs: LoraPair[] = [];
    for (const e of halves.values()) {
      if (!e.A || !e.B) throw formatError(`${stFile}: layer ${e.layer} ${e.module} has lora_${e.A ? 'A' : 'B'} only`);
      const [rA, inDim] = e.A.shape;
      const [outDim, rB] = e.B.shape;
      if (rA !== config.r || rB !== config.r) throw formatError(`${stFile}: layer ${e.layer} ${e.module}: ranks ${rA}/${rB} differ from r = ${config.r}`);
      if (!config.target_modules.includes(e.module)) throw formatError(`${stFile}: layer ${e.layer} ${e.module} is not in target_modules`);
      if (config.layers_to_transform && !config.layers_to_transform.includes(e.layer)) {
        throw formatError(`${stFile}: layer ${e.layer} is not in layers_to_transform`);
      }
      pairs.push({ layer: e.layer, module: e.module, rank: config.r, inDim, outDim, a: e.A.data, b: e.B.data });
    }
    pairs.sort((x, y) => x.layer - y.layer || PROJECTIONS.indexOf(x.module) - PROJECTIONS.indexOf(y.module));
    return new PeftAdapter(name, config, pairs);
  }

  /** Writes the folder (created if needed) in PEFT's layout. */
  save(dir: string, dtype: SafetensorsDType = 'F32'): void {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(this.config, null, 2) + '\n');
    const tensors = new Map<string, TensorToWrite>();
    for (const p of this.pairs) {
      tensors.set(peftKey(p.layer, p.module, 'A'), { dtype, shape: [p.rank, p.inDim], data: p.a });
      tensors.set(peftKey(p.layer, p.module, 'B'), { dtype, shape: [p.outDim, p.rank], data: p.b });
    }
    writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  }
}

/** Plain float64 reference of one pair: scaling * B (A x). */
export function loraDeltaReference(pair: LoraPair, scaling: number, x: ArrayLike<number>): Float64Array {
  const ax = new Float64Array(pair.rank);
  for (let i = 0; i < pair.rank; i++) {
    let s = 0;
    for (let j = 0; j < pair.inDim; j++) s += pair.a[i * pair.inDim + j] * x[j];
    ax[i] = s;
  }
  const y = new Float64Array(pair.outDim);
  for (let o = 0; o < pair.outDim; o++) {
    let s = 0;
    for (let i = 0; i < pair.rank; i++) s += pair.b[o * pair.rank + i] * ax[i];
    y[o] = scaling * s;
  }
  return y;
}
