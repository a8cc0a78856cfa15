/**
 * PipelineOptions: defaults, up-front validation (every field; errors name the option), and the
 * `seedPreset`s that reproduce the original's optimisation steps.
 */
import { Ckks } from '../engine/ckks';
import type { DpOptions, PipelineOptions } from './types';

export const MODES = ['base', 'lora', 'he-lora'] as const;
export const PACKINGS = ['replicated-slots', 'rotations', 'coefficients'] as const;
export const DECRYPT_MODES = ['sequential', 'batched'] as const;
export const PLACEMENTS = ['final-hidden', 'layers'] as const;
export const KEY_OWNERS = ['server', 'client'] as const;
export const DP_MECHANISMS = ['off', 'classic', 'analytic', 'original'] as const;
export const ACCOUNTANTS = ['rdp', 'zcdp'] as const;
export const BACKENDS = ['auto', 'cpu', 'cuda'] as const;
export const SEED_PRESET_NAMES = ['baseline', 'batched-decrypt', 'poly-n-16384', 'split-selftest'] as const;
export const LM_HEADS = ['backend', 'cpu-f32-single-thread'] as const;
export const ENCRYPTIONS = ['secret-key', 'public-key'] as const;

/** Request clamps of the original server (field-notes section 1), enforced as errors here. */
export const LIMITS = { maxTokens: 2048, temperature: 2, topK: 200 } as const;

export type ResolvedOptions = Required<Omit<PipelineOptions, 'seedPreset' | 'seed' | 'dp'>> & {
  dp: DpOptions;
  seed?: number;
  seedPreset?: PipelineOptions['seedPreset'];
};

export const DEFAULT_OPTIONS: ResolvedOptions = {
  backend: 'auto',
  model: 'default',
  mode: 'he-lora',
  expert: 'auto',
  placement: 'final-hidden',
  // The fastest packing measured here (no replication, no FFT decode); the original's
  // 'replicated-slots' is one option away and the seed presets use it.
  packing: 'coefficients',
  decrypt: 'batched',
  polyN: 16384,
  keyOwner: 'server',
  dp: { mechanism: 'off' },
  maxTokens: 32,
  timers: true,
  allowInsecure: false,
  temperature: 0,
  topK: 0,
  topP: 1,
  lmHead: 'backend',
  layersUnderHe: [],
  encryption: 'secret-key',
};

const KNOWN_KEYS = new Set<string>([...Object.keys(DEFAULT_OPTIONS), 'seed', 'seedPreset']);
const DP_KEYS = new Set(['mechanism', 'epsilon', 'delta', 'clipNorm', 'sensitivity', 'accountant']);

function typeErr(name: string, what: string, got: unknown): TypeError {
  const err = new TypeError(`option '${name}' must be ${what}, got ${describe(got)}`);
  (err as NodeJS.ErrnoException).code = 'ERR_TENSAFE_ARG_TYPE';
  return err;
}
function rangeErr(name: string, what: string, got: unknown): RangeError {
  const err = new RangeError(`option '${name}' must be ${what}, got ${describe(got)}`);
  (err as NodeJS.ErrnoException).code = 'ERR_TENSAFE_ARG_RANGE';
  return err;
}
function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}

function checkEnum<T extends string>(name: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string') throw typeErr(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, v);
  if (!allowed.includes(v as T)) throw rangeErr(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, v);
  return v as T;
}
function checkNumber(name: string, v: unknown, ok: (x: number) => boolean, what: string): number {
  if (typeof v !== 'number') throw typeErr(name, `a number (${what})`, v);
  if (!Number.isFinite(v) || !ok(v)) throw rangeErr(name, what, v);
  return v;
}
function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number') throw typeErr(name, `an integer in [${min}, ${max}]`, v);
  if (!Number.isInteger(v) || v < min || v > max) throw rangeErr(name, `an integer in [${min}, ${max}]`, v);
  return v;
}
function checkBool(name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw typeErr(name, 'a boolean', v);
  return v;
}

