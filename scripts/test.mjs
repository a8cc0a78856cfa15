#!/usr/bin/env node
// `npm test`: the whole CPU suite (vitest) then, when Jupyter and the tslab kernel are
// present, every notebook headless. Prints one plain line at the end:
//   "tests: N passed, N failed, N skipped"
// `npm run test:gpu` (--gpu): only test/gpu, where a missing GPU is a failure, not a skip.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const gpu = process.argv.includes('--gpu');
const extra = process.argv.slice(2).filter((a) => a !== '--gpu');
const report = join(mkdtempSync(join(tmpdir(), 'tensafe-test-')), 'vitest.json');
const env = { ...process.env };
if (gpu) env.TENSAFE_REQUIRE_GPU = '1';

// vitest is started through the running node (no npx: the GPU machine carries node alone).
const vitestBin = join(process.cwd(), 'node_modules', 'vitest', 'vitest.mjs');
const args = [vitestBin, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`];
args.push(...(gpu && extra.length === 0 ? ['test/gpu'] : extra));
const run = spawnSync(process.execPath, args, { stdio: 'inherit', env });
if (run.error) console.error(`test: could not start vitest: ${run.error.message}`);

let passed = 0, failed = 0, skipped = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests ?? 0;
  // Failed tests, plus test files that failed before running any test (import errors).
  const brokenFiles = (r.testResults ?? []).filter((f) => f.status === 'failed' && (f.assertionResults ?? []).length === 0).length;
  failed = (r.numFailedTests ?? 0) + brokenFiles;
  skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
} else {
  failed = 1;
}
let status = run.status ?? 1;

// Notebooks: executed headless when Jupyter is installed (CI installs it), skipped with a
// message otherwise. A failing cell fails the run.
if (!gpu && extra.length === 0 && process.env.TENSAFE_SKIP_NOTEBOOKS !== '1') {
  const nb = spawnSync(process.execPath, ['scripts/notebooks.mjs', '--if-available'], { stdio: 'inherit', env });
  if (nb.status === 0) passed += 1;
  else if (nb.status === 3) skipped += 1;  // no Jupyter here
  else { failed += 1; status = status || 1; }
}

console.log(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(status !== 0 || failed > 0 ? 1 : 0);
