/**
 * Live measurements for the notebooks, small enough for a CPU machine: CKKS op costs and the
 * per-token HE-LoRA crypto through the engine's native benchmarks, and generation through the
 * pipeline's GenerationService. Each returns { available: false, reason } where the engine part
 * is not built (yet), so a notebook renders committed and cited data and says why.
 * Points run through lab.sweep: cached by (options, commit, device), resumable, cancellable.
 */
import * as aq from 'arquero';
import type { ColumnTable } from 'arquero';
import type { CkksOpName } from '../engine/ckks/native-api';
import type { GenerationService, GenerationSummary, PipelineOptions, TokenEvent } from '../pipeline/types';
import type { StageSeries } from './plots/breakdown';
import { stagesFromRecords } from './plots/breakdown';
import type { OpCostSeries } from './plots/ckks';
import { type MeasuredProvenance, provenanceText } from './provenance';
import type { Point, Space, SweepOptions, SweepResult } from './sweep';

/**
 * A live result: always the same shape (no union to narrow, which tslab's per-cell compilation
 * does not carry across cells); where the part is unavailable, `available` is false, `reason`
 * says why and the series are empty.
 */
export type Live<T> = T & { available: boolean; reason?: string };

/** What live.ts needs from the Lab session (kept narrow to avoid an import cycle). */
export interface LiveHost {
  backend: 'cpu' | 'cuda' | null;
  engineError: string | null;
  provenance(): MeasuredProvenance;
  sweep<M extends Record<string, unknown>>(space: Space, fn: (p: Point, ctx: { signal: AbortSignal }) => Promise<M>, opts?: Partial<SweepOptions>): Promise<SweepResult<M>>;
}

function unavailable<T>(reason: string, empty: T): Live<T> {
  return { ...empty, available: false, reason };
}

const emptyTable = () => aq.from([] as Array<Record<string, unknown>>);

/** The engine's Ckks class, or why it cannot be used here. */
function ckksClass(host: LiveHost): { Ckks: typeof import('../engine/ckks').Ckks } | { reason: string } {
  if (!host.backend) return { reason: `no native engine (${host.engineError})` };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Ckks } = require('../engine/ckks') as typeof import('../engine/ckks');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const addon = require('../engine/native').native() as Record<string, unknown>;
    const cls = host.backend === 'cuda' ? addon.CkksContextCuda : addon.CkksContextCpu;
    if (typeof cls !== 'function') return { reason: `the ${host.backend} CKKS backend is not built into this addon yet` };
    return { Ckks };
  } catch (err) {
    return { reason: (err as Error).message };
  }
}

const OP_LABELS: Partial<Record<CkksOpName, string>> = { multiply_plain: 'ct_pt_multiply' };

export interface LiveCkksOptions {
  polyN?: number[];
  ops?: CkksOpName[];
  iterations?: number;
  signal?: AbortSignal;
}

/** Per-op medians at each poly_n (native timing), as a plot series and a table. */
export async function liveCkksOps(host: LiveHost, o: LiveCkksOptions = {}): Promise<Live<{ series: OpCostSeries[]; table: ColumnTable }>> {
  const found = ckksClass(host);
  if ('reason' in found) return unavailable(found.reason, { series: [], table: emptyTable() });
  const ops = o.ops ?? ['encode', 'encrypt', 'multiply_plain', 'decrypt', 'decode'];
  const iterations = o.iterations ?? 10;
  const res = await host.sweep({ polyN: o.polyN ?? [8192, 16384] }, async (p) => {
    const ckks = found.Ckks.create({ polyN: p.polyN as number, primeBits: [60, 40], specialPrimeBits: 60, backend: host.backend! });
    try {
      const out: Record<string, number> = {};
      for (const op of ops) out[op] = (await ckks.benchmarkOp(op, iterations)).medianUs;
      return out;
    } finally {
      ckks.dispose();
    }
  }, { name: `live-ckks-ops-${iterations}`, signal: o.signal });
  const rows = res.records.flatMap((r) => ops.map((op) => ({ op: OP_LABELS[op] ?? op, poly_n: r.point.polyN as number, us: r.metrics[op] as number })));
  const prov = host.provenance();
  return {
    available: true,
    series: [{ label: `tensafe ${host.backend} (this session)`, provenance: prov, rows }],
    table: aq.from(rows.map((r) => ({ op: r.op, poly_n: r.poly_n, median_us: r.us }))),
  };
}

