/**
 * The notebook kernel library: `import { Lab } from 'tensafe'` in a tslab notebook, and the
 * `lab` namespace (datasets, plot builders, sweeps, export) for scripts and tests.
 */
export { Lab, type LabOpenOptions } from './lab';
export * as lab from './api';
