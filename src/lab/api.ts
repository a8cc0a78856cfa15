/**
 * Everything the notebook library offers, as one namespace (`import { lab } from 'tensafe'`):
 * datasets, plot builders, sweeps, export. `Lab` (the session) is the usual entry point.
 */
export { Lab, type LabOpenOptions } from './lab';
export * from './provenance';
export * from './figure';
export * from './datasets';
export * from './plots';
export * as sources from './sources';
export * as tables from './tables';
export { toDanfo, asTable, type TableLike } from './tables';
export { display, note, inNotebook, tableHtml, figureHtml } from './display';
export { figurePage, figureDiv } from './html';
export { exportFigure, pngSize, type ExportResult, type ExportOptions } from './export';
export { ChromiumSession, findChromium } from './chromium';
export { runSweep, cartesian, pointKey, type SweepResult, type SweepOptions, type Space, type Point, type PointFn } from './sweep';
export { profile, normaliseKernelRecords, type ProfileResult, type KernelRow } from './profile';
export { standardFigures, loadLabData, type LabData, type StandardFigure } from './figures';
export { progressText, noProgress, type ProgressSink } from './progress';
export { GenerationRun, liveCkksOps, liveHeLora, type Live } from './live';
