/**
 * Per-client rate limit: a token bucket per client key (the remote address). Each request
 * takes one token; tokens refill continuously at `perMinute / 60` per second up to `burst`.
 * The original allowed 600 requests per minute per IP (split mode sends one request per
 * token), as a sliding window; a bucket gives the same long-run rate without keeping a list of
 * timestamps per client. Idle full buckets are dropped so the map cannot grow without bound.
 *
 * Work that costs more than one request takes several tokens (`take(client, n)`), and work
 * whose cost is only known afterwards (a replay) is charged after the fact (`charge`): the
 * bucket may then go into debt, down to -burst, and the client waits for the refill.
 */
export interface RateLimitOptions {
  /** Sustained requests per minute per client (default 600, the original's). */
  perMinute?: number;
  /** Bucket size: requests a client may make at once (default perMinute / 6, at least 1). */
  burst?: number;
  /** Clock in ms (tests pass a fake). */
  now?: () => number;
}

interface Bucket {
  tokens: number;
  last: number;
}

export class RateLimiter {
  readonly perMinute: number;
  readonly burst: number;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();
  private rejected = 0;

  constructor(options: RateLimitOptions = {}) {
    this.perMinute = options.perMinute ?? 600;
    if (!(this.perMinute > 0)) throw new RangeError(`rate limit perMinute must be > 0, got ${this.perMinute}`);
    this.burst = options.burst ?? Math.max(1, Math.floor(this.perMinute / 6));
    if (!(this.burst >= 1)) throw new RangeError(`rate limit burst must be >= 1, got ${this.burst}`);
    this.now = options.now ?? (() => performance.now());
  }

  /** The client's bucket, refilled up to now. */
  private bucket(client: string): Bucket {
    const t = this.now();
    let b = this.buckets.get(client);
    if (!b) {
      b = { tokens: this.burst, last: t };
      this.buckets.set(client, b);
      if (this.buckets.size > 10_000) this.sweep(t);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.last) / 60_000) * this.perMinute);
    b.last = t;
    return b;
  }

  /** Takes `n` tokens (default 1) for `client`; false (nothing taken) when it has fewer. */
  take(client: string, n = 1): boolean {
    const b = this.bucket(client);
    if (b.tokens < n) {
      this.rejected++;
      return false;
    }
    b.tokens -= n;
    return true;
  }

  /** Charges `n` tokens for work already done; the bucket may go into debt, down to -burst. */
  charge(client: string, n: number): void {
    if (!(n > 0)) return;
    const b = this.bucket(client);
    b.tokens = Math.max(-this.burst, b.tokens - n);
  }

  /** Tokens the client has now (may be below 1, or negative after a charge). */
  available(client: string): number {
    return this.bucket(client).tokens;
  }

  /** Seconds until `client` may make a request costing `n` (0 when it may now). */
  retryAfterS(client: string, n = 1): number {
    const b = this.buckets.get(client);
    if (!b || b.tokens >= n) return 0;
    return Math.ceil(((n - b.tokens) * 60) / this.perMinute);
  }

  /** Drops buckets that have refilled completely (their clients are idle). */
  sweep(t = this.now()): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((t - b.last) / 60_000) * this.perMinute >= this.burst) this.buckets.delete(k);
    }
  }

  stats(): { clients: number; rejected: number; perMinute: number; burst: number } {
    return { clients: this.buckets.size, rejected: this.rejected, perMinute: this.perMinute, burst: this.burst };
  }
}
