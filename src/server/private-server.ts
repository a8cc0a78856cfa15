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
import { PrivateEngine, type PrivateEngineOptions } from './private-engine';
import { handlePrivateSocket, type PrivateSocketOptions } from './private-stream';

export const PRIVATE_PATH = '/api/v1/private/stream';

export interface PrivateServerOptions extends Omit<PrivateEngineOptions, 'experts'> {
  experts: ExpertSet;
  host?: string;
  port?: number;
  socket?: PrivateSocketOptions;
}

/** WebSocket server (noServer) of the private endpoint with limits sized for its frames. */
export function privateWebSocketServer(engine: PrivateEngine): WebSocketServer {
  // An open frame carries the public key and Galois keys; round frames a few ciphertexts.
  return new WebSocketServer({ noServer: true, maxPayload: engine.limits.maxKeyBytes * 2 + (1 << 20), perMessageDeflate: false });
}

export class PrivateServer {
  readonly engine: PrivateEngine;
  readonly http: http.Server;
  private readonly wss: WebSocketServer;

  constructor(private readonly options: PrivateServerOptions) {
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
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (path !== PRIVATE_PATH) {
        socket.write('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        socket.destroy();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', () => ws.terminate());
        handlePrivateSocket(this.engine, ws, options.socket);
      });
    });
  }

  listen(): Promise<{ url: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
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
