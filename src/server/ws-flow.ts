/**
 * Flow control of a WebSocket endpoint, both directions, for every endpoint (chat, split, and
 * the private mode's):
 *  - incoming: messages are handled one at a time in arrival order (a split forward depends on
 *    the previous one); when `maxPending` messages wait, the socket stops being read
 *    (`ws.pause()`), so a client that floods pays with TCP back-pressure, not with our memory;
 *  - outgoing: a stream waits while the socket holds more than `maxBufferedBytes` unsent; a
 *    client that stays that far behind for `slowClientMs` is dropped (close 1008 "not reading"),
 *    which aborts its work and frees its generation slot;
 *  - text frames are checked for UTF-8 here (the ws library would close with 1007): invalid
 *    text gets an error frame `invalid_utf8` and the connection stays open;
 *  - errors go out as `{"type":"error", message, code, field?}` frames.
 */
import { isUtf8 } from 'node:buffer';
import type { WebSocket } from 'ws';
import { errorBody, RequestError } from './errors';

export interface FlowOptions {
  /** Bytes a socket may hold unsent before a stream waits for it (default 1 MiB). */
  maxBufferedBytes: number;
  /** How long a stream waits for a client that does not read before dropping it, ms (default 10 s). */
  slowClientMs: number;
  /** Messages of one connection waiting to be handled before the socket is paused (default 4). */
  maxPending: number;
}

export const DEFAULT_FLOW: FlowOptions = { maxBufferedBytes: 1 << 20, slowClientMs: 10_000, maxPending: 4 };

/** Raw message data as one Buffer (ws hands Buffer, Buffer[] or ArrayBuffer). */
export function messageBuffer(data: unknown): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data as Buffer[]);
  return Buffer.from(data as ArrayBuffer);
}

/** A text frame as a string; invalid UTF-8 is a RequestError (an error frame, not a 1007 close). */
export function frameText(data: Buffer): string {
  if (!isUtf8(data)) throw new RequestError('text frames must be valid UTF-8', { field: 'frame', code: 'invalid_utf8' });
  return data.toString('utf8');
}

/** Sends an error frame (nothing when the socket is gone). */
export function sendErrorFrame(ws: WebSocket, err: unknown): void {
  if (ws.readyState !== ws.OPEN) return;
  const body = errorBody(err);
  ws.send(JSON.stringify({ type: 'error', message: body.error, ...body }));
}

/**
 * Handles a connection's messages one at a time, pausing the socket while `maxPending` wait.
 * `handle` must not throw (answer errors with frames).
 */
export function serialMessages(ws: WebSocket, maxPending: number, handle: (data: Buffer, isBinary: boolean) => Promise<void>): void {
  const queue: Array<{ data: Buffer; isBinary: boolean }> = [];
  let busy = false;
  const pump = async () => {
    busy = true;
    while (queue.length > 0) {
      const m = queue.shift()!;
      if (ws.isPaused && queue.length < maxPending && ws.readyState === ws.OPEN) ws.resume();
      try {
        await handle(m.data, m.isBinary);
      } catch {
        // handle answers its own errors; nothing may stop the pump
      }
    }
    busy = false;
  };
  ws.on('message', (data, isBinary) => {
    queue.push({ data: messageBuffer(data), isBinary });
    if (queue.length >= maxPending && !ws.isPaused) ws.pause();
    if (!busy) void pump();
  });
  ws.on('close', () => {
    queue.length = 0;
  });
}

/**
 * Waits while `ws` holds more than `limit` unsent bytes. A client still that far behind after
 * `slowClientMs` is dropped (close 1008, then terminate) and the call throws, so the caller's
 * work stops and its slot is released.
 */
export async function drainOrDrop(ws: WebSocket, flow: Pick<FlowOptions, 'maxBufferedBytes' | 'slowClientMs'>, signal?: AbortSignal): Promise<void> {
  if (ws.bufferedAmount <= flow.maxBufferedBytes) return;
  const deadline = performance.now() + flow.slowClientMs;
  while (ws.readyState === ws.OPEN && ws.bufferedAmount > flow.maxBufferedBytes && !signal?.aborted) {
    if (performance.now() > deadline) {
      ws.close(1008, 'client not reading');
      ws.terminate(); // the close frame cannot pass a full buffer
      throw new RequestError(`client did not read for ${flow.slowClientMs} ms; dropped`, { status: 408, code: 'slow_client' });
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}
