/** Writing result files (benchmarks): the common fields, the file name, the folder. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../engine/native';
import { type BenchName, type ResultFile, resultFileName, resultFileProblem } from './schema';

/** Git commit of the measured tree (+"-dirty"); TENSAFE_COMMIT wins (device runs have no .git). */
export function gitCommit(): string {
  if (process.env.TENSAFE_COMMIT) return process.env.TENSAFE_COMMIT;
  try {
    const root = packageRoot();
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    // Result files written by an earlier bench of the same sweep do not change the measured code.
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', '.', ':(exclude)datasets/results'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return 'unknown';
  }
}

/** Folder the result files go to (TENSAFE_RESULTS_DIR overrides, e.g. $OUT on the GPU machine). */
export function resultsDir(): string {
  return process.env.TENSAFE_RESULTS_DIR ?? path.join(packageRoot(), 'datasets', 'results');
}

/** Starts a result record with the common fields filled in. */
export function newResult(bench: BenchName, backend: 'cpu' | 'cuda', device: string, argv: string[]): ResultFile {
  return {
    bench,
    backend,
    device,
    commit: gitCommit(),
    date: new Date().toISOString(),
    command: `npm run bench -- ${argv.join(' ')}`.trim(),
    summary: {},
    rows: [],
  };
}

/** Checks and writes the result file (the newest run replaces the older one); returns its path. */
export function writeResult(result: ResultFile, dir = resultsDir(), fileName?: string): string {
  const { file: _ignored, ...doc } = result;
  const problem = resultFileProblem(doc);
  if (problem) throw new TypeError(`writeResult: not a result file (${problem})`);
  // A variant of a bench (e.g. private on two GPUs) names its own file; it must stay a plain name in dir.
  if (fileName !== undefined && !/^[\w.-]+\.json$/.test(fileName)) throw new TypeError(`writeResult: fileName must be a plain *.json name, got '${fileName}'`);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, fileName ?? resultFileName(doc));
  fs.writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
  return file;
}
