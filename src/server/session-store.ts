/**
 * Split-mode sessions: each holds server state for one client sequence (its KV cache).
 * Bounded two ways, as the original's KV store was (32 sessions, 300 s TTL): an idle timeout
 * after which a session is disposed, and a cap beyond which the least recently used idle
 * session is evicted. Disposing a session frees its KV cache (native memory, GPU memory on
 * CUDA). A session in use (a forward running) is never evicted; when every session is busy
 * and the cap is reached, a new one is refused with 503.
 */
import { RequestError } from './errors';

export interface Disposable {
  dispose(): void | Promise<void>;
}

interface Entry<T> {
  value: T;
  lastUsed: number;
  busy: number;
  owner?: string;
  /** Deleted while busy: disposed as soon as the running call returns. */
  doomed?: boolean;
}

export interface SessionStoreOptions {
  /** Most sessions alive at once (default 32). */
  max?: number;
  /** Idle time after which a session is disposed, ms (default 300 000). */
  idleMs?: number;
  /** How often idle sessions are swept, ms (default min(idleMs / 4, 10 000)). */
  sweepMs?: number;
  now?: () => number;
}

export class SessionStore<T extends Disposable> {
  readonly max: number;
  readonly idleMs: number;
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
   * Borrows the session `key`, creating it with `create` when absent; the callback runs with
   * the session marked busy (not evictable) and its idle clock restarted.
   */
  async use<R>(key: string, create: () => T, fn: (value: T, created: boolean) => Promise<R>, owner?: string): Promise<R> {
    let e = this.entries.get(key);
    let created = false;
    if (!e) {
      if (this.entries.size >= this.max) this.evictOne();
      e = { value: create(), lastUsed: this.now(), busy: 0, owner };
      this.entries.set(key, e);
      this.gone.delete(key);
      this.created++;
      created = true;
    }
    // Map order is LRU order: move to the end.
    this.entries.delete(key);
    this.entries.set(key, e);
    e.busy++;
    e.lastUsed = this.now();
    try {
      return await fn(e.value, created);
    } finally {
      e.busy--;
      e.lastUsed = this.now();
      if (e.doomed && e.busy === 0 && this.entries.get(key) === e) this.remove(key);
    }
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
