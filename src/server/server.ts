/**
 * TensafeServer: node:http + ws on one port. HTTP routes in routes.ts, WebSockets in
 * chat-stream.ts and split-stream.ts (one entry each in WS_ENDPOINTS, with its own frame
 * limit). Who may connect: guards.ts (loopback bind by default; Host and Origin allow-lists;
 * a bearer token, required for a non-loopback bind). Limits: generation slots (no more than
 * the service runs at once, FIFO queue with "queued" frames), split gate, per-client rate
 * limit, split sessions with idle timeout, cap and one request at a time, an upload byte budget,
 * WebSocket flow control (ws-flow.ts) and a connection cap. close() is graceful: it stops
 * accepting, refuses queued work, lets running streams finish for `graceMs`, cancels what is
 * left (each stream says `cancelled`), closes every socket, frees the sessions' KV caches and
 * (when the server owns them) disposes the engines.
 */
import type { IncomingMessage } from 'node:http';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { GenerationService } from '../pipeline/types';
import { ByteBudget } from './body';
import { handleChatSocket } from './chat-stream';
import type { ServerContext } from './context';
import { RequestError } from './errors';
import { GenerationGate } from './generation-gate';
import { accessPolicy, checkAccess, isLoopbackHost, refuseUpgrade, selectProtocol } from './guards';
import { ServerMetrics } from './metrics';
import { RateLimiter, type RateLimitOptions } from './rate-limiter';
import { handleHttp, type HttpContext } from './routes';
import { SessionStore, type SessionStoreOptions } from './session-store';
import type { SplitEngine, SplitSession } from './split-engine';
import { handleSplitSocket } from './split-stream';
import { defaultPublicDir, loadStatic } from './static-files';
import { DEFAULT_FLOW, type FlowOptions } from './ws-flow';

/** A WebSocket endpoint: its path, its frame limit (applied by ws before a frame is buffered), its handler. */
export interface WsEndpoint {
  path: string;
  maxPayload: (ctx: ServerContext) => number;
  handle: (ctx: ServerContext, ws: WebSocket, req: IncomingMessage) => void;
}

/** A chat request is at most a 10000-character query and a few fields: 128 KiB is ample. */
export const CHAT_MAX_FRAME = 128 * 1024;

/** Bytes of a full context of float32 rows as base64 (0 without a split engine). */
function fullContextBase64(split?: SplitEngine): number {
  const cfg = split?.config();
  return cfg ? Math.ceil((cfg.contextLength * cfg.hiddenSize * 4 * 4) / 3) : 0;
}

/** The largest split frame: a full context of base64 float32 rows plus the other fields. */
export function splitMaxFrame(ctx: ServerContext): number {
  return fullContextBase64(ctx.split) + (1 << 16);
}

/** The WebSocket endpoints (the private mode adds its own entry here). */
export const WS_ENDPOINTS: WsEndpoint[] = [
  { path: '/api/v1/chat/stream', maxPayload: () => CHAT_MAX_FRAME, handle: handleChatSocket },
  { path: '/api/v1/split/stream', maxPayload: splitMaxFrame, handle: handleSplitSocket },
];

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
  /** Bearer token required on every request but /health and the page (required for a non-loopback host). */
  token?: string;
  /** Host names accepted in Host besides loopback names and IP literals (`--allow-host`). */
  allowedHosts?: string[];
  /** Origins accepted besides the server's own pages (`--allow-origin`). */
  allowedOrigins?: string[];
  /** WebSocket flow control (unsent bytes before waiting, time before a non-reader is dropped, pending messages). */
  flow?: Partial<FlowOptions>;
  /** Bytes of large request bodies held at once (default: 4 full split contexts, at least 64 MiB). */
  uploadBudgetBytes?: number;
  /** Open WebSockets at once; beyond, upgrades get 503 (default 512). */
  maxConnections?: number;
  /** Extra WebSocket endpoints (the private mode's), next to WS_ENDPOINTS. */
  endpoints?: WsEndpoint[];
}

export class TensafeServer {
  readonly http: http.Server;
  private readonly servers = new Map<string, { wss: WebSocketServer; endpoint: WsEndpoint }>();
  private readonly ctx: HttpContext;
  private readonly options: ServerOptions;
  private readonly sockets = new Set<WebSocket>();
  private readonly alive = new WeakSet<WebSocket>();
  private readonly maxConnections: number;
  private heartbeat?: NodeJS.Timeout;
  private closing?: Promise<void>;

