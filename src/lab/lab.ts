/**
 * The notebook session: `const lab = await Lab.open({ backend: 'auto' })`. It holds the
 * engine choice and the datasets, and offers tables, plots, inline display, export, sweeps
 * and profiling. Cited data works without the native engine; measured data needs it.
 */
import * as path from 'node:path';
import type { ColumnTable } from 'arquero';
import { type Backend, type BackendChoice, type EngineInfo, deviceName, info, resolveBackend } from '../engine/info';
import { type NativeAddon, native, packageRoot } from '../engine/native';
import { gitCommit } from '../results';
import type { OriginalA2000, PeersFile, ResultFile, SotaRow } from './datasets';
import { loadOriginal, loadPeers, loadResults, loadSota, resultProvenance } from './datasets';
import { display, note } from './display';
import { type ExportOptions, type ExportResult, exportFigure } from './export';
import type { Figure } from './figure';
import { type LabData, standardFigures } from './figures';
import * as figures from './figures';
import * as plots from './plots';
import { type ProfileResult, profile } from './profile';
import { type MeasuredProvenance, computed, measured, provenanceText } from './provenance';
import { type Metrics, type PointFn, type Space, type SweepOptions, type SweepResult, runSweep } from './sweep';
import * as tables from './tables';
import * as live from './live';
import type { Pipeline } from '../pipeline/pipeline';
import { startPrivateServer, type PrivateServer } from '../server/private-server';
import { generatePrivate, type PrivateLabOptions, type PrivateRun } from './private';
import { sigmaRows as dpSigmaRows } from './dp';
import type { GenerationService, PipelineOptions } from '../pipeline/types';

export interface LabOpenOptions {
  backend?: BackendChoice;
  /** Package root (datasets/, figures/); default: the installed package. */
  root?: string;
  /** Small configurations (CI, CPU-only machines); default from TENSAFE_NOTEBOOK_SMALL=1. */
  small?: boolean;
  /** Options for opening the generation pipeline (Pipeline.open: model, numLayers, adapters, polyN, ...). */
  pipeline?: PipelineOptions & Record<string, unknown>;
}

export class Lab {
  /** Datasets are read once per session, on first use. */
  private cache: Partial<LabData> = {};

  private constructor(
    /** The backend measurements run on; null when the native engine could not be loaded. */
    readonly backend: Backend | null,
    /** Device name (GPU or CPU model) for "measured here" labels. */
    readonly device: string,
    readonly root: string,
    readonly small: boolean,
    /** Why the engine is unavailable, when it is. */
    readonly engineError: string | null,
    /** Options the generation pipeline is opened with. */
    readonly pipelineOptions: PipelineOptions & Record<string, unknown> = {},
  ) {}

  /**
   * Opens a session. 'auto' picks CUDA when a GPU is usable, else the CPU; when the native
   * engine is not built, 'auto' still opens (cited data and committed results work) and
   * `engineError` says why; an explicit 'cpu' or 'cuda' then throws.
   */
  static async open(opts: LabOpenOptions = {}): Promise<Lab> {
    const choice = opts.backend ?? 'auto';
    if (!['auto', 'cpu', 'cuda'].includes(choice as string)) {
      throw new RangeError(`Lab.open: backend must be 'auto', 'cpu' or 'cuda', got ${JSON.stringify(choice)}`);
    }
    const root = opts.root ?? packageRoot();
    const small = opts.small ?? process.env.TENSAFE_NOTEBOOK_SMALL === '1';
    try {
      const backend = resolveBackend(choice);
      return new Lab(backend, deviceName(backend), root, small, null, opts.pipeline ?? {});
    } catch (err) {
      if (choice !== 'auto') throw err;
      return new Lab(null, 'no engine', root, small, (err as Error).message, opts.pipeline ?? {});
    }
  }

  /** engine.info(), or null without the engine. */
  info(): EngineInfo | null {
    return this.backend ? info() : null;
  }

  /** The raw addon (for profiling hooks), or null. */
  addon(): NativeAddon | null {
    return this.backend ? native() : null;
  }

  /** "measured here (device, today)" for numbers this session produces. */
  provenance(): MeasuredProvenance {
    return measured(this.device, new Date().toISOString(), { backend: this.backend ?? undefined, commit: gitCommit() });
  }

