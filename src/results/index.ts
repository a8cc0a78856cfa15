/**
 * Benchmark result files (shared/design/results.md): the schema, the writer and the reader, in
 * one module that src/bench (writes) and src/lab (reads) both import.
 */
export * from './schema';
export { gitCommit, newResult, resultsDir, writeResult } from './write';
export { currentResults, historyResults, loadResults, type LoadedResults } from './read';
export { formatCell, formatTable } from './table';
export { README_BEGIN, README_END, currentReadmeBlock, readmeInputs, readmeResultsBlock, replaceReadmeBlock, sig, updatedReadme } from './readme';