  constructor(options: ServerOptions) {
    this.options = options;
    const maxConcurrent = options.maxConcurrent ?? 2;
    // Generation slots: no more than the service really runs at once (the pipeline: one KV
    // cache, one generation), so a client holding a slot is generating, not silently waiting.
    const serviceSlots = Math.max(1, Math.floor(options.service.concurrency ?? 1));
    const maxQueue = options.maxQueue ?? 256;
    this.maxConnections = options.maxConnections ?? 512;
    this.ctx = {
      service: options.service,
      split: options.split,
      splitUnavailable: options.splitUnavailable,
      gate: new GenerationGate(Math.min(maxConcurrent, serviceSlots), maxQueue),
      splitGate: new GenerationGate(maxConcurrent, maxQueue),
      limiter: new RateLimiter(options.rateLimit),
      sessions: new SessionStore<SplitSession>(options.sessions),
      metrics: new ServerMetrics(),
      running: new Set(),
      closing: false,
      flow: { ...DEFAULT_FLOW, ...(options.flow ?? {}) },
      access: accessPolicy({ token: options.token, allowedHosts: options.allowedHosts, allowedOrigins: options.allowedOrigins }),
      uploads: new ByteBudget(options.uploadBudgetBytes ?? Math.max(64 << 20, 4 * fullContextBase64(options.split))),
      staticFiles: loadStatic(options.publicDir ?? defaultPublicDir()),
      selftestHeads: new Map(),
      maxBodyBytes: options.maxBodyBytes ?? 1 << 20,
      facts: options.facts ?? (() => ({})),
    };
    this.http = http.createServer((req, res) => {
      void handleHttp(this.ctx, req, res);
    });
    this.http.keepAliveTimeout = 5000;
    for (const endpoint of [...WS_ENDPOINTS, ...(options.endpoints ?? [])]) {
      // One ws server per endpoint: each has its own frame limit, checked by ws from the frame
      // header before the frame is buffered. UTF-8 is checked by the handlers (an error frame,
      // not a 1007 close); the token subprotocol is never echoed back.
      const wss = new WebSocketServer({ noServer: true, maxPayload: endpoint.maxPayload(this.ctx), perMessageDeflate: false, skipUTF8Validation: true, handleProtocols: selectProtocol });
      this.servers.set(endpoint.path, { wss, endpoint });
    }
    this.http.on('upgrade', (req, socket, head) => {
      socket.on('error', () => socket.destroy());
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      const target = this.servers.get(path);
      try {
        checkAccess(req, this.ctx.access);
        if (this.ctx.closing) throw new RequestError('server is shutting down', { status: 503, code: 'shutting_down' });
        if (!target) throw new RequestError(`no WebSocket endpoint at ${path}`, { status: 404, code: 'not_found' });
        if (this.sockets.size >= this.maxConnections) throw new RequestError(`too many WebSocket connections (${this.maxConnections})`, { status: 503, code: 'busy' });
      } catch (err) {
        refuseUpgrade(socket, err);
        return;
      }
      target.wss.handleUpgrade(req, socket, head, (ws) => {
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
        target.endpoint.handle(this.ctx, ws, req);
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

  /**
   * Starts listening (127.0.0.1 unless told otherwise); resolves with the bound address. A
   * host other than a loopback one is refused without a token: anyone who can reach it could
   * otherwise drive the engine.
   */
  listen(): Promise<{ host: string; port: number; url: string }> {
    const host = this.options.host ?? '127.0.0.1';
    if (!isLoopbackHost(host) && this.ctx.access.token === undefined) {
      return Promise.reject(
        Object.assign(new Error(`refusing to listen on ${host} (not a loopback address) without a token: pass --token or set TENSAFE_TOKEN (see PROTOCOL.md, "Who may connect")`), {
          code: 'ERR_TENSAFE_NO_TOKEN',
        }),
      );
    }
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
  stats(): {
    gate: ReturnType<GenerationGate['stats']>;
    splitGate: ReturnType<GenerationGate['stats']>;
    sessions: ReturnType<SessionStore<SplitSession>['stats']>;
    sockets: number;
    uploads: ReturnType<ByteBudget['stats']>;
  } {
    return { gate: this.ctx.gate.stats(), splitGate: this.ctx.splitGate.stats(), sessions: this.ctx.sessions.stats(), sockets: this.sockets.size, uploads: this.ctx.uploads.stats() };
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
      this.ctx.splitGate.close();
      this.http.close();
      const deadline = Date.now() + graceMs;
      while (this.ctx.running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      // Past the grace: cancel what is left, and let each stream send its `cancelled` frame
      // (bounded: a stream stops between tokens) before the sockets close.
      for (const c of this.ctx.running) c.abort();
      const settle = Date.now() + 2000;
      while (this.ctx.running.size > 0 && Date.now() < settle) await new Promise((r) => setTimeout(r, 10));
      for (const ws of this.sockets) ws.close(1001, 'server shutting down');
      const t = Date.now() + 1000;
      while (this.sockets.size > 0 && Date.now() < t) await new Promise((r) => setTimeout(r, 10));
      for (const ws of this.sockets) ws.terminate();
      this.http.closeAllConnections();
      for (const { wss } of this.servers.values()) wss.close();
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
