/**
 * State shared by the server's handlers: the generation service, the split engine, the
 * limits (gates, rate limiter, sessions, upload budget, flow control), who may connect, the
 * metrics, and the registry of running work that graceful shutdown cancels.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import type { GenerationService } from '../pipeline/types';
import type { ByteBudget } from './body';
import { RequestError } from './errors';
import { GenerationGate } from './generation-gate';
import type { AccessPolicy } from './guards';
import { ServerMetrics } from './metrics';
import { RateLimiter } from './rate-limiter';
import { SessionStore } from './session-store';
import type { SplitEngine, SplitSession } from './split-engine';
import type { FlowOptions } from './ws-flow';

export interface ServerContext {
  service: GenerationService;
  split?: SplitEngine;
  /** Generation slots (chat/stream, chat/compare): no more than the service runs at once. */
  gate: GenerationGate;
  /** Split forwards and selftests running on the split engine at once. */
  splitGate: GenerationGate;
  limiter: RateLimiter;
  sessions: SessionStore<SplitSession>;
  metrics: ServerMetrics;
  /** Abort controllers of running generations/forwards (cancelled on shutdown). */
  running: Set<AbortController>;
  /** True once close() started: new work is refused. */
  closing: boolean;
  /** Why split mode is off (said in the 503 of the split endpoints). */
  splitUnavailable?: string;
  /** WebSocket flow control: unsent bytes before a stream waits, how long before a non-reader is dropped. */
  flow: FlowOptions;
  /** Host, Origin and token checks. */
  access: AccessPolicy;
  /** Bytes of large request bodies held at once. */
  uploads: ByteBudget;
}

/** The client key for rate limits and HTTP sessions: the remote address. */
export function clientKey(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

/**
 * Refuses with 429 when the client has fewer than `cost` requests left (default 1). A cost above
 * the bucket's size is taken up to the size and the rest charged as debt (the client then waits
 * for the refill), so a large request stays possible under a small limit.
 */
export function checkRate(ctx: ServerContext, client: string, cost = 1): void {
  if (cost <= 0) return;
  const upfront = Math.min(cost, ctx.limiter.burst);
  if (!ctx.limiter.take(client, upfront)) {
    throw new RequestError(
      `rate limit exceeded (${ctx.limiter.perMinute} requests per minute${cost > 1 ? `; this request costs ${cost}` : ''}); retry in ${ctx.limiter.retryAfterS(client, upfront)} s`,
      { status: 429, code: 'rate_limited' },
    );
  }
  ctx.limiter.charge(client, cost - upfront);
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
