/** Small loopback clients for the server tests: JSON over WebSocket, HTTP with fetch. */
import WebSocket from 'ws';

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

  static open(url: string): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const c = new WsClient(ws);
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
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
