/**
 * Per-client rate limit: a token bucket per client key (the remote address). Each request
 * takes one token; tokens refill continuously at `perMinute / 60` per second up to `burst`.
 * The original allowed 600 requests per minute per IP (split mode sends one request per
 * token), as a sliding window; a bucket gives the same long-run rate without keeping a list of
 * timestamps per client. Idle full buckets are dropped so the map cannot grow without bound.
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

  /** Takes one token for `client`; false when the client is over its limit. */
  take(client: string): boolean {
    const t = this.now();
    let b = this.buckets.get(client);
    if (!b) {
      b = { tokens: this.burst, last: t };
      this.buckets.set(client, b);
      if (this.buckets.size > 10_000) this.sweep(t);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.last) / 60_000) * this.perMinute);
    b.last = t;
    if (b.tokens < 1) {
      this.rejected++;
      return false;
    }
    b.tokens -= 1;
    return true;
  }

  /** Seconds until `client` may make one more request (0 when it may now). */
  retryAfterS(client: string): number {
    const b = this.buckets.get(client);
    if (!b || b.tokens >= 1) return 0;
    return Math.ceil(((1 - b.tokens) * 60) / this.perMinute);
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
