/**
 * Split-mode sessions: each holds server state for one client sequence (its KV cache).
 * Bounded two ways, as the original's KV store was (32 sessions, 300 s TTL): an idle timeout
 * after which a session is disposed, and a cap beyond which the least recently used idle
 * session is evicted. Disposing a session frees its KV cache (native memory, GPU memory on
 * CUDA). A session in use (a forward running or waiting) is never evicted; when every session
 * is busy and the cap is reached, a new one is refused with 503.
 *
 * One call at a time per session: `use` runs its callback only when no other call of the same
 * session runs (FIFO turns), so a session's state (its reset, its length, its KV cache) never
 * sees two requests at once, and nothing waits for the engine on the main thread. At most
 * `maxWaiting` calls wait for their turn; one more is refused (409 `session_busy`); a waiting
 * call whose client goes away (abort signal) leaves the line.
 */
import { RequestError } from './errors';

export interface Disposable {
  dispose(): void | Promise<void>;
}

interface Entry<T> {
  value: T;
  lastUsed: number;
  /** Calls running or waiting for their turn (an entry with busy > 0 is never evicted). */
  busy: number;
  /** A call is running; the others wait in `turns`. */
  running: boolean;
  turns: Array<() => void>;
  owner?: string;
  /** Deleted while busy: disposed as soon as the last call returns. */
  doomed?: boolean;
}

export interface UseOptions {
  /** Leaves the line (rejects with 499 `cancelled`) when aborted while waiting. */
  signal?: AbortSignal;
  /** Calls that may wait behind the running one (default: the store's `maxWaiting`). */
  maxWaiting?: number;
}

export interface SessionStoreOptions {
  /** Most sessions alive at once (default 32). */
  max?: number;
  /** Idle time after which a session is disposed, ms (default 300 000). */
  idleMs?: number;
  /** How often idle sessions are swept, ms (default min(idleMs / 4, 10 000)). */
  sweepMs?: number;
  /** Calls that may wait for their turn on one session (default 4). */
  maxWaiting?: number;
  now?: () => number;
}

export class SessionStore<T extends Disposable> {
  readonly max: number;
  readonly idleMs: number;
  readonly maxWaiting: number;
  private readonly now: () => number;
  private readonly entries = new Map<string, Entry<T>>();
  private timer?: NodeJS.Timeout;
  private created = 0;
  private evicted = 0;
  private expired = 0;
  /** Keys lately freed by the cap or the idle timeout (bounded), so a client that continues
   * such a session incrementally is told instead of silently starting over. */
  private readonly gone = new Set<string>();

  constructor(options: SessionStoreOptions = {}) {
    this.max = options.max ?? 32;
    this.idleMs = options.idleMs ?? 300_000;
    if (!Number.isInteger(this.max) || this.max < 1) throw new RangeError(`sessions.max must be an integer >= 1, got ${this.max}`);
    if (!(this.idleMs > 0)) throw new RangeError(`sessions.idleMs must be > 0, got ${this.idleMs}`);
    this.maxWaiting = options.maxWaiting ?? 4;
    if (!Number.isInteger(this.maxWaiting) || this.maxWaiting < 0) throw new RangeError(`sessions.maxWaiting must be an integer >= 0, got ${this.maxWaiting}`);
    this.now = options.now ?? (() => Date.now());
    const sweepMs = options.sweepMs ?? Math.min(this.idleMs / 4, 10_000);
    this.timer = setInterval(() => this.sweep(), sweepMs);
    this.timer.unref(); // the sweep never keeps the process alive
  }

