/**
 * The notebooks as a researcher meets them (issue 16 item 12): Debian's classic Jupyter Notebook
 * server, started here on loopback with a random token, and headless Chromium (playwright-core)
 * open 00-engine and a figure-heavy notebook (02-per-token-breakdown), run all cells, and check
 * that the outputs rendered: plotly drew SVG into the page (the gzipped bundle inflated in the
 * browser), the tables are there, and no cell shows an error. A full-page screenshot of each is
 * kept as a test artefact (test-artifacts/, or TENSAFE_TEST_ARTIFACTS).
 *
 * Skipped, with a message, where the notebook server, Chromium or the compiled package is
 * missing (.ci/run installs them: jupyter-notebook, chromium).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, findChromium } from '../../src/lab/chromium';
import { packageRoot } from '../../src/engine/native';

const root = packageRoot();
const python = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const chromiumExe = findChromium();
const hasNotebook = spawnSync(python, ['-m', 'notebook', '--version'], { encoding: 'utf8' }).status === 0;
const hasDist = fs.existsSync(path.join(root, 'dist', 'index.js'));
const missing = [
  !hasNotebook && "the classic Jupyter Notebook server (Debian: jupyter-notebook)",
  !chromiumExe && "Chromium (Debian: chromium)",
  !hasDist && 'the compiled package (npm run build:ts)',
].filter(Boolean);
if (missing.length) console.warn(`lab-notebook-browser.test: skipped: ${missing.join(', ')} missing`);

const NOTEBOOKS = ['00-engine', '02-per-token-breakdown'];
const artefacts = process.env.TENSAFE_TEST_ARTIFACTS ?? path.join(root, 'test-artifacts');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(what: string, ms: number, ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await ok().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe.skipIf(missing.length > 0)('notebooks in a real browser (classic Jupyter Notebook + headless Chromium)', () => {
  const token = randomBytes(24).toString('hex');
  let server: ChildProcess;
  let serverLog = '';
  let url = '';
  let work = '';
  let profile = '';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let browser: any;

  beforeAll(async () => {
    const env = {
      ...process.env,
      PATH: [path.join(root, 'node_modules', '.bin'), process.env.PATH].join(path.delimiter),
      TENSAFE_NOTEBOOK_SMALL: '1',
      JUPYTER_CONFIG_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-jupyter-config-')),
    };
    const install = spawnSync(path.join(root, 'node_modules', '.bin', 'tslab'), ['install', `--python=${python}`], { env, encoding: 'utf8' });
    if (install.status !== 0) throw new Error(`tslab install failed: ${install.stderr}`);
    // Copies beside the package root (so the notebooks' `import ... from '..'` resolves), so
    // that running and autosaving never touch the committed notebooks.
    work = fs.mkdtempSync(path.join(root, '.notebook-browser-test-'));
    for (const n of NOTEBOOKS) fs.copyFileSync(path.join(root, 'notebooks', `${n}.ipynb`), path.join(work, `${n}.ipynb`));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    server = spawn(python, ['-m', 'notebook', '--no-browser', '--ip=127.0.0.1', `--port=${port}`, '--port-retries=0',
      `--NotebookApp.token=${token}`, '--NotebookApp.password=', `--notebook-dir=${work}`,
      // CI runs as root; the server refuses root without this flag
      ...(process.getuid?.() === 0 ? ['--allow-root'] : [])], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout!.on('data', (d) => (serverLog += d));
    server.stderr!.on('data', (d) => (serverLog += d));
    await waitFor('the notebook server', 60_000, async () => (await fetch(`${url}/api/status?token=${token}`)).ok)
      .catch((err) => { throw new Error(`${(err as Error).message}; server log:\n${serverLog.slice(-2000)}`); });
    const { chromium } = await import('playwright-core');
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-chromium-'));
    browser = await chromium.launchPersistentContext(profile, { executablePath: chromiumExe!, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 1000 } });
    fs.mkdirSync(artefacts, { recursive: true });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    // The server and the kernels it started: their own process group, started by this test.
    if (server?.pid) {
      try { process.kill(-server.pid, 'SIGTERM'); } catch { /* already gone */ }
    }
    if (work) fs.rmSync(work, { recursive: true, force: true });
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
  });

  it('the server refuses requests without the token', async () => {
    expect((await fetch(`${url}/api/contents`)).status).toBe(403);
    expect((await fetch(`${url}/api/contents?token=${token}`)).ok).toBe(true);
  });

  for (const name of NOTEBOOKS) {
    it(`${name}: all cells run, plotly SVG and tables rendered, no error output`, async () => {
      const page = await browser.newPage();
      const consoleErrors: string[] = [];
      page.on('pageerror', (e: Error) => consoleErrors.push(e.message));
      try {
        await page.goto(`${url}/notebooks/${name}.ipynb?token=${token}`);
        // The classic notebook's page object: kernel started and idle, autosave off (a copy anyway).
        await waitFor('the tslab kernel', 120_000, () => page.evaluate(() => {
          const J = (window as unknown as { Jupyter?: { notebook?: { kernel?: { is_connected(): boolean } } } }).Jupyter;
          return !!J?.notebook?.kernel?.is_connected();
        }));
        expect(await page.evaluate(() => (window as unknown as { Jupyter: { notebook: { kernel: { name: string } } } }).Jupyter.notebook.kernel.name)).toBe('tslab');
        await page.evaluate(() => {
          const nb = (window as unknown as { Jupyter: { notebook: { set_autosave_interval(ms: number): void; execute_all_cells(): void } } }).Jupyter.notebook;
          nb.set_autosave_interval(0);
          nb.execute_all_cells();
        });
        // Done when every code cell has an execution count and the kernel is idle.
        await waitFor('all cells to run', 240_000, () => page.evaluate(() => {
          type Cell = { cell_type: string; input_prompt_number: number | string | null | undefined };
          const J = (window as unknown as { Jupyter: { notebook: { get_cells(): Cell[] }; notebook_kernel_busy?: boolean } }).Jupyter;
          const cells = J.notebook.get_cells().filter((c) => c.cell_type === 'code');
          const idle = document.querySelector('#kernel_indicator_icon')?.classList.contains('kernel_idle_icon') ?? false;
          return idle && cells.length > 0 && cells.every((c) => typeof c.input_prompt_number === 'number');
        }));
        // plotly inflates its gzipped bundle asynchronously: wait for the first SVG.
        await waitFor('plotly to draw', 60_000, () => page.evaluate(() => document.querySelectorAll('.tensafe-figure svg.main-svg').length > 0));
        const seen = await page.evaluate(() => ({
          figures: document.querySelectorAll('.tensafe-figure').length,
          drawn: Array.from(document.querySelectorAll('.tensafe-figure')).filter((f) => f.querySelector('svg.main-svg')).length,
          bars: document.querySelectorAll('.tensafe-figure svg .trace').length,
          tables: document.querySelectorAll('.output_html table').length,
          errors: Array.from(document.querySelectorAll('.output_error, .output_area .output_subarea.output_error')).map((e) => (e.textContent ?? '').slice(0, 300)),
          failedPlots: Array.from(document.querySelectorAll('.tensafe-figure')).map((f) => f.textContent ?? '').filter((t) => t.includes('did not load')),
          outputsInModel: (window as unknown as { Jupyter: { notebook: { toJSON(): { cells: Array<{ outputs?: Array<{ output_type: string; ename?: string; evalue?: string }> }> } } } })
            .Jupyter.notebook.toJSON().cells.flatMap((c) => c.outputs ?? []).filter((o) => o.output_type === 'error').map((o) => `${o.ename}: ${o.evalue}`),
        }));
        const shot = path.join(artefacts, `notebook-${name}.png`);
        // The classic notebook scrolls inside #site: let the page grow to the whole notebook first.
        const height = await page.evaluate(() => {
          type Cell = { output_area?: { unscroll_area(): void } };
          (window as unknown as { Jupyter: { notebook: { get_cells(): Cell[] } } }).Jupyter.notebook.get_cells().forEach((c) => c.output_area?.unscroll_area());
          const site = document.querySelector('#site') as HTMLElement | null;
          if (site) site.style.height = 'auto';
          document.body.style.overflow = 'visible';
          return document.documentElement.scrollHeight;
        });
        await page.setViewportSize({ width: 1400, height: Math.min(Math.max(height, 1000), 30_000) });
        await page.screenshot({ path: shot, fullPage: true });
        // eslint-disable-next-line no-console
        console.log(`${name}: ${seen.drawn}/${seen.figures} figures drawn (${seen.bars} traces), ${seen.tables} tables; screenshot ${path.relative(root, shot)}`);
        expect(seen.errors, `error outputs in ${name}`).toEqual([]);
        expect(seen.outputsInModel, `error outputs in ${name}`).toEqual([]);
        expect(seen.failedPlots).toEqual([]);
        expect(seen.figures).toBeGreaterThan(0);
        expect(seen.drawn, 'every figure drawn as SVG').toBe(seen.figures);
        expect(seen.bars).toBeGreaterThan(0);
        expect(seen.tables).toBeGreaterThan(0);
        expect(consoleErrors, 'page errors').toEqual([]);
        expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
      } catch (err) {
        // eslint-disable-next-line no-console
        console.error(`notebook server log (last 3000 chars):\n${serverLog.slice(-3000)}`);
        throw err;
      } finally {
        await page.close();
      }
    }, 420_000);
  }
});