export function validateDpOptions(dp: unknown, prefix = 'dp'): DpOptions {
  if (typeof dp !== 'object' || dp === null || Array.isArray(dp)) throw typeErr(prefix, "an object like { mechanism: 'analytic', epsilon: 1 }", dp);
  const o = dp as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!DP_KEYS.has(k)) throw rangeErr(`${prefix}.${k}`, `one of the known keys (${[...DP_KEYS].join(', ')})`, k);
  const out: DpOptions = { mechanism: checkEnum(`${prefix}.mechanism`, o.mechanism, DP_MECHANISMS) };
  if (o.epsilon !== undefined) out.epsilon = checkNumber(`${prefix}.epsilon`, o.epsilon, (x) => x > 0, 'a finite number > 0');
  if (o.delta !== undefined) out.delta = checkNumber(`${prefix}.delta`, o.delta, (x) => x > 0 && x < 1, 'a number in (0, 1)');
  if (o.clipNorm !== undefined) out.clipNorm = checkNumber(`${prefix}.clipNorm`, o.clipNorm, (x) => x > 0, 'a finite number > 0');
  if (o.sensitivity !== undefined) out.sensitivity = checkNumber(`${prefix}.sensitivity`, o.sensitivity, (x) => x > 0, 'a finite number > 0');
  if (o.accountant !== undefined) out.accountant = checkEnum(`${prefix}.accountant`, o.accountant, ACCOUNTANTS);
  return out;
}

/**
 * Checks every field of a (partial) PipelineOptions object and returns a copy with only the
 * given fields. Unknown keys are refused (a typo must not silently fall back to a default).
 */
export function validatePipelineOptions(options: unknown): PipelineOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw typeErr('options', 'an object', options);
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KNOWN_KEYS.has(k)) throw rangeErr(k, `a known option (${[...KNOWN_KEYS].join(', ')})`, k);
  }
  const out: PipelineOptions = {};
  const has = (k: string) => o[k] !== undefined;
  if (has('backend')) out.backend = checkEnum('backend', o.backend, BACKENDS);
  if (has('model')) {
    if (typeof o.model !== 'string') throw typeErr('model', 'a preset name or a model folder', o.model);
    if (o.model.trim() === '') throw rangeErr('model', 'a non-empty preset name or folder', o.model);
    out.model = o.model;
  }
  if (has('mode')) out.mode = checkEnum('mode', o.mode, MODES);
  if (has('expert')) {
    if (typeof o.expert !== 'string') throw typeErr('expert', "an expert name or 'auto'", o.expert);
    if (!/^[A-Za-z0-9_.-]+$/.test(o.expert)) throw rangeErr('expert', "an expert name (letters, digits, _ . -) or 'auto'", o.expert);
    out.expert = o.expert;
  }
  if (has('placement')) out.placement = checkEnum('placement', o.placement, PLACEMENTS);
  if (has('packing')) out.packing = checkEnum('packing', o.packing, PACKINGS);
  if (has('decrypt')) out.decrypt = checkEnum('decrypt', o.decrypt, DECRYPT_MODES);
  if (has('polyN')) {
    // The ring dimensions the native CKKS engine accepts (native/src/ckks/params.h owns the bounds).
    const polyNs = Ckks.polyNs();
    if (typeof o.polyN !== 'number') throw typeErr('polyN', `one of ${polyNs.join(', ')}`, o.polyN);
    if (!polyNs.includes(o.polyN)) throw rangeErr('polyN', `one of ${polyNs.join(', ')}`, o.polyN);
    out.polyN = o.polyN;
  }
  if (has('keyOwner')) out.keyOwner = checkEnum('keyOwner', o.keyOwner, KEY_OWNERS);
  if (has('dp')) out.dp = validateDpOptions(o.dp);
  if (has('maxTokens')) out.maxTokens = checkInt('maxTokens', o.maxTokens, 1, LIMITS.maxTokens);
  if (has('timers')) out.timers = checkBool('timers', o.timers);
  if (has('seedPreset')) out.seedPreset = checkEnum('seedPreset', o.seedPreset, SEED_PRESET_NAMES);
  if (has('allowInsecure')) out.allowInsecure = checkBool('allowInsecure', o.allowInsecure);
  if (has('temperature')) out.temperature = checkNumber('temperature', o.temperature, (x) => x >= 0 && x <= LIMITS.temperature, `a number in [0, ${LIMITS.temperature}]`);
  if (has('topK')) out.topK = checkInt('topK', o.topK, 0, LIMITS.topK);
  if (has('topP')) out.topP = checkNumber('topP', o.topP, (x) => x > 0 && x <= 1, 'a number in (0, 1]');
  if (has('seed')) out.seed = checkInt('seed', o.seed, 0, Number.MAX_SAFE_INTEGER);
  if (has('lmHead')) out.lmHead = checkEnum('lmHead', o.lmHead, LM_HEADS);
  if (has('encryption')) out.encryption = checkEnum('encryption', o.encryption, ENCRYPTIONS);
  if (has('layersUnderHe')) {
    const l = o.layersUnderHe;
    if (!Array.isArray(l)) throw typeErr('layersUnderHe', 'an array of layer indices', l);
    l.forEach((x, i) => checkInt(`layersUnderHe[${i}]`, x, 0, 1023));
    out.layersUnderHe = [...(l as number[])];
  }
  return out;
}

