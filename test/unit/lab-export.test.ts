// Export: self-contained HTML always; SVG that parses and PNG of the expected pixel size where
// Chromium exists; a clear message (HTML only) where it does not.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChromiumSession, findChromium } from '../../src/lab/chromium';
import { exportFigure, pngSize } from '../../src/lab/export';
import { latencyBreakdown } from '../../src/lab/plots';
import { measured, originalProvenance } from '../../src/lab/provenance';
import { plotlySource } from '../../src/lab/html';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-export-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const fig = latencyBreakdown([
  { label: 'original', provenance: originalProvenance(), stages: { forward: 25, encrypt: 10 }, total: 40 },
  { label: 'here', provenance: measured('Test CPU', '2026-11-26'), stages: { forward: 2, encrypt: 0.5 } },
]);

describe('HTML export (always)', () => {
  it('writes one self-contained page: plotly inlined once, the figure data, the provenance, no external URL', async () => {
    const res = await exportFigure(fig, path.join(dir, 'html-only'), { formats: ['html'] });
    expect(res.html).toBe(path.join(dir, 'html-only.html'));
    const html = fs.readFileSync(res.html!, 'utf8');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    const lib = plotlySource();
    expect(html.split(lib.slice(0, 200)).length - 1).toBe(1);
    expect(html.includes('Plotly.newPlot')).toBe(true);
    expect(html.includes('"forward"')).toBe(true);
    expect(html.includes('measured here (Test CPU, 2026-11-26)')).toBe(true);
    // Nothing is fetched: no script or stylesheet from a URL (the bundle itself mentions URLs in strings).
    expect(/<script[^>]+src=/i.test(html)).toBe(false);
    expect(/<link[^>]+href=/i.test(html)).toBe(false);
  });

  it('without Chromium, writes the HTML and says why SVG and PNG are missing', async () => {
    const saved = process.env.TENSAFE_CHROMIUM;
    process.env.TENSAFE_CHROMIUM = path.join(dir, 'no-such-chromium');
    try {
      const res = await exportFigure(fig, path.join(dir, 'no-chromium.png'), { warn: false });
      expect(fs.existsSync(path.join(dir, 'no-chromium.html'))).toBe(true);
      expect(res.svg).toBeUndefined();
      expect(res.png).toBeUndefined();
      expect(res.skipped).toMatch(/Chromium not found.*HTML only/);
    } finally {
      if (saved === undefined) delete process.env.TENSAFE_CHROMIUM;
      else process.env.TENSAFE_CHROMIUM = saved;
    }
  });

  it('pngSize refuses what is not a PNG', () => {
    expect(() => pngSize(Buffer.from('not a png at all, really not'))).toThrow(RangeError);
  });
});

const chromium = findChromium();

describe.skipIf(!chromium)('SVG and PNG through headless Chromium', () => {
  let session: ChromiumSession;
  beforeAll(async () => {
    session = await ChromiumSession.open(chromium!);
  }, 300_000);
  afterAll(async () => {
    await session?.close();
  });

  it('writes an SVG that parses, with the figure size, and a PNG of width*scale x height*scale', async () => {
    const res = await exportFigure(fig, path.join(dir, 'both'), { session, scale: 2 });
    const svg = fs.readFileSync(res.svg!, 'utf8');
    // Parse it back in the browser's XML parser: a parse error yields a <parsererror> document.
    const parsed = await (session as unknown as { page: { evaluate<R, A>(f: (a: A) => R, a: A): Promise<R> } }).page.evaluate((text: string) => {
      const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
      const root = doc.documentElement;
      return { root: root.nodeName, error: doc.getElementsByTagName('parsererror').length, width: root.getAttribute('width'), height: root.getAttribute('height'), text: root.textContent ?? '' };
    }, svg);
    expect(parsed.error).toBe(0);
    expect(parsed.root).toBe('svg');
    expect(Number(parsed.width)).toBe(fig.layout.width);
    expect(Number(parsed.height)).toBe(fig.layout.height);
    expect(parsed.text).toContain('measured here (Test CPU, 2026-11-26)');
    const png = fs.readFileSync(res.png!);
    expect(pngSize(png)).toEqual({ width: 2 * (fig.layout.width as number), height: 2 * (fig.layout.height as number) });
  });

  it('PNG scale 1 gives the figure size exactly', async () => {
    const res = await exportFigure(fig, path.join(dir, 'scale1'), { session, scale: 1, formats: ['png'] });
    expect(res.html).toBeUndefined();
    expect(pngSize(fs.readFileSync(res.png!))).toEqual({ width: fig.layout.width, height: fig.layout.height });
  });
});
