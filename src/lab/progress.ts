/**
 * A progress bar: updated in place in a tslab notebook (one display entry rewritten), with
 * '\r' on a terminal, and one line per step where stdout is not a terminal (CI logs).
 */
import { escapeHtml } from './html';
import { type TslabDisplay, tslab } from './display';

export interface ProgressSink {
  update(done: number, total: number, label: string): void;
  finish(summary: string): void;
}

export function progressText(done: number, total: number, label: string, width = 30): string {
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${label}`;
}

function progressHtml(done: number, total: number, label: string): string {
  const pct = total > 0 ? Math.round((100 * done) / total) : 100;
  return `<div style="font-family:monospace;font-size:12px"><div style="width:320px;height:10px;background:#eee;border-radius:3px">` +
    `<div style="width:${pct}%;height:10px;background:#0072B2;border-radius:3px"></div></div>${done}/${total} ${escapeHtml(label)}</div>`;
}

class NotebookProgress implements ProgressSink {
  constructor(private readonly d: TslabDisplay) {}
  update(done: number, total: number, label: string): void {
    this.d.html(progressHtml(done, total, label));
  }
  finish(summary: string): void {
    this.d.html(`<div style="font-family:monospace;font-size:12px">${escapeHtml(summary)}</div>`);
  }
}

class TerminalProgress implements ProgressSink {
  constructor(private readonly stream: NodeJS.WriteStream) {}
  update(done: number, total: number, label: string): void {
    const line = progressText(done, total, label);
    if (this.stream.isTTY) {
      const cols = this.stream.columns || 100;
      this.stream.write(`\r${line.slice(0, cols - 1).padEnd(cols - 1)}`);
    } else {
      this.stream.write(`${line}\n`);
    }
  }
  finish(summary: string): void {
    this.stream.write(this.stream.isTTY ? `\r${summary}\n` : `${summary}\n`);
  }
}

/** Silent sink (tests). */
export const noProgress: ProgressSink = { update() {}, finish() {} };

/** The right sink for where we run: the notebook display, else stderr (stdout stays for data). */
export function defaultProgress(): ProgressSink {
  const tl = tslab();
  if (tl) return new NotebookProgress(tl.newDisplay());
  return new TerminalProgress(process.stderr);
}
