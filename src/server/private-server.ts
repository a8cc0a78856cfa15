/**
 * A server of the private endpoint alone (no base model: the clients run it): what
 * `tensafe serve-private` starts, what the private benchmark runs in its server process, and what
 * `server: 'local'` starts in-process for notebooks and tests (still a real WebSocket on loopback).
 * The full server (TensafeServer) mounts the same endpoint next to the original's.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type { ExpertSet } from '../pipeline/experts';
import { accessPolicy, checkAccess, isLoopbackHost, refuseUpgrade, selectProtocol, type AccessPolicy } from './guards';
import { RequestError } from './errors';
import { PrivateEngine, type PrivateEngineOptions } from './private-engine';
import { handlePrivateSocket, type PrivateSocketOptions } from './private-stream';
import type { WsEndpoint } from './server';

export const PRIVATE_PATH = '/api/v1/private/stream';

export interface PrivateServerOptions extends Omit<PrivateEngineOptions, 'experts'> {
  experts: ExpertSet;
  host?: string;
  port?: number;
  socket?: PrivateSocketOptions;
  /** Bearer token (required for a non-loopback host), extra Host names and Origins: guards.ts. */
  token?: string;
  allowedHosts?: string[];
  allowedOrigins?: string[];
}

/** The largest private frame: an `open` with the public key and Galois keys (round frames are far smaller). */
export function privateMaxFrame(engine: PrivateEngine): number {
  return engine.limits.maxKeyBytes * 2 + (1 << 20);
}

/** The private endpoint as an entry of TensafeServer's WebSocket endpoints (same guards as the others). */
export function privateEndpoint(engine: PrivateEngine, socket: PrivateSocketOptions = {}): WsEndpoint {
  return { path: PRIVATE_PATH, maxPayload: () => privateMaxFrame(engine), handle: (_ctx, ws) => handlePrivateSocket(engine, ws, socket) };
}

/** WebSocket server (noServer) of the private endpoint with limits sized for its frames. */
export function privateWebSocketServer(engine: PrivateEngine): WebSocketServer {
  return new WebSocketServer({ noServer: true, maxPayload: privateMaxFrame(engine), perMessageDeflate: false, handleProtocols: selectProtocol });
}

export class PrivateServer {
  readonly engine: PrivateEngine;
  readonly http: http.Server;
  private readonly wss: WebSocketServer;
  private readonly access: AccessPolicy;

  constructor(private readonly options: PrivateServerOptions) {
    this.access = accessPolicy({ token: options.token, allowedHosts: options.allowedHosts, allowedOrigins: options.allowedOrigins });
    this.engine = new PrivateEngine(options);
    this.wss = privateWebSocketServer(this.engine);
    this.http = http.createServer((req, res) => {
      if (req.url === '/health') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: 'ok', private: this.engine.stats() }));
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `not found; the private endpoint is WS ${PRIVATE_PATH}` }));
    });
    this.http.on('upgrade', (req, socket, head) => {
      socket.on('error', () => socket.destroy());
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      try {
        // Host (DNS rebinding), Origin (web pages) and the bearer token, as on every endpoint.
        checkAccess(req, this.access);
        if (path !== PRIVATE_PATH) throw new RequestError(`no WebSocket endpoint at ${path}; the private endpoint is ${PRIVATE_PATH}`, { status: 404, code: 'not_found' });
      } catch (err) {
        refuseUpgrade(socket, err);
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', () => ws.terminate());
        handlePrivateSocket(this.engine, ws, options.socket);
      });
    });
  }

  listen(): Promise<{ url: string; port: number }> {
    const host = this.options.host ?? '127.0.0.1';
    if (!isLoopbackHost(host) && this.access.token === undefined) {
      return Promise.reject(Object.assign(new Error(`refusing to listen on ${host} (not a loopback address) without a token (see PROTOCOL.md, "Who may connect")`), { code: 'ERR_TENSAFE_NO_TOKEN' }));
    }
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.options.port ?? 0, host, () => {
        const a = this.http.address() as AddressInfo;
        resolve({ url: `http://127.0.0.1:${a.port}`, port: a.port });
      });
    });
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    this.engine.dispose();
    await new Promise<void>((r) => this.http.close(() => r()));
  }
}

export async function startPrivateServer(options: PrivateServerOptions): Promise<{ server: PrivateServer; url: string; port: number }> {
  const server = new PrivateServer(options);
  const { url, port } = await server.listen();
  return { server, url, port };
}