export interface SeedPreset {
  name: (typeof SEED_PRESET_NAMES)[number];
  description: string;
  overrides: PipelineOptions;
  /** The original's measured tok/s for this step on the RTX A2000 (seed-performance-analysis.md). */
  original: { tokPerS: [number, number]; mode: 'websocket' | 'split-selftest'; source: string };
}

const SEED_SOURCE = 'TenSafe performance analysis (RTX A2000 8GB), reference/seed-performance-analysis.md';

/** The original's optimisation steps, as option overrides (issue 6, point 5). */
export const SEED_PRESETS: Record<SeedPreset['name'], SeedPreset> = {
  baseline: {
    name: 'baseline',
    description: 'step 0: poly_n 32768, sequential decrypt (one host copy per ciphertext), host segment sums, original DP calibration',
    overrides: { mode: 'he-lora', placement: 'final-hidden', packing: 'replicated-slots', polyN: 32768, decrypt: 'sequential', keyOwner: 'server', encryption: 'public-key', dp: { mechanism: 'original' }, lmHead: 'backend' },
    original: { tokPerS: [3.0, 4.2], mode: 'websocket', source: SEED_SOURCE },
  },
  'batched-decrypt': {
    name: 'batched-decrypt',
    description: 'step 1: + batched GPU-resident decrypt with one bulk copy',
    overrides: { mode: 'he-lora', placement: 'final-hidden', packing: 'replicated-slots', polyN: 32768, decrypt: 'batched', keyOwner: 'server', encryption: 'public-key', dp: { mechanism: 'original' }, lmHead: 'backend' },
    original: { tokPerS: [4.8, 5.8], mode: 'websocket', source: SEED_SOURCE },
  },
  'poly-n-16384': {
    name: 'poly-n-16384',
    description: 'step 2: + poly_n 16384 (7 products instead of 4, each about half the cost)',
    overrides: { mode: 'he-lora', placement: 'final-hidden', packing: 'replicated-slots', polyN: 16384, decrypt: 'batched', keyOwner: 'server', encryption: 'public-key', dp: { mechanism: 'original' }, lmHead: 'backend' },
    original: { tokPerS: [6.6, 7.4], mode: 'websocket', source: SEED_SOURCE },
  },
  'split-selftest': {
    name: 'split-selftest',
    description: 'split selftest: the server part of step 2, then a single-thread float32 CPU LM head (the 650 ms bottleneck)',
    overrides: { mode: 'he-lora', placement: 'final-hidden', packing: 'replicated-slots', polyN: 16384, decrypt: 'batched', keyOwner: 'server', encryption: 'public-key', dp: { mechanism: 'original' }, lmHead: 'cpu-f32-single-thread' },
    original: { tokPerS: [1.24, 1.24], mode: 'split-selftest', source: SEED_SOURCE },
  },
};

/**
 * Validates, applies the seed preset (it overrides the HE options it names) and fills the
 * defaults. `base` holds the pipeline's own defaults (from Pipeline.open), `request` the call's.
 */
export function resolveOptions(request: unknown, base: PipelineOptions = {}): ResolvedOptions {
  const b = validatePipelineOptions(base);
  const r = validatePipelineOptions(request);
  const merged: PipelineOptions = { ...b, ...r };
  const presetName = merged.seedPreset;
  if (presetName) Object.assign(merged, SEED_PRESETS[presetName].overrides);
  const out = { ...DEFAULT_OPTIONS, ...merged } as ResolvedOptions;
  out.dp = { ...(merged.dp ?? DEFAULT_OPTIONS.dp) };
  return out;
}