export interface LiveHeLoraOptions {
  polyN?: number[];
  iterations?: number;
  d?: number;
  r?: number;
  signal?: AbortSignal;
}

/** Per-token HE-LoRA crypto (d = 1536, r = 32 by default) at each poly_n, as stacked-bar series. */
export async function liveHeLora(host: LiveHost, o: LiveHeLoraOptions = {}): Promise<Live<{ series: StageSeries[]; table: ColumnTable }>> {
  const found = ckksClass(host);
  if ('reason' in found) return unavailable(found.reason, { series: [] as StageSeries[], table: emptyTable() });
  const d = o.d ?? 1536;
  const r = o.r ?? 32;
  const iterations = o.iterations ?? 5;
  const res = await host.sweep({ polyN: o.polyN ?? [8192, 16384] }, async (p) => {
    const ckks = found.Ckks.create({ polyN: p.polyN as number, primeBits: [60, 40], specialPrimeBits: 60, backend: host.backend! });
    try {
      const t = await ckks.benchmarkHeLora({ d, r, iterations });
      return { ...t.medianUs, products: t.products, replicas: t.replicas, maxAbsError: t.maxAbsError };
    } finally {
      ckks.dispose();
    }
  }, { name: `live-helora-${d}-${r}-${iterations}`, signal: o.signal });
  const prov = host.provenance();
  const series = res.records.map((rec) => {
    const m = rec.metrics as Record<string, number>;
    const stages: Record<string, number> = {};
    for (const s of ['encode', 'encrypt', 'ct_pt_multiply', 'decrypt', 'decode', 'extract_sum']) if (typeof m[s] === 'number') stages[s] = m[s] / 1000;
    return { label: `tensafe ${host.backend} N=${rec.point.polyN} (this session)`, provenance: prov, stages, total: m.total / 1000 };
  });
  const table = aq.from(res.records.map((rec) => ({ poly_n: rec.point.polyN, ...(rec.metrics as Record<string, number>) })));
  return { available: true, series, table };
}

/** One generation: the streamed tokens and the summary, with tables and plot series. */
export class GenerationRun {
  constructor(
    readonly prompt: string,
    readonly tokens: TokenEvent[],
    readonly summary: GenerationSummary,
    readonly provenance: MeasuredProvenance,
  ) {}

  get text(): string {
    return this.summary.text;
  }

  /** "measured here (device, date)" for captions. */
  source(): string {
    return provenanceText(this.provenance);
  }

  /** Median ms per stage over the generated tokens. */
  breakdown(): ColumnTable {
    const med = this.tokens.length ? stagesFromRecords(this.tokens.map((t) => t.stages as Record<string, number>)) : {};
    return aq.from(Object.entries(med).map(([stage, ms]) => ({ stage, median_ms: ms })));
  }

  /** One row per token: index, id, text, total ms and every stage. */
  records(): ColumnTable {
    return aq.from(this.tokens.map((t) => ({ index: t.index, id: t.id, text: t.text, total_ms: t.totalMs, ...t.stages })));
  }

  /** The stage medians as one stacked bar. */
  stageSeries(label = `${this.summary.mode} (this session)`): StageSeries {
    const stages = this.tokens.length ? stagesFromRecords(this.tokens.map((t) => t.stages as Record<string, number>)) : {};
    return { label, provenance: this.provenance, stages };
  }
}

/**
 * Opens the pipeline's GenerationService: `Pipeline.open(options)` from src/pipeline (or a
 * `createGenerationService(options)` factory, if the pipeline offers one instead).
 */
export async function openService(options: PipelineOptions & Record<string, unknown>): Promise<Live<{ service: GenerationService | null }>> {
  let mod: Record<string, unknown>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require('../pipeline') as Record<string, unknown>;
  } catch (err) {
    return unavailable(`the generation pipeline is not built yet (${(err as Error).message.split('\n')[0]})`, { service: null });
  }
  const pipeline = mod.Pipeline as { open?: (o: unknown) => Promise<GenerationService> } | undefined;
  const factory = typeof pipeline?.open === 'function' ? pipeline.open.bind(pipeline) : (mod.createGenerationService as ((o: unknown) => Promise<GenerationService>) | undefined);
  if (typeof factory !== 'function') return unavailable('the pipeline exports neither Pipeline.open() nor createGenerationService() yet', { service: null });
  try {
    return { available: true, service: await factory(options) };
  } catch (err) {
    return unavailable(`the pipeline could not open: ${(err as Error).message.split('\n')[0]}`, { service: null });
  }
}