  // ---- data ----------------------------------------------------------------------------

  get original(): OriginalA2000 {
    return (this.cache.original ??= loadOriginal(this.root));
  }

  get sotaRows(): SotaRow[] {
    return (this.cache.sota ??= loadSota(this.root));
  }

  get peers(): PeersFile {
    return (this.cache.peers ??= loadPeers(this.root));
  }

  /** Committed result files, newest first (optionally one bench). */
  results(bench?: string): ResultFile[] {
    const all = (this.cache.results ??= loadResults({ root: this.root }).results);
    return bench ? all.filter((r) => r.bench === bench) : all;
  }

  /** Everything the standard figures need. */
  data(): LabData {
    return { original: this.original, sota: this.sotaRows, peers: this.peers, results: this.results() };
  }

  /** Forget cached datasets (after a benchmark wrote a new result file). */
  reload(): void {
    this.cache = {};
  }

  // ---- tables ----------------------------------------------------------------------------

  get tables() {
    const o = this.original;
    return {
      ...tables.originalTables(o),
      sota: () => tables.sotaTable(this.sotaRows),
      peers: () => tables.peersTable(this.peers),
      summary: (bench?: string) => tables.summaryTable(this.results(bench)),
      resultRows: (r: ResultFile) => tables.resultRowsTable(r),
      breakdown: (name: 'breakdown_websocket' | 'breakdown_split_cpu_head' | 'breakdown_split_gpu_head') => {
        const t = this.original.tables[name];
        const resolve = (ref: string) => (ref in o.tables ? (o.tables as unknown as Record<string, { tree?: import('./datasets').BreakdownNode }>)[ref].tree : undefined);
        return tables.asTable(tables.treeRows(t.tree, resolve));
      },
      from: (rows: tables.TableLike) => tables.asTable(rows),
    };
  }

  /** A danfojs-node DataFrame of a table (loaded on request). */
  toDanfo(t: tables.TableLike): unknown {
    return tables.toDanfo(t);
  }

  // ---- plots -----------------------------------------------------------------------------

  /** Plot builders (pure: data in, figure out) and the standard figures over this session's data. */
  get plot() {
    const d = () => this.data();
    return {
      ...plots,
      ckksOpCostsStandard: (extra?: plots.OpCostSeries[]) => figures.ckksOpCostsFigure(d(), extra),
      breakdownStandard: (extra?: plots.StageSeries[], all?: boolean) => figures.breakdownBarsFigure(d(), extra, all),
      breakdownTreeStandard: (name: 'breakdown_websocket' | 'breakdown_split_cpu_head' | 'breakdown_split_gpu_head', kind?: 'sunburst' | 'treemap' | 'icicle') =>
        figures.breakdownTreeFigure(d(), name, kind),
      heCostStandard: (extra?: plots.StageSeries[]) => figures.heCostFigure(d(), extra),
      optimisationStandard: (extra?: plots.StepSeries[]) => figures.optimisationFigure(d(), extra),
      lmHeadStandard: (extra?: plots.LmHeadSeries[]) => figures.lmHeadFigure(d(), extra),
      sotaStandard: (extra?: plots.MeasuredSotaRow[]) => figures.sotaFigure(d(), extra),
      dpStandard: (extra?: plots.DpSeries[]) => figures.dpFigure(d(), extra),
      privateRttStandard: () => figures.privateRttFigure(d()),
      privateStagesStandard: () => figures.privateStagesFigure(d()),
      privateBytesStandard: () => figures.privateBytesFigure(d()),
      privatePrecisionStandard: () => figures.privatePrecisionFigure(d()),
      standard: () => standardFigures(d()),
    };
  }

  // ---- display and export ---------------------------------------------------------------

  /** Renders a table, figure or text inline (tslab), or prints it (plain Node). */
  show(x: Figure | ColumnTable | string | unknown, opts?: { caption?: string; limit?: number }): void {
    display(x, opts);
  }

