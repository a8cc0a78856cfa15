/**
 * Server metrics: request counts and latencies per route, generated tokens, recent per-stage
 * times (the stage names of src/pipeline/types.ts, `network` included). Served as JSON at
 * `GET /api/v1/metrics`, and as Prometheus text exposition (version 0.0.4) with
 * `?format=prometheus` or `Accept: text/plain`.
 */
import { STAGES, StageName, StageTimes } from '../pipeline/types';

const WINDOW = 200; // the original kept the last 200 latencies

class Ring {
  private readonly buf: number[] = [];
  private i = 0;
  push(v: number): void {
    if (this.buf.length < WINDOW) this.buf.push(v);
    else {
      this.buf[this.i] = v;
      this.i = (this.i + 1) % WINDOW;
    }
  }
  values(): number[] {
    return [...this.buf];
  }
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function round(v: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export interface RouteStats {
  requests: number;
  /** Requests answered with an error (the client's or ours); client aborts are not errors. */
  errors: number;
  /** Requests the client abandoned (closed the connection) before the answer. */
  aborted: number;
  p50_ms: number;
  p95_ms: number;
}

export class ServerMetrics {
  readonly startedAt = Date.now();
  private readonly routes = new Map<string, { requests: number; errors: number; aborted: number; lat: Ring }>();
  private readonly stages = new Map<StageName, Ring>();
  tokensGenerated = 0;
  generations = 0;
  wsConnections = 0;
  wsConnectionsTotal = 0;

  /** Records one finished request on `route` with its latency and outcome (true = answered). */
  request(route: string, ms: number, outcome: boolean | 'aborted'): void {
    let r = this.routes.get(route);
    if (!r) {
      r = { requests: 0, errors: 0, aborted: 0, lat: new Ring() };
      this.routes.set(route, r);
    }
    r.requests++;
    if (outcome === 'aborted') r.aborted++;
    else if (!outcome) r.errors++;
    r.lat.push(ms);
  }

  /** Records one generated token's stage times. */
  token(stages: StageTimes): void {
    this.tokensGenerated++;
    for (const [k, v] of Object.entries(stages) as Array<[StageName, number | undefined]>) {
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      let ring = this.stages.get(k);
      if (!ring) {
        ring = new Ring();
        this.stages.set(k, ring);
      }
      ring.push(v);
    }
  }

  routeStats(): Record<string, RouteStats> {
    const out: Record<string, RouteStats> = {};
    for (const [k, r] of this.routes) {
      const s = r.lat.values().sort((a, b) => a - b);
      out[k] = { requests: r.requests, errors: r.errors, aborted: r.aborted, p50_ms: round(quantile(s, 0.5), 2), p95_ms: round(quantile(s, 0.95), 2) };
    }
    return out;
  }

  /** Median ms per stage over the recent tokens (stages never seen are left out). */
  stageMedians(): StageTimes {
    const out: StageTimes = {};
    for (const name of STAGES) {
      const ring = this.stages.get(name);
      if (!ring) continue;
      const s = ring.values().sort((a, b) => a - b);
      out[name] = round(s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2, 4);
    }
    return out;
  }

  /** The original's `request_stats` block: totals and p50/p95 over every route. */
  requestStats(): { total_requests: number; error_count: number; p50_ms: number; p95_ms: number } {
    let total = 0;
    let errors = 0;
    const all: number[] = [];
    for (const r of this.routes.values()) {
      total += r.requests;
      errors += r.errors;
      all.push(...r.lat.values());
    }
    all.sort((a, b) => a - b);
    return { total_requests: total, error_count: errors, p50_ms: round(quantile(all, 0.5), 1), p95_ms: round(quantile(all, 0.95), 1) };
  }
}

type Sample = { name: string; help: string; type: 'counter' | 'gauge'; values: Array<{ labels?: Record<string, string>; value: number }> };

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** Prometheus text exposition format 0.0.4. */
export function toPrometheus(samples: Sample[]): string {
  const lines: string[] = [];
  for (const s of samples) {
    lines.push(`# HELP ${s.name} ${s.help}`, `# TYPE ${s.name} ${s.type}`);
    for (const v of s.values) {
      const labels = v.labels && Object.keys(v.labels).length
        ? `{${Object.entries(v.labels).map(([k, x]) => `${k}="${escapeLabel(x)}"`).join(',')}}`
        : '';
      lines.push(`${s.name}${labels} ${Number.isFinite(v.value) ? v.value : 0}`);
    }
  }
  return lines.join('\n') + '\n';
}

export type { Sample as PrometheusSample };
