#!/usr/bin/env node
// `npm run notebooks`: registers the tslab kernel and executes every notebook headless with
// `jupyter nbconvert --execute`. A cell that raises (or writes to stderr as an error output)
// fails the run. With --if-available, a machine without Jupyter exits 3 with a message
// instead of failing (npm test uses this). Small sizes: TENSAFE_NOTEBOOK_SMALL=1 (default
// in CI). Pass notebook names to run a subset.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';

const root = resolve(new URL('..', import.meta.url).pathname);
const MAX_EXECUTED_MB = 5;
const ifAvailable = process.argv.includes('--if-available');
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const env = {
  ...process.env,
  // tslab must be on PATH for the kernel to start.
  PATH: [join(root, 'node_modules', '.bin'), process.env.PATH].join(delimiter),
  TENSAFE_NOTEBOOK_SMALL: process.env.TENSAFE_NOTEBOOK_SMALL ?? (process.env.CI ? '1' : '0'),
};

const hasJupyter = spawnSync('jupyter', ['nbconvert', '--version'], { env, encoding: 'utf8' }).status === 0;
if (!hasJupyter) {
  const msg = 'notebooks: skipped, Jupyter is not installed (Debian: jupyter-nbconvert python3-nbclient jupyter-client python3-ipykernel)';
  console.log(msg);
  process.exit(ifAvailable ? 3 : 1);
}

const install = spawnSync('npx', ['tslab', 'install', `--python=${python}`], { env, stdio: 'inherit', cwd: root });
if (install.status !== 0) {
  console.error('notebooks: `tslab install` failed');
  process.exit(1);
}

const dir = join(root, 'notebooks');
const notebooks = readdirSync(dir)
  .filter((f) => f.endsWith('.ipynb') && !f.includes('.nbconvert.'))
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();
const outDir = mkdtempSync(join(tmpdir(), 'tensafe-notebooks-'));
let failures = 0;
for (const nb of notebooks) {
  const started = Date.now();
  const r = spawnSync(
    'jupyter',
    ['nbconvert', '--to', 'notebook', '--execute', '--ExecutePreprocessor.timeout=900',
     '--ExecutePreprocessor.kernel_name=tslab', '--output-dir', outDir, join(dir, nb)],
    { env, cwd: dir, encoding: 'utf8' },
  );
  const executed = join(outDir, nb);
  let errors = [];
  if (r.status === 0 && existsSync(executed)) {
    // plotly is inlined once per notebook, gzipped: an executed notebook stays small (issue 16 item 11).
    const mb = statSync(executed).size / 1e6;
    if (mb > MAX_EXECUTED_MB) errors.push(`executed notebook is ${mb.toFixed(2)} MB (limit ${MAX_EXECUTED_MB} MB)`);
    const doc = JSON.parse(readFileSync(executed, 'utf8'));
    for (const cell of doc.cells ?? []) {
      for (const out of cell.outputs ?? []) {
        if (out.output_type === 'error') errors.push(`${out.ename}: ${out.evalue}`);
      }
    }
  } else {
    errors.push((r.stderr || '').split('\n').slice(-15).join('\n'));
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (errors.length) {
    failures += 1;
    console.error(`notebooks: FAIL ${nb} (${secs} s)\n  ${errors.join('\n  ')}`);
  } else {
    console.log(`notebooks: ok   ${nb} (${secs} s, ${(statSync(executed).size / 1e6).toFixed(2)} MB executed)`);
  }
}
console.log(`notebooks: ${notebooks.length - failures} passed, ${failures} failed (executed copies in ${outDir})`);
process.exit(failures ? 1 : 0);
