/** Small loopback clients for the server tests: JSON over WebSocket, HTTP with fetch or raw node:http. */
import * as http from 'node:http';
import { Worker } from 'node:worker_threads';
import WebSocket from 'ws';

export interface WsOpenOptions {
  /** Extra request headers (Authorization, Host, ...). */
  headers?: Record<string, string>;
  /** The Origin header a browser would send. */
  origin?: string;
  /** Subprotocols offered. */
  protocols?: string[];
}

export class WsClient {
  readonly ws: WebSocket;
  private readonly inbox: Array<{ data: Buffer; binary: boolean }> = [];
  private waiters: Array<() => void> = [];
  closed = false;
  closeCode?: number;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data, binary) => {
      this.inbox.push({ data: Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer), binary });
      this.wake();
    });
    ws.on('close', (code) => {
      this.closed = true;
      this.closeCode = code;
      this.wake();
    });
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  static open(url: string, options: WsOpenOptions = {}): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options.protocols ?? [], { headers: options.headers, origin: options.origin });
      const c = new WsClient(ws);
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString('utf8')));
        res.on('end', () => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode} ${body}`), { status: res.statusCode, body })));
      });
    });
  }

  send(obj: unknown): void {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  sendBinary(buf: Buffer): void {
    this.ws.send(buf, { binary: true });
  }

  /** Next frame (raw). */
  async nextRaw(timeoutMs = 30_000): Promise<{ data: Buffer; binary: boolean }> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      if (this.closed) throw new Error(`socket closed (${this.closeCode}) while waiting for a frame`);
      if (Date.now() > deadline) throw new Error('timed out waiting for a frame');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return this.inbox.shift()!;
  }

  /** Next text frame as JSON. */
  async next(timeoutMs?: number): Promise<Record<string, any>> {
    const f = await this.nextRaw(timeoutMs);
    if (f.binary) throw new Error('expected a text frame, got binary');
    return JSON.parse(f.data.toString('utf8'));
  }

  /** Frames until (and including) one whose type is in `types`. */
  async until(types: string[], timeoutMs?: number): Promise<Array<Record<string, any>>> {
    const out: Array<Record<string, any>> = [];
    for (;;) {
      const m = await this.next(timeoutMs);
      out.push(m);
      if (types.includes(m.type)) return out;
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}

export async function getJson(url: string): Promise<{ status: number; body: any; headers: Headers }> {
  const r = await fetch(url);
  const text = await r.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: r.status, body, headers: r.headers };
}

export async function postJson(url: string, body: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: r.status, body: parsed };
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

/**
 * One request with node:http, headers as given (fetch will not send a chosen Host or Origin).
 * `body` is sent whole; `hold` sends the headers (and `partial` bytes, when given) and leaves
 * the request open, for tests of what the server answers before a body has arrived.
 */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string | number>; body?: string | Buffer; hold?: boolean; partial?: Buffer } = {},
): { response: Promise<RawResponse>; request: http.ClientRequest } {
  const u = new URL(url);
  const request = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: options.method ?? 'GET', headers: options.headers, agent: false });
  const response = new Promise<RawResponse>((resolve, reject) => {
    request.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: any = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
      res.on('error', reject);
    });
    request.on('error', reject);
  });
  if (options.hold) {
    request.flushHeaders();
    if (options.partial) request.write(options.partial);
  } else {
    request.end(options.body);
  }
  return { response, request };
}

/** Tick times (ms since the process's time origin, comparable across threads) of a 10 ms timer. */
const TICKER = `
const { parentPort } = require('node:worker_threads');
const ticks = [];
const t = setInterval(() => ticks.push(performance.timeOrigin + performance.now()), 10);
parentPort.once('message', () => { clearInterval(t); parentPort.postMessage(ticks); });`;

export interface Stall {
  /** The main thread's largest gap between ticks, ms. */
  worstMs: number;
  /**
   * The largest part of a main-thread gap during which a sibling thread kept ticking: time the
   * main thread itself was blocked (a native call waiting, a long computation), not time the
   * whole process waited for a CPU (other processes on a shared machine).
   */
  mainOnlyMs: number;
}

/** Measures the event loop's stalls from now until stop() (10 ms timers on the main thread and on a sibling). */
export function stallMeter(): { stop: () => Promise<Stall> } {
  const now = () => performance.timeOrigin + performance.now();
  const main: number[] = [now()];
  const timer = setInterval(() => main.push(now()), 10);
  const sibling = new Worker(TICKER, { eval: true });
  return {
    stop: async () => {
      clearInterval(timer);
      main.push(now());
      const side = await new Promise<number[]>((resolve) => {
        sibling.once('message', resolve);
        sibling.postMessage('stop');
      });
      await sibling.terminate();
      let worstMs = 0;
      let mainOnlyMs = 0;
      let j = 0;
      for (let i = 1; i < main.length; i++) {
        const a = main[i - 1];
        const b = main[i];
        worstMs = Math.max(worstMs, b - a);
        // The sibling's largest silence inside (a, b): what the whole process waited.
        while (j < side.length && side[j] <= a) j++;
        let prev = a;
        let silence = 0;
        for (let k = j; k < side.length && side[k] < b; k++) {
          silence = Math.max(silence, side[k] - prev);
          prev = side[k];
        }
        silence = Math.max(silence, b - prev);
        mainOnlyMs = Math.max(mainOnlyMs, b - a - silence);
      }
      return { worstMs, mainOnlyMs };
    },
  };
}
