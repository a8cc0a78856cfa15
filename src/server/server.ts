/**
 * TensafeServer: node:http + ws on one port. HTTP routes in routes.ts, WebSockets in
 * chat-stream.ts and split-stream.ts. Limits: the generation gate (default 2 at once, FIFO
 * queue), per-client rate limit, split sessions with idle timeout and cap. close() is
 * graceful: it stops accepting, refuses queued work, lets running streams finish for
 * `graceMs`, cancels what is left, closes every socket, frees the sessions' KV caches and
 * (when the server owns them) disposes the engines.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { GenerationService } from '../pipeline/types';
import { handleChatSocket } from './chat-stream';
import { GenerationGate } from './generation-gate';
import { ServerMetrics } from './metrics';
import { RateLimiter, type RateLimitOptions } from './rate-limiter';
import { handleHttp, type HttpContext } from './routes';
import { SessionStore, type SessionStoreOptions } from './session-store';
import type { SplitEngine, SplitSession } from './split-engine';
import { handleSplitSocket } from './split-stream';
import { defaultPublicDir, loadStatic } from './static-files';

export interface ServerOptions {
  service: GenerationService;
  /** Split inference (server side); the split endpoints answer 503 without it. */
  split?: SplitEngine;
  /** Why there is no split engine (said in those 503 answers). */
  splitUnavailable?: string;
  host?: string;
  /** 0 picks a free port (tests). Default 8095, the original's. */
  port?: number;
  /** Generations (and split forwards) running at once; default 2, the original's. */
  maxConcurrent?: number;
  /** Requests allowed to wait for a slot; beyond, 503. Default 256. */
  maxQueue?: number;
  rateLimit?: RateLimitOptions;
  sessions?: SessionStoreOptions;
  /** Folder of the page; default src/server/public. */
  publicDir?: string;
  /** Largest JSON body for ordinary endpoints, bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Dispose the service and split engine on close (default true). */
  ownEngines?: boolean;
  /** Extra facts for /health and /metrics. */
  facts?: () => Record<string, unknown>;
  /** WebSocket ping interval; a socket silent for two intervals is dropped (default 30 s). */
  heartbeatMs?: number;
}

export class TensafeServer {
  readonly http: http.Server;
  private readonly wss: WebSocketServer;
  private readonly ctx: HttpContext;
  private readonly options: ServerOptions;
  private readonly sockets = new Set<WebSocket>();
  private readonly alive = new WeakSet<WebSocket>();
  private heartbeat?: NodeJS.Timeout;
  private closing?: Promise<void>;

  constructor(options: ServerOptions) {
    this.options = options;
    const maxConcurrent = options.maxConcurrent ?? 2;
    this.ctx = {
      service: options.service,
      split: options.split,
      splitUnavailable: options.splitUnavailable,
      gate: new GenerationGate(maxConcurrent, options.maxQueue ?? 256),
      limiter: new RateLimiter(options.rateLimit),
      sessions: new SessionStore<SplitSession>(options.sessions),
      metrics: new ServerMetrics(),
      running: new Set(),
      closing: false,
      maxBufferedBytes: 1 << 20,
      staticFiles: loadStatic(options.publicDir ?? defaultPublicDir()),
      selftestHeads: new Map(),
      maxBodyBytes: options.maxBodyBytes ?? 1 << 20,
      facts: options.facts ?? (() => ({})),
    };
    this.http = http.createServer((req, res) => {
      void handleHttp(this.ctx, req, res);
    });
    this.http.keepAliveTimeout = 5000;
    // A split frame holds at most contextLength x hiddenSize float32 values as base64.
    const cfg = options.split?.config();
    const maxPayload = cfg ? Math.ceil((cfg.contextLength * cfg.hiddenSize * 4 * 4) / 3) + (1 << 16) : 1 << 20;
    this.wss = new WebSocketServer({ noServer: true, maxPayload, perMessageDeflate: false });
    this.http.on('upgrade', (req, socket, head) => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (this.ctx.closing || (path !== '/api/v1/chat/stream' && path !== '/api/v1/split/stream')) {
        socket.write(`HTTP/1.1 ${this.ctx.closing ? '503 Service Unavailable' : '404 Not Found'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        socket.destroy();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        this.sockets.add(ws);
        this.alive.add(ws);
        ws.on('pong', () => this.alive.add(ws));
        this.ctx.metrics.wsConnections++;
        this.ctx.metrics.wsConnectionsTotal++;
        ws.on('close', () => {
          this.sockets.delete(ws);
          this.ctx.metrics.wsConnections--;
        });
        ws.on('error', () => ws.terminate());
        if (path === '/api/v1/chat/stream') handleChatSocket(this.ctx, ws, req);
        else handleSplitSocket(this.ctx, ws, req);
      });
    });
  }

  /**
   * Heartbeat: every `ms`, sockets that did not answer the previous ping are terminated (a
   * peer that vanished without closing would otherwise hold its generation and sessions).
   */
  private startHeartbeat(ms: number): void {
    this.heartbeat = setInterval(() => {
      for (const ws of this.sockets) {
        if (!this.alive.has(ws)) {
          ws.terminate();
          continue;
        }
        this.alive.delete(ws);
        ws.ping();
      }
    }, ms);
    this.heartbeat.unref();
  }

  /** Starts listening; resolves with the bound address. */
  listen(): Promise<{ host: string; port: number; url: string }> {
    const host = this.options.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.options.port ?? 8095, host, () => {
        this.http.off('error', reject);
        this.startHeartbeat(this.options.heartbeatMs ?? 30_000);
        const a = this.http.address() as AddressInfo;
        const shown = a.family === 'IPv6' ? `[${a.address}]` : a.address;
        resolve({ host: a.address, port: a.port, url: `http://${shown}:${a.port}` });
      });
    });
  }

  /** Live counters (tests and the CLI read them). */
  stats(): { gate: ReturnType<GenerationGate['stats']>; sessions: ReturnType<SessionStore<SplitSession>['stats']>; sockets: number } {
    return { gate: this.ctx.gate.stats(), sessions: this.ctx.sessions.stats(), sockets: this.sockets.size };
  }

  /**
   * Graceful shutdown: refuse new work, wait up to `graceMs` for running work, cancel the
   * rest, close sockets (1001 "going away"), free sessions, dispose the engines.
   */
  close(graceMs = 5000): Promise<void> {
    this.closing ??= (async () => {
      this.ctx.closing = true;
      if (this.heartbeat) clearInterval(this.heartbeat);
      this.ctx.gate.close();
      this.http.close();
      const deadline = Date.now() + graceMs;
      while (this.ctx.running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      for (const c of this.ctx.running) c.abort();
      for (const ws of this.sockets) ws.close(1001, 'server shutting down');
      const t = Date.now() + 1000;
      while (this.sockets.size > 0 && Date.now() < t) await new Promise((r) => setTimeout(r, 10));
      for (const ws of this.sockets) ws.terminate();
      this.http.closeAllConnections();
      await this.ctx.sessions.close();
      for (const h of this.ctx.selftestHeads.values()) await (await h.catch(() => undefined))?.dispose();
      this.ctx.selftestHeads.clear();
      if (this.options.ownEngines ?? true) {
        await this.options.split?.dispose();
        await this.options.service.dispose();
      }
    })();
    return this.closing;
  }
}

/** Creates and starts a server. */
export async function startServer(options: ServerOptions): Promise<{ server: TensafeServer; url: string; port: number }> {
  const server = new TensafeServer(options);
  const { url, port } = await server.listen();
  return { server, url, port };
}
