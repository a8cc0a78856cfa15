/**
 * `npm run figures [-- --out DIR] [--formats html,svg,png] [--only name,name]`: regenerates
 * figures/ from datasets/ (cited tables and committed result files). HTML is always written;
 * SVG and PNG through headless Chromium where it exists (one browser for all figures).
 */
import * as path from 'node:path';
import { packageRoot } from '../engine/native';
import { ChromiumSession, chromiumMissingMessage, findChromium } from '../lab/chromium';
import { type ExportFormat, exportFigure } from '../lab/export';
import { loadLabData, standardFigures } from '../lab/figures';

export interface FiguresArgs {
  out: string;
  formats: ExportFormat[];
  only: string[];
}

export function parseFiguresArgs(argv: string[]): FiguresArgs {
  const root = packageRoot();
  const args: FiguresArgs = { out: path.join(root, 'figures'), formats: ['html', 'svg', 'png'], only: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--out' && v) {
      args.out = path.resolve(v);
      i++;
    } else if (a === '--formats' && v) {
      const f = v.split(',').map((s) => s.trim()) as ExportFormat[];
      const bad = f.filter((x) => !['html', 'svg', 'png'].includes(x));
      if (bad.length) throw new RangeError(`figures: --formats takes html, svg, png; got ${bad.join(', ')}`);
      args.formats = f;
      i++;
    } else if (a === '--only' && v) {
      args.only = v.split(',').map((s) => s.trim()).filter(Boolean);
      i++;
    } else {
      throw new RangeError(`figures: unknown argument '${a}' (use --out DIR, --formats html,svg,png, --only a,b)`);
    }
  }
  return args;
}

export async function runFigures(argv: string[] = []): Promise<void> {
  const args = parseFiguresArgs(argv);
  const all = standardFigures(loadLabData());
  const known = all.map((f) => f.name);
  const unknown = args.only.filter((n) => !known.includes(n));
  if (unknown.length) throw new RangeError(`figures: unknown figure(s) ${unknown.join(', ')}; known: ${known.join(', ')}`);
  const chosen = args.only.length ? all.filter((f) => args.only.includes(f.name)) : all;

  const wantImages = args.formats.some((f) => f !== 'html');
  let session: ChromiumSession | undefined;
  let formats = args.formats;
  if (wantImages) {
    const exe = findChromium();
    if (exe) {
      session = await ChromiumSession.open(exe);
    } else {
      console.warn(`figures: ${chromiumMissingMessage()}`);
      formats = formats.filter((f) => f === 'html');
    }
  }
  let written = 0;
  try {
    for (const f of chosen) {
      if (!f.figure) {
        console.log(`figures: skipped ${f.name}: ${f.skipped}`);
        continue;
      }
      const res = await exportFigure(f.figure, path.join(args.out, f.name), { formats, session, warn: false });
      const files = [res.html, res.svg, res.png].filter(Boolean).map((p) => path.relative(process.cwd(), p as string));
      written += files.length;
      console.log(`figures: ${f.name}: ${files.join(', ')}\n         ${f.figure.note}`);
    }
  } finally {
    await session?.close();
  }
  console.log(`figures: ${written} files written to ${path.relative(process.cwd(), args.out) || '.'}`);
}