  get size(): number {
    return this.entries.size;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** True when `key` was freed by the cap or the idle timeout (and not used since). */
  wasReclaimed(key: string): boolean {
    return this.gone.has(key);
  }

  private markGone(key: string): void {
    this.gone.add(key);
    if (this.gone.size > 4096) this.gone.delete(this.gone.values().next().value as string);
  }

  /**
   * Borrows the session `key`, creating it with `create` when absent; the callback runs alone
   * (no other call of this session runs meanwhile: later calls wait their turn, FIFO), with the
   * session marked busy (not evictable) and its idle clock restarted.
   */
  async use<R>(key: string, create: () => T, fn: (value: T, created: boolean) => Promise<R>, owner?: string, options: UseOptions = {}): Promise<R> {
    let e = this.entries.get(key);
    let created = false;
    if (!e) {
      if (this.entries.size >= this.max) this.evictOne();
      e = { value: create(), lastUsed: this.now(), busy: 0, running: false, turns: [], owner };
      this.entries.set(key, e);
      this.gone.delete(key);
      this.created++;
      created = true;
    }
    // Map order is LRU order: move to the end.
    this.entries.delete(key);
    this.entries.set(key, e);
    e.lastUsed = this.now();
    if (e.running) {
      const maxWaiting = options.maxWaiting ?? this.maxWaiting;
      if (e.turns.length >= maxWaiting) {
        throw new RequestError(`this session is busy: a request is running on it and ${e.turns.length} wait their turn; send one request at a time per session`, {
          status: 409,
          field: 'session_id',
          code: 'session_busy',
        });
      }
      e.busy++;
      try {
        await this.waitTurn(e, options.signal);
      } catch (err) {
        e.busy--;
        this.settle(key, e);
        throw err;
      }
    } else {
      e.busy++;
      e.running = true;
    }
    try {
      if (this.entries.get(key) !== e || e.doomed) {
        throw new RequestError('split session was closed while this request waited', { status: 410, field: 'session_id', code: 'session_closed' });
      }
      return await fn(e.value, created);
    } finally {
      e.busy--;
      e.lastUsed = this.now();
      const next = e.turns.shift();
      if (next) next(); // the turn passes straight to the next waiter
      else e.running = false;
      this.settle(key, e);
    }
  }

  /** Resolves when it is this call's turn on `e` (the previous call handed it over). */
  private waitTurn(e: Entry<T>, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new RequestError('request cancelled', { status: 499, code: 'cancelled' }));
    return new Promise<void>((resolve, reject) => {
      const turn = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = e.turns.indexOf(turn);
        if (i >= 0) e.turns.splice(i, 1);
        reject(new RequestError('request cancelled while waiting for its session', { status: 499, code: 'cancelled' }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      e.turns.push(turn);
    });
  }

  /** A doomed entry goes once its last call has returned. */
  private settle(key: string, e: Entry<T>): void {
    if (e.doomed && e.busy === 0 && this.entries.get(key) === e) this.remove(key);
  }

  /** Whether a call is running on `key` now. */
  isBusy(key: string): boolean {
    return this.entries.get(key)?.running ?? false;
  }

  private evictOne(): void {
    for (const [k, e] of this.entries) {
      if (e.busy === 0) {
        this.remove(k);
        this.markGone(k);
        this.evicted++;
        return;
      }
    }
    throw new RequestError(`too many split sessions in use (${this.max}); try again later`, { status: 503, code: 'sessions_full' });
  }

  private remove(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    void Promise.resolve()
      .then(() => e.value.dispose())
      .catch(() => undefined);
  }

  /** Disposes `key` now (no-op when absent or busy: a busy one goes when it is released). */
  delete(key: string): void {
    const e = this.entries.get(key);
    if (e && e.busy === 0) this.remove(key);
    else if (e) e.doomed = true;
  }

  /** Disposes every idle session of `owner` (a WebSocket connection that closed). */
  deleteOwned(owner: string): void {
    for (const [k, e] of [...this.entries]) if (e.owner === owner) this.delete(k);
  }

  /** Disposes idle sessions older than idleMs. */
  sweep(): void {
    const t = this.now();
    for (const [k, e] of [...this.entries]) {
      if (e.busy === 0 && t - e.lastUsed >= this.idleMs) {
        this.remove(k);
        this.markGone(k);
        this.expired++;
      }
    }
  }

  /** Disposes everything (shutdown) and stops the sweep timer. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((e) => Promise.resolve().then(() => e.value.dispose()).catch(() => undefined)));
  }

  stats(): { sessions: number; max: number; idleMs: number; created: number; evicted: number; expired: number } {
    return { sessions: this.entries.size, max: this.max, idleMs: this.idleMs, created: this.created, evicted: this.evicted, expired: this.expired };
  }
}