  /**
   * Shows the rows of every committed result file of a bench, each captioned with its
   * provenance ("measured here (device, date; datasets/results)"), or says there is none.
   */
  showResults(bench: string, filter?: (row: Record<string, unknown>) => boolean): void {
    const rs = this.results(bench);
    if (rs.length === 0) {
      note(`No committed \`${bench}\` result in datasets/results/ yet.`);
      return;
    }
    let shown = 0;
    for (const r of rs) {
      const rows = filter ? r.rows.filter(filter) : r.rows;
      if (rows.length === 0) continue;
      display(tables.asTable(rows), { caption: `${r.file}: ${provenanceText(resultProvenance(r))}; ${r.command}`, limit: 80 });
      shown++;
    }
    if (shown === 0) note(`The committed \`${bench}\` results (${rs.map((r) => r.file).join(', ')}) hold no rows of this kind yet.`);
  }

  /** Shows a live measurement's table with its provenance, or why it could not run. */
  showLive(res: live.Live<{ table: ColumnTable }>, what = 'live measurement'): void {
    if (res.available) display(res.table, { caption: `${what}: ${provenanceText(this.provenance())}` });
    else note(`**${what}: not run here** (${res.reason}). The figures below use committed results and cited data only.`);
  }

  /** Markdown in the notebook (plain text elsewhere). */
  note(markdown: string): void {
    note(markdown);
  }

  /**
   * Writes `<path>.html` (always) and `<path>.svg` + `<path>.png` (where Chromium exists).
   * A relative path is taken from the package root, so 'figures/x' lands in figures/.
   */
  async export(fig: Figure, target: string, opts: ExportOptions = {}): Promise<ExportResult> {
    const abs = path.isAbsolute(target) ? target : path.join(this.root, target);
    return exportFigure(fig, abs, opts);
  }

  // ---- sweeps and profiling ---------------------------------------------------------------

  /**
   * Runs `compute` on every point of the cartesian product of `space`, cached under
   * datasets/cache/ by (options, commit, device), resumable, cancellable via opts.signal.
   */
  async sweep<M extends Metrics>(space: Space, compute: PointFn<M>, opts: Partial<SweepOptions> = {}): Promise<SweepResult<M>> {
    return runSweep(space, compute, {
      cacheDir: path.join(this.root, 'datasets', 'cache'),
      commit: gitCommit(),
      device: `${this.backend ?? 'none'}:${this.device}`,
      ...opts,
    });
  }

  /** Per-kernel table of the native work fn does (see profile.ts for where none is available). */
  async profile<T>(fn: () => T | Promise<T>): Promise<ProfileResult<T>> {
    return profile(fn, this.addon());
  }

  // ---- DP ------------------------------------------------------------------------------

  /** Noise scale per calibration across epsilon (computed here; no hardware involved). */
  get dp() {
    return {
      sigmas: (o?: { epsilons?: number[]; delta?: number; clipNorm?: number }) => tables.asTable(dpSigmaRows(o) as unknown as Array<Record<string, unknown>>),
      sigmaFigure: (o?: { epsilons?: number[]; delta?: number; clipNorm?: number }) =>
        plots.sweepView(dpSigmaRows(o) as unknown as Array<Record<string, unknown>>, {
          x: 'epsilon', y: 'sigma', logX: true, logY: true, provenance: computed('src/pipeline/dp'),
          title: 'DP noise scale sigma against epsilon (delta 1e-5, clip C = 1)',
          caption: "Computed, not measured. 'original' uses C as the sensitivity (the seed's calibration); classic and analytic use the replace-one sensitivity 2C.",
        }),
    };
  }

  // ---- live measurements and generation ---------------------------------------------------

  /**
   * Small live measurements through the engine (cached like sweeps). Each returns
   * { available: false, reason } where the engine part is not built, so notebooks say why.
   */
  get live() {
    return {
      ckksOps: (o?: live.LiveCkksOptions) => live.liveCkksOps(this, o),
      heLora: (o?: live.LiveHeLoraOptions) => live.liveHeLora(this, o),
      heLoraWorkload: (o?: { polyN?: number; iterations?: number }) => live.heLoraWorkload(this, o),
      dpUtility: (o?: live.DpUtilityOptions) => live.dpUtility(this, o),
    };
  }

  private service: GenerationService | null = null;

