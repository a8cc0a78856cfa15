/**
 * Request bodies under limits applied before the bytes are kept:
 *  - a declared Content-Length above the limit is refused (413) without reading it;
 *  - a chunked body is counted as it streams: past the limit nothing more is kept, the client
 *    gets its 413, and the rest is read and dropped up to `discardBytes` (so the client reads the
 *    answer instead of a reset), then the connection is cut;
 *  - a client that aborts its upload is a 499 (`client_closed`): neither logged nor counted as
 *    a server error;
 *  - large uploads reserve their size in a ByteBudget first: when the server already holds
 *    `limit` bytes of bodies in flight, a new large one is refused (503 `busy`) before a byte of it
 *    is read (16 concurrent 16 MiB split forwards cannot grow the heap by a quarter of a GB).
 */
import type { IncomingMessage } from 'node:http';
import { RequestError } from './errors';

/** Bytes of request bodies held at once, over all requests. */
export class ByteBudget {
  private used = 0;
  private refused = 0;
  constructor(readonly limit: number) {
    if (!(limit > 0)) throw new RangeError(`byte budget must be > 0, got ${limit}`);
  }

  /** Reserves `n` bytes; returns the release function, or undefined when they do not fit. */
  tryReserve(n: number): (() => void) | undefined {
    if (this.used + n > this.limit && this.used > 0) {
      this.refused++;
      return undefined;
    }
    this.used += n;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.used -= n;
    };
  }

  stats(): { used: number; limit: number; refused: number } {
    return { used: this.used, limit: this.limit, refused: this.refused };
  }
}

/** Content-Length of a request, or undefined for a chunked (or absent) one. */
export function declaredLength(req: IncomingMessage): number | undefined {
  const v = req.headers['content-length'];
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * Reserves room in `budget` for a body of up to `limit` bytes (its declared length when it has
 * one). Bodies below `smallBytes` need no reservation (they are cheap to hold).
 */
export function reserveBody(req: IncomingMessage, budget: ByteBudget, limit: number, smallBytes = 64 * 1024): () => void {
  const n = Math.min(declaredLength(req) ?? limit, limit);
  if (n <= smallBytes) return () => undefined;
  const release = budget.tryReserve(n);
  if (!release) {
    throw new RequestError(`server busy: ${budget.stats().used} bytes of uploads in progress; retry shortly`, { status: 503, code: 'busy' });
  }
  return release;
}

function tooLarge(limit: number, size?: number): RequestError {
  return new RequestError(size !== undefined ? `request body of ${size} bytes exceeds the limit of ${limit}` : `request body exceeds the limit of ${limit} bytes`, {
    status: 413,
    code: 'too_large',
  });
}

export function clientClosed(): RequestError {
  return new RequestError('the client closed the request', { status: 499, code: 'client_closed' });
}

/**
 * Drops the rest of a refused body: reads up to `discardBytes` more or for `lingerMs` (the
 * client, still sending, then reads the error answer instead of a reset), then cuts the
 * connection. Nothing read here is kept.
 */
function discardRest(req: IncomingMessage, discardBytes: number, lingerMs = 5000): void {
  let dropped = 0;
  let ended = false;
  const socket = req.socket;
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  req.removeAllListeners('data');
  req.on('data', (c: Buffer) => {
    dropped += c.length;
    // Too much to drain: close our side after the answer (the client reads it, then stops
    // sending), keep dropping what is in flight until it does or the linger time is up.
    if (dropped > discardBytes && !ended) {
      ended = true;
      socket.end();
    }
  });
  req.on('end', () => clearTimeout(timer));
  socket.once('close', () => clearTimeout(timer));
  req.on('error', () => undefined);
  req.resume();
}

/** Reads the body up to `limit` bytes (see the file comment for what happens beyond). */
export function readBody(req: IncomingMessage, limit: number, discardBytes = Math.max(2 * limit, 8 << 20)): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = declaredLength(req);
    if (declared !== undefined && declared > limit) {
      reject(tooLarge(limit, declared));
      discardRest(req, discardBytes);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      reject(err);
    };
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        chunks.length = 0;
        fail(tooLarge(limit));
        discardRest(req, discardBytes);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks, size));
    });
    // An aborted upload ('aborted' / ECONNRESET), or a socket closed before the end.
    req.on('error', () => fail(clientClosed()));
    req.on('close', () => fail(clientClosed()));
  });
}
