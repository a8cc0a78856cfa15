/**
 * HTML for tables and figures: the inline form shown in a notebook and the self-contained
 * page written by export. plotly.js is read from node_modules (plotly.js-dist-min: the
 * project's minified build of the release, 4.8 MB instead of 10 MB) and inlined (no CDN).
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Figure } from './figure';

let plotlyCache: string | undefined;
let plotlyGzipCache: string | undefined;

/** Path of the minified plotly.js bundle. */
export function plotlyPath(): string {
  return require.resolve('plotly.js-dist-min/plotly.min.js');
}

/** The plotly.js bundle source (about 4.8 MB, minified), read once. It sets window.Plotly when run in a page. */
export function plotlySource(): string {
  if (plotlyCache === undefined) plotlyCache = fs.readFileSync(plotlyPath(), 'utf8');
  return plotlyCache;
}

/** JSON that is safe inside a <script> element. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The plotly bundle as a <script> element; bundle text never contains "</script". */
export function plotlyScriptTag(): string {
  const src = plotlySource();
  if (/<\/script/i.test(src)) throw new Error('lab: plotly.js bundle contains </script> and cannot be inlined');
  return `<script type="text/javascript">${src}</script>`;
}

/** The bundle gzipped and base64-encoded (about 2 MB instead of 4.8), made once per process. */
export function plotlyGzipBase64(): string {
  if (plotlyGzipCache === undefined) plotlyGzipCache = gzipSync(Buffer.from(plotlySource(), 'utf8'), { level: 9 }).toString('base64');
  return plotlyGzipCache;
}

/**
 * The bundle for a notebook output: gzipped and base64-encoded in a <script> that inflates it
 * with the browser's DecompressionStream and runs it (it sets window.Plotly; figureDiv waits
 * for it). This keeps an executed notebook near 2 MB instead of 5 (plotly once per notebook).
 * Exported pages keep the plain bundle (plotlyScriptTag), which any browser runs.
 */
export function plotlyInlineTag(): string {
  return [
    '<script type="text/javascript">(function () {',
    '  if (window.Plotly || window.__tensafePlotlyLoading) return;',
    '  window.__tensafePlotlyLoading = true;',
    `  var b64 = "${plotlyGzipBase64()}";`,
    "  if (typeof DecompressionStream === 'undefined') { console.error('tensafe: this browser has no DecompressionStream: plotly.js cannot be inflated'); return; }",
    '  var bin = atob(b64), bytes = new Uint8Array(bin.length);',
    '  for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);',
    "  new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text().then(function (src) {",
    "    var s = document.createElement('script'); s.type = 'text/javascript'; s.text = src; document.head.appendChild(s);",
    '  });',
    '})();</script>',
  ].join('\n');
}

function plotPayload(fig: Figure) {
  return { data: fig.data, layout: fig.layout, config: fig.config };
}

/**
 * A div and the script that draws the figure into it. It waits for window.Plotly, which the
 * first figure of a notebook defines (plotly inlined once per notebook).
 */
export function figureDiv(fig: Figure, id = `tensafe-fig-${randomBytes(6).toString('hex')}`): string {
  const w = Number(fig.layout.width) || 960;
  const h = Number(fig.layout.height) || 540;
  return [
    `<div id="${id}" class="tensafe-figure" style="width:${w}px;height:${h}px;max-width:100%"></div>`,
    '<script type="text/javascript">(function () {',
    `  var fig = ${scriptJson(plotPayload(fig))};`,
    `  function draw() { window.Plotly.newPlot(${JSON.stringify(id)}, fig.data, fig.layout, fig.config); }`,
    '  if (window.Plotly) { draw(); return; }',
    '  var tries = 0, timer = setInterval(function () {',
    '    if (window.Plotly) { clearInterval(timer); draw(); }',
    '    else if (++tries > 400) { clearInterval(timer);',
    `      var el = document.getElementById(${JSON.stringify(id)});`,
    "      if (el) el.textContent = 'plotly.js did not load: re-run the notebook from its first figure cell.'; }",
    '  }, 50);',
    '})();</script>',
    `<div class="tensafe-provenance" style="font-size:11px;color:#555">${escapeHtml(fig.note)}</div>`,
  ].join('\n');
}

/** A standalone page: plotly inlined, the figure, its provenance as text. Opens offline. */
export function figurePage(fig: Figure, title?: string): string {
  const t = title ?? String((fig.layout.title as { text?: string } | undefined)?.text ?? 'figure');
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(t)}</title>`,
    `<meta name="provenance" content="${escapeHtml(fig.note)}">`,
    plotlyScriptTag(),
    '</head><body style="margin:16px;font-family:Helvetica,Arial,sans-serif">',
    figureDiv(fig, 'figure'),
    '</body></html>',
    '',
  ].join('\n');
}
