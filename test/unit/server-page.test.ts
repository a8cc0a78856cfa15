/**
 * The live page in headless Chromium (Debian `chromium` driven by playwright-core): it loads,
 * a question streams tokens into both columns, and each token gets its stage bar. Skipped, with
 * a message, only where /usr/bin/chromium is absent.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, TensafeServer } from '../../src/server/server';
import { pageService } from './server-page-service';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = fs.existsSync(CHROMIUM);
if (!hasChromium) console.warn(`server-page.test: skipped: ${CHROMIUM} is absent (install Debian's chromium to run the page test)`);

describe.skipIf(!hasChromium)('live page in headless Chromium', () => {
  let server: TensafeServer;
  let url: string;
  let dispose: () => Promise<void>;
  let userDataDir: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let browser: any;

  beforeAll(async () => {
    const svc = await pageService();
    dispose = svc.dispose;
    const s = await startServer({ service: svc.service, split: svc.split, port: 0, ownEngines: false });
    server = s.server;
    url = s.url;
    const { chromium } = await import('playwright-core');
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-chromium-'));
    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close(1000);
    await dispose?.();
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  });

  it('loads, streams a question into both columns, and renders the per-token bars', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    const external: string[] = [];
    page.on('pageerror', (e: Error) => errors.push(e.message));
    page.on('console', (m: { type(): string; text(): string }) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('request', (r: { url(): string }) => {
      if (!r.url().startsWith(url) && !r.url().startsWith(url.replace('http', 'ws'))) external.push(r.url());
    });
    await page.goto(`${url}/`);
    expect(await page.title()).toMatch(/tensafe/);
    await page.waitForFunction(() => !document.getElementById('engine')!.textContent!.includes('connecting'));
    await page.fill('#query', 'What is a savings account?');
    await page.fill('#max-tokens', '8');
    await page.click('#go');
    await page.waitForFunction(() => ['base', 'he'].every((k) => document.getElementById(`status-${k}`)!.textContent === 'done'), null, { timeout: 90_000 });

    for (const k of ['base', 'he']) {
      const text = await page.textContent(`#answer-${k}`);
      expect(text!.length, `answer-${k}`).toBeGreaterThan(0);
      expect(await page.textContent(`#toks-${k}`)).toBe('8');
      const bars = await page.$$eval(`#bars-${k} .bar`, (els: Element[]) =>
        els.map((b) => ({
          index: Number((b as HTMLElement).dataset.tokenIndex),
          stages: Array.from(b.querySelectorAll('.seg')).map((s) => (s as HTMLElement).dataset.stage),
          heights: Array.from(b.querySelectorAll('.seg')).map((s) => (s as HTMLElement).getBoundingClientRect().height),
        })),
      );
      expect(bars.map((b: { index: number }) => b.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      for (const b of bars) {
        expect(b.stages).toContain('forward');
        expect(b.stages).toContain('network');
        expect(b.heights.reduce((a: number, h: number) => a + h, 0)).toBeGreaterThan(0); // drawn, not empty
      }
      if (k === 'he') expect(bars[0].stages).toContain('encrypt');
      expect(await page.$$eval(`#last-${k} .row`, (els: Element[]) => els.length)).toBeGreaterThan(1);
    }
    expect(errors).toEqual([]);
    expect(external).toEqual([]);
    await page.close();
  });
});
