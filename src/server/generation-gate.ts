/**
 * A bound on concurrent generations with a FIFO queue (the original: an asyncio semaphore
 * of 2). Work beyond the bound waits its turn; a waiter whose client goes away (abort signal)
 * leaves the queue; a full queue refuses at once (503) instead of growing without limit; on
 * shutdown every waiter is refused. A waiter may ask to hear its place in the line
 * (`onPlace(position)`, 1 = next): once when it joins, and again each time it moves up, so a
 * client can be told it is queued instead of staring at a silent socket.
 */
import { RequestError } from './errors';

interface Waiter {
  resolve: (release: () => void) => void;
  reject: (err: Error) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
  onPlace?: (position: number) => void;
}

export class GenerationGate {
  readonly limit: number;
  readonly maxQueue: number;
  private running = 0;
  private readonly queue: Waiter[] = [];
  private closed = false;
  private granted = 0;
  private refused = 0;
  private peakQueue = 0;

  constructor(limit = 2, maxQueue = 256) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`maxConcurrent must be an integer >= 1, got ${limit}`);
    if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new RangeError(`maxQueue must be an integer >= 0, got ${maxQueue}`);
    this.limit = limit;
    this.maxQueue = maxQueue;
  }

  /**
   * Waits for a slot; resolves with its release function (call it exactly once). `onPlace`
   * hears the waiter's position in the queue when it has to wait, and each time it moves up.
   */
  acquire(signal?: AbortSignal, onPlace?: (position: number) => void): Promise<() => void> {
    if (this.closed) return Promise.reject(new RequestError('server is shutting down', { status: 503, code: 'shutting_down' }));
    if (signal?.aborted) return Promise.reject(new RequestError('request cancelled', { status: 499 as number, code: 'cancelled' }));
    if (this.running < this.limit) {
      this.running++;
      this.granted++;
      return Promise.resolve(this.releaser());
    }
    if (this.queue.length >= this.maxQueue) {
      this.refused++;
      return Promise.reject(
        new RequestError(`server busy: ${this.running} generations running and ${this.queue.length} queued`, { status: 503, code: 'busy' }),
      );
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = { resolve, reject, signal, onPlace };
      if (signal) {
        w.onAbort = () => {
          const i = this.queue.indexOf(w);
          if (i >= 0) {
            this.queue.splice(i, 1);
            this.tellPlaces(i);
          }
          reject(new RequestError('request cancelled while queued', { status: 499, code: 'cancelled' }));
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.queue.push(w);
      this.peakQueue = Math.max(this.peakQueue, this.queue.length);
      this.tell(w, this.queue.length);
    });
  }

  private tell(w: Waiter, position: number): void {
    try {
      w.onPlace?.(position);
    } catch {
      // a listener's failure (a closed socket) must not break the queue
    }
  }

  /** Tells the waiters from index `from` on their new places. */
  private tellPlaces(from: number): void {
    for (let i = from; i < this.queue.length; i++) this.tell(this.queue[i], i + 1);
  }

  /** Runs `fn` inside a slot. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.queue.shift();
      if (next) {
        if (next.signal && next.onAbort) next.signal.removeEventListener('abort', next.onAbort);
        this.granted++;
        next.resolve(this.releaser()); // the slot passes straight to the next waiter
        this.tellPlaces(0);
      } else {
        this.running--;
      }
    };
  }

  /** Refuses every waiter and every later acquire (running work finishes on its own). */
  close(): void {
    this.closed = true;
    for (const w of this.queue.splice(0)) {
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      w.reject(new RequestError('server is shutting down', { status: 503, code: 'shutting_down' }));
    }
  }

  stats(): { running: number; queued: number; limit: number; granted: number; refused: number; peakQueue: number } {
    return { running: this.running, queued: this.queue.length, limit: this.limit, granted: this.granted, refused: this.refused, peakQueue: this.peakQueue };
  }
}
