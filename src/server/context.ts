/**
 * State shared by the server's handlers: the generation service, the split engine, the
 * limits (gate, rate limiter, sessions), the metrics, and the registry of running work that
 * graceful shutdown cancels.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import type { GenerationService } from '../pipeline/types';
import { RequestError } from './errors';
import { GenerationGate } from './generation-gate';
import { ServerMetrics } from './metrics';
import { RateLimiter } from './rate-limiter';
import { SessionStore } from './session-store';
import type { SplitEngine, SplitSession } from './split-engine';

export interface ServerContext {
  service: GenerationService;
  split?: SplitEngine;
  gate: GenerationGate;
  limiter: RateLimiter;
  sessions: SessionStore<SplitSession>;
  metrics: ServerMetrics;
  /** Abort controllers of running generations/forwards (cancelled on shutdown). */
  running: Set<AbortController>;
  /** True once close() started: new work is refused. */
  closing: boolean;
  /** Why split mode is off (said in the 503 of the split endpoints). */
  splitUnavailable?: string;
  /** Bytes a WebSocket may have buffered before a stream waits for it to drain. */
  maxBufferedBytes: number;
}

/** The client key for rate limits and HTTP sessions: the remote address. */
export function clientKey(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

/** Refuses with 429 when the client is over its rate. */
export function checkRate(ctx: ServerContext, client: string): void {
  if (!ctx.limiter.take(client)) {
    throw new RequestError(`rate limit exceeded (${ctx.limiter.perMinute} requests per minute); retry in ${ctx.limiter.retryAfterS(client)} s`, {
      status: 429,
      code: 'rate_limited',
    });
  }
}

export function requireSplit(ctx: ServerContext): SplitEngine {
  if (!ctx.split) {
    throw new RequestError(`split inference is not available on this server${ctx.splitUnavailable ? `: ${ctx.splitUnavailable}` : ''}`, { status: 503, code: 'split_unavailable' });
  }
  return ctx.split;
}

/** Registers an abort controller for shutdown; returns it and its unregister function. */
export function track(ctx: ServerContext, extra?: AbortSignal): { controller: AbortController; done: () => void } {
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  if (extra) {
    if (extra.aborted) controller.abort();
    else extra.addEventListener('abort', onAbort, { once: true });
  }
  ctx.running.add(controller);
  return {
    controller,
    done: () => {
      ctx.running.delete(controller);
      extra?.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * Sends a text or binary frame and returns the milliseconds spent encoding and handing it to
 * the socket (the `network` stage on the server side). `build` produces the frame so its
 * encoding is inside the measurement.
 */
export function timedSend(ws: WebSocket, build: () => string | Buffer): number {
  const t0 = performance.now();
  const data = build();
  if (ws.readyState === ws.OPEN) ws.send(data);
  return performance.now() - t0;
}

/** Waits while the socket has more than `limit` bytes buffered (a slow reader). */
export async function drain(ws: WebSocket, limit: number, signal?: AbortSignal): Promise<void> {
  while (ws.readyState === ws.OPEN && ws.bufferedAmount > limit && !signal?.aborted) {
    await new Promise((r) => setTimeout(r, 5));
  }
}