  /** Uses this generation service (e.g. one the notebook built) instead of opening one. */
  useService(service: GenerationService): void {
    this.service = service;
  }

  /**
   * Generates from a prompt and returns the run (tokens, summary, breakdown() table,
   * stageSeries() for lab.plot.latencyBreakdown). Opens the pipeline's service on first use;
   * throws with the reason where the pipeline is not available.
   */
  async generate(prompt: string, options?: PipelineOptions, signal?: AbortSignal): Promise<live.GenerationRun>;
  /**
   * keyOwner 'client': the private mode. The client (this process, the session's model) holds the
   * CKKS key; the server (`server: 'local'`, the default: an in-process endpoint on this session's
   * experts over a real loopback WebSocket; or a URL) holds the adapters and sees ciphertexts only.
   */
  async generate(prompt: string, options: PrivateLabOptions, signal?: AbortSignal): Promise<PrivateRun>;
  async generate(prompt: string, options: PipelineOptions | PrivateLabOptions = {}, signal?: AbortSignal): Promise<live.GenerationRun | PrivateRun> {
    if (typeof prompt !== 'string') throw new TypeError('generate: prompt must be a string');
    if (options.keyOwner === 'client') return this.generatePrivate(prompt, options as PrivateLabOptions);
    return this.generateServerKey(prompt, options as PipelineOptions, signal);
  }

  private localPrivate?: Promise<{ server: PrivateServer; url: string }>;

  private async generatePrivate(prompt: string, o: PrivateLabOptions): Promise<PrivateRun> {
    await this.ensureService();
    const pipe = this.service as unknown as Pipeline;
    if (!pipe || typeof (pipe as { model?: unknown }).model !== 'object' || !pipe.expertSet) {
      throw Object.assign(new Error("generate: keyOwner 'client' needs this session's own pipeline (its model and experts)"), { code: 'ERR_TENSAFE_BACKEND' });
    }
    let url = o.server ?? 'local';
    if (url === 'local') {
      this.localPrivate ??= startPrivateServer({ experts: pipe.expertSet, hiddenSize: pipe.modelConfig.hiddenSize, backend: pipe.backend });
      url = (await this.localPrivate).url;
    }
    const defaultExpert = pipe.experts()[0];
    return generatePrivate(pipe.model, url, prompt, o, this.provenance(), defaultExpert);
  }

  private async ensureService(): Promise<void> {
    if (!this.service) {
      const opened = await live.openService({ backend: this.backend ?? 'auto', ...this.pipelineOptions });
      if (!opened.available || !opened.service) {
        const err = new Error(`generate: ${opened.reason}`);
        (err as NodeJS.ErrnoException).code = 'ERR_TENSAFE_BACKEND';
        throw err;
      }
      this.service = opened.service;
    }
  }

  private async generateServerKey(prompt: string, options: PipelineOptions, signal?: AbortSignal): Promise<live.GenerationRun> {
    await this.ensureService();
    return live.generate(this.service as GenerationService, prompt, options, this.provenance(), signal);
  }

  /** Can this session generate? { available, reason }. */
  async canGenerate(): Promise<{ available: boolean; reason?: string }> {
    if (this.service) return { available: true };
    if (!this.backend) return { available: false, reason: `no native engine (${this.engineError})` };
    const opened = await live.openService({ backend: this.backend, ...this.pipelineOptions });
    if (!opened.available || !opened.service) return { available: false, reason: opened.reason };
    this.service = opened.service;
    return { available: true };
  }

  /** Releases the generation service. */
  async dispose(): Promise<void> {
    const local = this.localPrivate;
    this.localPrivate = undefined;
    if (local) await (await local.catch(() => undefined))?.server.close();
    await this.service?.dispose();
    this.service = null;
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
  [Symbol.dispose](): void {
    void this.dispose().catch(() => undefined);
  }

  /** One line for the top of a notebook: where this session measures, and the cited baseline. */
  header(): string {
    const where = this.backend ? `measured here: ${this.backend} on ${this.device}` : `no native engine (${this.engineError})`;
    return `${where}${this.small ? ' (small configurations)' : ''}; original: ${this.original.hardware} (cited, ${this.original.source})`;
  }
}
