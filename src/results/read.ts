/** Reading result files (notebooks, figures, the README generator). Needs no native engine. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../engine/native';
import { type ResultFile, resultFileProblem } from './schema';

export interface LoadedResults {
  /** Newest first. */
  results: ResultFile[];
  /** Files that do not follow the format, with the reason: never silently half-read. */
  skipped: string[];
}

/** Every result file under datasets/results (or `dir`), newest first, each with its `file`. */
export function loadResults(opts: { root?: string; dir?: string; bench?: string } = {}): LoadedResults {
  const root = opts.root ?? packageRoot();
  const dir = opts.dir ?? path.join(root, 'datasets', 'results');
  const results: ResultFile[] = [];
  const skipped: string[] = [];
  if (!fs.existsSync(dir)) return { results, skipped };
  for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const full = path.join(dir, name);
    let doc: unknown;
    try {
      doc = JSON.parse(fs.readFileSync(full, 'utf8'));
    } catch (err) {
      skipped.push(`${name}: not valid JSON (${(err as Error).message})`);
      continue;
    }
    const problem = resultFileProblem(doc);
    if (problem) {
      skipped.push(`${name}: ${problem}`);
      continue;
    }
    const r = doc as ResultFile;
    if (opts.bench && r.bench !== opts.bench) continue;
    results.push({ ...r, commit: String(r.commit ?? 'unknown'), command: String(r.command ?? ''), file: path.relative(root, full) });
  }
  results.sort((a, b) => b.date.localeCompare(a.date));
  return { results, skipped };
}

/**
 * The current result of each (bench, backend[, two-GPU variant]): the newest file. Older files of the same bench
 * and backend (another GPU, another CPU) are history: figures leave them out and name them.
 */
export function currentResults(results: ResultFile[], bench?: string): ResultFile[] {
  const seen = new Set<string>();
  return [...results]
    .filter((r) => bench === undefined || r.bench === bench)
    .sort((a, b) => b.date.localeCompare(a.date))
    .filter((r) => {
      // A two-GPU private run (summary.server_device) is a variant beside the one-GPU file, not its successor.
      const k = `${r.bench}|${r.backend}${r.summary.server_device !== undefined ? '|2x' : ''}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
}

/** The files that currentResults leaves out (older devices of the same bench and backend). */
export function historyResults(results: ResultFile[], bench?: string): ResultFile[] {
  const current = new Set(currentResults(results, bench));
  return results.filter((r) => (bench === undefined || r.bench === bench) && !current.has(r));
}
