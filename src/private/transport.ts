/**
 * The client's connection to a private endpoint: a WebSocket (binary frames, replies matched by
 * sequence number) with an optional network model on the client's side, for sweeping tok/s
 * against round-trip time without another machine:
 *   rttMs            added round-trip delay: half before each frame leaves, half before a reply is delivered
 *   bandwidthMbps    a link of this rate in each direction: a frame of B bytes occupies it 8B/rate
 *                    (frames queue behind each other, as on a real link)
 * The delays are timers on top of the real loopback (or network) transfer; the measured network
 * time of each stage is what the client observed, model included.
 */
import { WebSocket } from 'ws';
import type { PrivateTransport } from './client-session';
import { serverError } from './client-session';
import { encodeFrame, FrameType, jsonBlob, parseFrame, parseJsonBlob, type Frame } from './wire';

export interface NetworkModel {
  rttMs?: number;
  bandwidthMbps?: number;
}

/** Waits `ms` with sub-millisecond accuracy without blocking the event loop. */
export function sleepPrecise(ms: number): Promise<void> {
  if (!(ms > 0)) return Promise.resolve();
  const end = performance.now() + ms;
  return new Promise((resolve) => {
    const spin = (): void => {
      if (performance.now() >= end) resolve();
      else setImmediate(spin);
    };
    const coarse = ms - 1.5;
    if (coarse > 0) setTimeout(spin, coarse);
    else setImmediate(spin);
  });
}

class Link {
  private freeAt = 0;
  constructor(private readonly mbps: number | undefined) {}
  /** Delay until a frame of `bytes` has crossed the modelled link. */
  delay(bytes: number): number {
    if (!this.mbps) return 0;
    const now = performance.now();
    const start = Math.max(now, this.freeAt);
    this.freeAt = start + (bytes * 8) / (this.mbps * 1000);
    return this.freeAt - now;
  }
}

export class PrivateConnection implements PrivateTransport {
  private readonly pending = new Map<number, { resolve: (f: Frame) => void; reject: (e: Error) => void; sent: number }>();
  private readonly up: Link;
  private readonly down: Link;
  private closedError?: Error;
  readonly bytes = { up: 0, down: 0 };

  private constructor(
    private readonly ws: WebSocket,
    readonly network: NetworkModel,
  ) {
    this.up = new Link(network.bandwidthMbps);
    this.down = new Link(network.bandwidthMbps);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return;
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      let f: Frame;
      try {
        f = parseFrame(bytes, { maxBlobs: 1 << 12, maxBlobBytes: 1 << 30 });
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      this.bytes.down += bytes.byteLength;
      const wait = (this.network.rttMs ?? 0) / 2 + this.down.delay(bytes.byteLength);
      void sleepPrecise(wait).then(() => {
        const p = this.pending.get(f.seq);
        if (!p) return;
        this.pending.delete(f.seq);
        p.resolve(f);
      });
    });
    ws.on('close', () => this.fail(new Error('private connection closed')));
    ws.on('error', (err) => this.fail(err));
  }

  static connect(url: string, network: NetworkModel = {}, headers: Record<string, string> = {}): Promise<PrivateConnection> {
    for (const [k, v] of Object.entries(network)) {
      if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) throw new RangeError(`network.${k} must be a finite number >= 0, got ${v}`);
    }
    const wsUrl = url.replace(/^http/, 'ws').replace(/\/+$/, '') + (url.includes('/api/v1/private/stream') ? '' : '/api/v1/private/stream');
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl, { perMessageDeflate: false, maxPayload: 1 << 30, headers });
      ws.once('open', () => resolve(new PrivateConnection(ws, network)));
      ws.once('error', reject);
    });
  }

  private fail(err: Error): void {
    this.closedError ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  async request(frame: Uint8Array, seq: number): Promise<{ reply: Frame; wallMs: number }> {
    if (this.closedError) throw this.closedError;
    const t0 = performance.now();
    const reply = new Promise<Frame>((resolve, reject) => this.pending.set(seq, { resolve, reject, sent: t0 }));
    await sleepPrecise((this.network.rttMs ?? 0) / 2 + this.up.delay(frame.byteLength));
    if (this.closedError) throw this.closedError;
    this.bytes.up += frame.byteLength;
    this.ws.send(frame);
    const f = await reply;
    return { reply: f, wallMs: performance.now() - t0 };
  }

  private seq = 1 << 30;
  /** A control exchange (hello, open, close): the reply, or the server's error as a JS error. */
  async control(type: FrameType, blobs: Uint8Array[], session = 0): Promise<Frame> {
    const seq = this.seq++;
    const { reply } = await this.request(encodeFrame({ type, session, site: 0, seq, blobs }), seq);
    if (reply.type === FrameType.Error) throw serverError(reply);
    return reply;
  }

  async hello(expert: string, placement: string): Promise<Record<string, unknown>> {
    const r = await this.control(FrameType.Hello, [jsonBlob({ expert, placement })]);
    return parseJsonBlob(r.blobs[0], 'adapter');
  }

  /** Sends a prepared `open` frame (PrivateClientSession.openFrame) and returns `ready`. */
  async open(openFrame: Uint8Array): Promise<Record<string, unknown>> {
    const seq = this.seq++;
    // re-stamp the sequence number of the prepared frame
    new DataView(openFrame.buffer, openFrame.byteOffset, openFrame.byteLength).setUint32(16, seq, true);
    const { reply } = await this.request(openFrame, seq);
    if (reply.type === FrameType.Error) throw serverError(reply);
    return parseJsonBlob(reply.blobs[0], 'ready');
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve();
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}
