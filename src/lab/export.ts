/**
 * Figure export: self-contained HTML always; SVG and PNG through headless Chromium where it
 * exists, with a clear message where it does not.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ChromiumSession, chromiumMissingMessage, findChromium } from './chromium';
import { DEFAULT_HEIGHT, DEFAULT_WIDTH, type Figure } from './figure';
import { figurePage } from './html';

export type ExportFormat = 'html' | 'svg' | 'png';

export interface ExportOptions {
  formats?: ExportFormat[];
  /** PNG pixel ratio (default 2: a 960x540 figure gives a 1920x1080 PNG). */
  scale?: number;
  /** A running Chromium to reuse (batch export); else one is started and closed for this call. */
  session?: ChromiumSession;
  /** Print the "Chromium not found" message (default true). */
  warn?: boolean;
}

export interface ExportResult {
  html?: string;
  svg?: string;
  png?: string;
  /** Why SVG/PNG were not written, where they were asked for. */
  skipped?: string;
}

/** "figures/x", "figures/x.html" and "figures/x.png" all mean the base path "figures/x". */
export function basePath(p: string): string {
  return p.replace(/\.(html|svg|png)$/i, '');
}

export function figureSize(fig: Figure): { width: number; height: number } {
  return { width: Number(fig.layout.width) || DEFAULT_WIDTH, height: Number(fig.layout.height) || DEFAULT_HEIGHT };
}

export async function exportFigure(fig: Figure, target: string, opts: ExportOptions = {}): Promise<ExportResult> {
  const formats = opts.formats ?? ['html', 'svg', 'png'];
  const base = basePath(path.resolve(target));
  fs.mkdirSync(path.dirname(base), { recursive: true });
  const out: ExportResult = {};
  if (formats.includes('html')) {
    out.html = `${base}.html`;
    fs.writeFileSync(out.html, figurePage(fig));
  }
  const images = formats.filter((f) => f === 'svg' || f === 'png');
  if (images.length === 0) return out;
  let session = opts.session;
  if (!session) {
    const exe = findChromium();
    if (!exe) {
      out.skipped = chromiumMissingMessage();
      if (opts.warn !== false) console.warn(`export: ${out.skipped}`);
      return out;
    }
    session = await ChromiumSession.open(exe);
  }
  try {
    const size = figureSize(fig);
    if (images.includes('svg')) {
      out.svg = `${base}.svg`;
      fs.writeFileSync(out.svg, await session.svg(fig, size));
    }
    if (images.includes('png')) {
      out.png = `${base}.png`;
      fs.writeFileSync(out.png, await session.png(fig, { ...size, scale: opts.scale ?? 2 }));
    }
  } finally {
    if (!opts.session) await session.close();
  }
  return out;
}

/** Width and height from a PNG's IHDR chunk (for checks). */
export function pngSize(png: Buffer): { width: number; height: number } {
  const sig = '89504e470d0a1a0a';
  if (png.length < 24 || png.subarray(0, 8).toString('hex') !== sig || png.subarray(12, 16).toString('ascii') !== 'IHDR') {
    throw new RangeError('pngSize: not a PNG');
  }
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}