/** Runs one generation on a service, collecting the tokens; the signal stops it between tokens. */
export async function generate(service: GenerationService, prompt: string, options: PipelineOptions, provenance: MeasuredProvenance, signal?: AbortSignal): Promise<GenerationRun> {
  const tokens: TokenEvent[] = [];
  const it = service.generate(prompt, options, signal);
  for (;;) {
    const step = await it.next();
    if (step.done) return new GenerationRun(prompt, tokens, step.value, provenance);
    tokens.push(step.value);
  }
}

/** An uncached HE-LoRA workload to profile (lab.profile(w.run)); unavailable without the CKKS engine. */
export function heLoraWorkload(host: LiveHost, o: { polyN?: number; iterations?: number } = {}): Live<{ run: () => Promise<unknown> }> {
  const found = ckksClass(host);
  if ('reason' in found) {
    const reason = found.reason;
    return unavailable(reason, { run: async () => { throw new Error(`heLoraWorkload: ${reason}`); } });
  }
  const polyN = o.polyN ?? 16384;
  const iterations = o.iterations ?? 5;
  return {
    available: true,
    run: async () => {
      const ckks = found.Ckks.create({ polyN, primeBits: [60, 40], specialPrimeBits: 60, backend: host.backend! });
      try {
        return await ckks.benchmarkHeLora({ d: 1536, r: 32, iterations });
      } finally {
        ckks.dispose();
      }
    },
  };
}

export interface DpUtilityOptions {
  epsilons?: number[];
  mechanisms?: Array<'classic' | 'analytic' | 'original'>;
  prompt?: string;
  maxTokens?: number;
  delta?: number;
  pipeline?: PipelineOptions;
  signal?: AbortSignal;
}

/** Fraction of positions where two greedy token sequences agree (over the reference's length). */
export function tokenAgreement(reference: number[], other: number[]): number {
  if (reference.length === 0) return 1;
  let same = 0;
  for (let i = 0; i < reference.length; i++) if (other[i] === reference[i]) same++;
  return same / reference.length;
}

/**
 * Utility of DP: greedy tokens of HE-LoRA with DP noise at each epsilon against plaintext LoRA
 * without noise (same prompt, same seed), as token agreement. Needs the generation pipeline.
 */
export async function dpUtility(
  host: LiveHost & { canGenerate(): Promise<{ available: boolean; reason?: string }>; generate(p: string, o?: PipelineOptions, s?: AbortSignal): Promise<GenerationRun> },
  o: DpUtilityOptions = {},
): Promise<Live<{ series: import('./plots/dp').DpSeries[]; table: ColumnTable }>> {
  const can = await host.canGenerate();
  if (!can.available) return unavailable(can.reason ?? 'generation unavailable', { series: [] as import('./plots/dp').DpSeries[], table: emptyTable() });
  const prompt = o.prompt ?? 'What is a savings account?';
  const maxTokens = o.maxTokens ?? 16;
  const base: PipelineOptions = { ...o.pipeline, maxTokens, temperature: 0, seed: 1 };
  const reference = await host.generate(prompt, { ...base, mode: 'lora' }, o.signal);
  const refIds = reference.tokens.map((t) => t.id);
  const res = await host.sweep(
    { mechanism: o.mechanisms ?? ['analytic', 'original'], epsilon: o.epsilons ?? [0.5, 1, 2, 4, 8, 16] },
    async (p, ctx) => {
      const run = await host.generate(prompt, { ...base, mode: 'he-lora', dp: { mechanism: p.mechanism as 'analytic', epsilon: p.epsilon as number, delta: o.delta ?? 1e-5 } }, ctx.signal);
      return { agreement: tokenAgreement(refIds, run.tokens.map((t) => t.id)), privacy_epsilon: run.summary.privacy?.epsilon ?? null };
    },
    { name: `live-dp-${maxTokens}`, signal: o.signal },
  );
  const prov = host.provenance();
  const byMech = new Map<string, Array<{ epsilon: number; agreement: number }>>();
  for (const r of res.records) {
    const m = String(r.point.mechanism);
    if (!byMech.has(m)) byMech.set(m, []);
    byMech.get(m)!.push({ epsilon: r.point.epsilon as number, agreement: r.metrics.agreement as number });
  }
  return {
    available: true,
    series: [...byMech.entries()].map(([m, rows]) => ({ label: `${m} (this session)`, provenance: prov, rows })),
    table: res.table(),
  };
}
