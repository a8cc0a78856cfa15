/**
 * Headless Chromium (Debian's chromium, driven by playwright-core) for SVG and PNG export via
 * Plotly.toImage in a page. One session renders many figures: starting Chromium and parsing the
 * 10 MB plotly bundle costs seconds, so callers batch. A fresh profile folder per session.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Figure } from './figure';
import { plotlyPath } from './html';

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** The Chromium executable: TENSAFE_CHROMIUM, else the first of the usual Debian paths; null when none. */
export function findChromium(): string | null {
  const env = process.env.TENSAFE_CHROMIUM;
  if (env) return fs.existsSync(env) ? env : null;
  return CANDIDATES.find((p) => fs.existsSync(p)) ?? null;
}

export function chromiumMissingMessage(): string {
  const looked = process.env.TENSAFE_CHROMIUM ? [process.env.TENSAFE_CHROMIUM] : CANDIDATES;
  return `Chromium not found (looked at ${looked.join(', ')}): wrote HTML only. ` +
    "Install Debian's 'chromium' package (or set TENSAFE_CHROMIUM) for SVG and PNG export.";
}

// Minimal shapes of the playwright-core objects we use (its types are large; we need three calls).
interface PwPage {
  setContent(html: string): Promise<void>;
  addScriptTag(o: { path: string }): Promise<unknown>;
  evaluate<R, A>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R>;
}
interface PwContext {
  pages(): PwPage[];
  newPage(): Promise<PwPage>;
  close(): Promise<void>;
}

export interface ImageOptions {
  width: number;
  height: number;
  /** PNG pixel ratio: the PNG is width*scale x height*scale pixels. */
  scale?: number;
}

export class ChromiumSession {
  private constructor(
    private readonly context: PwContext,
    private readonly page: PwPage,
    private readonly profileDir: string,
  ) {}

  /** Starts Chromium; throws with chromiumMissingMessage() when there is none. */
  static async open(executable = findChromium()): Promise<ChromiumSession> {
    if (!executable) throw new Error(chromiumMissingMessage());
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { chromium } = require('playwright-core') as {
      chromium: { launchPersistentContext(dir: string, o: Record<string, unknown>): Promise<PwContext> };
    };
    const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-chromium-'));
    let context: PwContext;
    try {
      context = await chromium.launchPersistentContext(profileDir, {
        executablePath: executable,
        headless: true,
        args: CHROMIUM_ARGS,
        timeout: 120_000,
      });
    } catch (err) {
      fs.rmSync(profileDir, { recursive: true, force: true });
      throw new Error(`Chromium at ${executable} did not start: ${(err as Error).message.split('\n')[0]}`);
    }
    const page = context.pages()[0] ?? (await context.newPage());
    await page.setContent('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body></body></html>');
    await page.addScriptTag({ path: plotlyPath() });
    return new ChromiumSession(context, page, profileDir);
  }

  /** SVG text of the figure. */
  async svg(fig: Figure, o: ImageOptions): Promise<string> {
    const url = await this.toImage(fig, 'svg', o);
    const comma = url.indexOf(',');
    const head = url.slice(0, comma);
    const body = url.slice(comma + 1);
    return head.endsWith(';base64') ? Buffer.from(body, 'base64').toString('utf8') : decodeURIComponent(body);
  }

  /** PNG bytes of the figure (width*scale x height*scale pixels). */
  async png(fig: Figure, o: ImageOptions): Promise<Buffer> {
    const url = await this.toImage(fig, 'png', o);
    return Buffer.from(url.slice(url.indexOf(',') + 1), 'base64');
  }

  private async toImage(fig: Figure, format: 'svg' | 'png', o: ImageOptions): Promise<string> {
    const payload = { data: fig.data, layout: fig.layout, config: { ...fig.config, responsive: false } };
    return this.page.evaluate(
      async (a: { fig: unknown; format: string; width: number; height: number; scale: number }) => {
        const w = window as unknown as { Plotly: { toImage(f: unknown, o: unknown): Promise<string> } };
        return w.Plotly.toImage(a.fig, { format: a.format, width: a.width, height: a.height, scale: a.scale });
      },
      { fig: payload, format, width: o.width, height: o.height, scale: o.scale ?? 1 },
    );
  }

  async close(): Promise<void> {
    try {
      await this.context.close();
    } finally {
      fs.rmSync(this.profileDir, { recursive: true, force: true });
    }
  }
}
