/**
 * The HTTP endpoints (the WebSocket ones are in chat-stream.ts and split-stream.ts):
 *   GET  /health                  status, engine ready, sessions, generations running/queued
 *   GET  /api/v1/metrics          JSON; Prometheus text with ?format=prometheus or Accept: text/plain
 *   POST /api/v1/chat/compare     base vs HE-adapted answers with tok/s and stage breakdowns
 *   POST /api/v1/split/forward    one split forward (JSON + base64, or a binary TSH1 frame)
 *   POST /api/v1/split/tokenize   the original's tokenizer fallback
 *   GET  /api/v1/split/config     what a split client needs
 *   GET  /api/v1/split/selftest   64 tokens through the split path, tok/s and stage split
 *   GET  /, /app.js, /styles.css  the live page
 *
 * Before anything is read: Host, Origin and token (guards.ts; /health and the page need no
 * token), then per endpoint the cheap refusals (shutting down, rate bucket empty, upload budget
 * full), and only then the body, under a limit enforced while it streams (body.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { totalHeOperations } from '../pipeline/he-ops';
import type { GenerationSummary } from '../pipeline/types';
import { declaredLength, readBody, reserveBody } from './body';
import { pipelineOptions } from './chat-stream';
import { checkRate, clientKey, requireSplit, ServerContext, track } from './context';
import { errorBody, errorStatus, RequestError } from './errors';
import { checkAccess } from './guards';
import { encodeValues, packFrame } from './hidden-codec';
import { PrometheusSample, toPrometheus } from './metrics';
import { runSelftest } from './selftest';
import { jsonResult, parseBinaryForward, parseForward, resultFields, runForward } from './split-core';
import type { SplitHead } from './split-engine';
import { splitConfigBody } from './split-stream';
import type { StaticFile } from './static-files';
import { intField, LIMITS, parseCompareRequest, parseJsonObject, stringField } from './validate';

export interface HttpContext extends ServerContext {
  staticFiles: Map<string, StaticFile>;
  /** Largest request body accepted, bytes. */
  maxBodyBytes: number;
  /** The selftest's client-side heads (per backend), made on first use. */
  selftestHeads: Map<string, Promise<SplitHead>>;
  /** Extra facts for /health and /metrics (HE backend name, ...). */
  facts: () => Record<string, unknown>;
}

const SECURITY_HEADERS: Record<string, string> = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'strict-origin-when-cross-origin',
  'Content-Security-Policy': "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'",
};

function send(res: ServerResponse, status: number, body: string | Buffer, type: string, extra: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...SECURITY_HEADERS, ...extra });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, JSON.stringify(body), 'application/json');
}

/** Refuses at once (before the body is read) a client whose rate bucket is empty. */
function refuseIfEmpty(ctx: ServerContext, client: string): void {
  if (ctx.limiter.available(client) < 1) checkRate(ctx, client);
}

function health(ctx: HttpContext): Record<string, unknown> {
  const gate = ctx.gate.stats();
  let describe: ReturnType<ServerContext['service']['describe']> | undefined;
  try {
    describe = ctx.service.describe();
  } catch {
    describe = undefined;
  }
  return {
    status: ctx.closing ? 'shutting_down' : describe ? 'ok' : 'degraded',
    engine_ready: !!describe,
    gpu_healthy: true,
    backend: describe?.backend ?? null,
    model: describe?.model ?? null,
    adapters_loaded: ctx.service.experts().length,
    kv_cache_sessions: ctx.sessions.size,
    generations_running: gate.running,
    generations_queued: gate.queued,
    generation_slots: gate.limit,
    split_forwards_running: ctx.splitGate.stats().running,
    split_forwards_queued: ctx.splitGate.stats().queued,
    uptime_s: Math.round((Date.now() - ctx.metrics.startedAt) / 1000),
    ...ctx.facts(),
  };
}

function metricsJson(ctx: HttpContext): Record<string, unknown> {
  const d = ctx.service.describe();
  const mem = process.memoryUsage();
  return {
    engine_ready: true,
    model: d.model,
    backend: d.backend,
    he_active: true,
    poly_n: d.polyN,
    simd_slots: d.polyN / 2,
    adapters: ctx.service.experts(),
    gatelink: { client_layers: ctx.split?.config().clientLayers ?? 0, split_forward_endpoint: '/api/v1/split/forward', split_available: !!ctx.split },
    request_stats: ctx.metrics.requestStats(),
    routes: ctx.metrics.routeStats(),
    tokens_generated: ctx.metrics.tokensGenerated,
    generations_completed: ctx.metrics.generations,
    stage_medians_ms: ctx.metrics.stageMedians(),
    generation_gate: ctx.gate.stats(),
    split_gate: ctx.splitGate.stats(),
    uploads: ctx.uploads.stats(),
    sessions: ctx.sessions.stats(),
    rate_limit: ctx.limiter.stats(),
    websocket: { open: ctx.metrics.wsConnections, total: ctx.metrics.wsConnectionsTotal },
    process: { rss_bytes: mem.rss, heap_used_bytes: mem.heapUsed, external_bytes: mem.external, uptime_s: Math.round((Date.now() - ctx.metrics.startedAt) / 1000) },
    ...ctx.facts(),
  };
}

function metricsPrometheus(ctx: HttpContext): string {
  const routes = ctx.metrics.routeStats();
  const gate = ctx.gate.stats();
  const sess = ctx.sessions.stats();
  const mem = process.memoryUsage();
  const stages = ctx.metrics.stageMedians();
  const samples: PrometheusSample[] = [
    { name: 'tensafe_requests_total', help: 'Requests handled, by route.', type: 'counter', values: Object.entries(routes).map(([route, r]) => ({ labels: { route }, value: r.requests })) },
    { name: 'tensafe_request_errors_total', help: 'Requests answered with an error, by route.', type: 'counter', values: Object.entries(routes).map(([route, r]) => ({ labels: { route }, value: r.errors })) },
    { name: 'tensafe_requests_aborted_total', help: 'Requests the client abandoned before the answer, by route.', type: 'counter', values: Object.entries(routes).map(([route, r]) => ({ labels: { route }, value: r.aborted })) },
    { name: 'tensafe_request_latency_p50_ms', help: 'Median latency of the last 200 requests, by route.', type: 'gauge', values: Object.entries(routes).map(([route, r]) => ({ labels: { route }, value: r.p50_ms })) },
    { name: 'tensafe_tokens_generated_total', help: 'Tokens generated or forwarded.', type: 'counter', values: [{ value: ctx.metrics.tokensGenerated }] },
    { name: 'tensafe_stage_median_ms', help: 'Median per-token stage time over recent tokens.', type: 'gauge', values: Object.entries(stages).map(([stage, v]) => ({ labels: { stage }, value: v as number })) },
    { name: 'tensafe_generations_running', help: 'Generations holding a slot.', type: 'gauge', values: [{ value: gate.running }] },
    { name: 'tensafe_generations_queued', help: 'Generations waiting for a slot.', type: 'gauge', values: [{ value: gate.queued }] },
    { name: 'tensafe_split_sessions', help: 'Split sessions (KV caches) alive.', type: 'gauge', values: [{ value: sess.sessions }] },
    { name: 'tensafe_split_sessions_evicted_total', help: 'Sessions evicted by the cap.', type: 'counter', values: [{ value: sess.evicted }] },
    { name: 'tensafe_split_sessions_expired_total', help: 'Sessions freed by the idle timeout.', type: 'counter', values: [{ value: sess.expired }] },
    { name: 'tensafe_rate_limited_total', help: 'Requests refused by the rate limit.', type: 'counter', values: [{ value: ctx.limiter.stats().rejected }] },
    { name: 'tensafe_websocket_connections', help: 'Open WebSocket connections.', type: 'gauge', values: [{ value: ctx.metrics.wsConnections }] },
    { name: 'tensafe_process_resident_memory_bytes', help: 'Resident set size.', type: 'gauge', values: [{ value: mem.rss }] },
  ];
  return toPrometheus(samples);
}

async function compare(ctx: HttpContext, req: IncomingMessage, signal: AbortSignal): Promise<Record<string, unknown>> {
  refuseIfEmpty(ctx, clientKey(req));
  const body = parseJsonObject(await readBody(req, ctx.maxBodyBytes));
  const cmp = parseCompareRequest(body, ctx.service.experts());
  checkRate(ctx, clientKey(req));
  const release = await ctx.gate.acquire(signal);
  try {
    const runOne = async (mode: 'base' | 'he-lora') => {
      const t0 = performance.now();
      const gen = ctx.service.generate(cmp.query, pipelineOptions(cmp, mode), signal);
      let summary: GenerationSummary | undefined;
      const parts: string[] = [];
      let heOperations: number | null = null;
      let rotations = 0;
      for (;;) {
        const step = await gen.next();
        if (step.done) {
          summary = step.value;
          break;
        }
        parts.push(step.value.text);
        if (step.value.he) {
          heOperations = (heOperations ?? 0) + totalHeOperations(step.value.he);
          rotations += step.value.he.rotations;
        }
        ctx.metrics.token(step.value.stages);
      }
      if (signal.aborted) throw new RequestError('request cancelled', { status: 499, code: 'cancelled' });
      ctx.metrics.generations++;
      return { summary, text: parts.join(''), ms: performance.now() - t0, heOperations, rotations };
    };
    const base = await runOne('base');
    const he = await runOne('he-lora');
    const r1 = (v: number) => Math.round(v * 10) / 10;
    return {
      base: {
        response: base.summary.text ?? base.text,
        tokens: base.summary.tokens,
        time_ms: r1(base.ms),
        tok_s: r1(base.summary.tokPerS),
        encrypted: false,
        expert: 'none',
        stage_medians: base.summary.stageMedians,
      },
      adapted: {
        response: he.summary.text ?? he.text,
        tokens: he.summary.tokens,
        time_ms: r1(he.ms),
        tok_s: r1(he.summary.tokPerS),
        encrypted: true,
        expert: he.summary.expert ?? cmp.expert,
        he_operations: he.heOperations,
        rotations: he.rotations,
        dp_epsilon_spent: he.summary.privacy?.epsilon ?? 0,
        privacy: he.summary.privacy ?? null,
        stage_medians: he.summary.stageMedians,
      },
      speed_ratio: base.summary.tokPerS > 0 ? Math.round((he.summary.tokPerS / base.summary.tokPerS) * 1000) / 1000 : null,
    };
  } finally {
    release();
  }
}

async function splitForward(ctx: HttpContext, req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
  requireSplit(ctx);
  const client = clientKey(req);
  const cfg = ctx.split!.config();
  const binary = (req.headers['content-type'] ?? '').startsWith('application/octet-stream');
  // The largest forward: a full context of float32 values, raw (binary) or as base64 (JSON),
  // plus room for the other fields.
  const payloadLimit = cfg.contextLength * cfg.hiddenSize * 4;
  const limit = Math.max(ctx.maxBodyBytes, (binary ? payloadLimit : Math.ceil((payloadLimit * 4) / 3)) + 65536);
  // Refusals that need no body: an empty rate bucket (for a large body), a full upload budget.
  if ((declaredLength(req) ?? limit) > 65536) refuseIfEmpty(ctx, client);
  const releaseUpload = reserveBody(req, ctx.uploads, limit);
  try {
    const raw = await readBody(req, limit);
    const { header, payload } = binary ? parseBinaryForward(raw) : { header: parseJsonObject(raw), payload: undefined };
    const fwd = parseForward(ctx, header, payload);
    const key = `http:${client}:${fwd.sessionId}`;
    const outcome = await runForward(ctx, key, undefined, client, fwd, signal);
    ctx.metrics.token(outcome.result.stages);
    if (binary) {
      send(res, 200, packFrame({ ...resultFields(ctx, outcome, fwd.responseDtype), session_id: fwd.sessionId }, encodeValues(outcome.result.hidden, fwd.responseDtype)), 'application/octet-stream');
    } else {
      sendJson(res, 200, { ...jsonResult(ctx, outcome), session_id: fwd.sessionId });
    }
  } finally {
    releaseUpload();
  }
}

/** A query parameter that must be a decimal integer (no 0x10, 1e1, " 5": PROTOCOL.md says no coercion). */
function queryInt(params: URLSearchParams, name: string): number | undefined {
  const v = params.get(name);
  if (v === null) return undefined;
  if (!/^[0-9]{1,9}$/.test(v)) throw new RequestError(`${name} must be a finite number written as a decimal integer, got ${JSON.stringify(v)}`, { field: name });
  return Number(v);
}

async function selftest(ctx: HttpContext, url: URL, signal: AbortSignal): Promise<Record<string, unknown>> {
  const engine = requireSplit(ctx);
  const obj: Record<string, unknown> = { query: url.searchParams.get('query') ?? 'What is a savings account?' };
  const maxTokensParam = queryInt(url.searchParams, 'max_tokens');
  if (maxTokensParam !== undefined) obj.max_tokens = maxTokensParam;
  const query = stringField(obj, 'query', LIMITS.queryMaxChars, undefined, { nonEmpty: true });
  const maxTokens = intField(obj, 'max_tokens', LIMITS.maxTokens, 64);
  // The client's LM head: 'auto' (the GPU when there is one), or 'cpu' as the original's phone selftest.
  const headBackend = url.searchParams.get('head') ?? 'auto';
  if (headBackend !== 'auto' && headBackend !== 'cpu' && headBackend !== 'cuda') {
    throw new RequestError(`head must be auto, cpu or cuda, got ${JSON.stringify(headBackend)}`, { field: 'head' });
  }
  const release = await ctx.splitGate.acquire(signal);
  try {
    let pending = ctx.selftestHeads.get(headBackend);
    if (!pending) {
      pending = engine.createHead(headBackend);
      pending.catch(() => ctx.selftestHeads.delete(headBackend));
      ctx.selftestHeads.set(headBackend, pending);
    }
    let head: SplitHead;
    try {
      head = await pending;
    } catch (err) {
      // The head's backend cannot run here (head=cuda without a usable GPU): the server is
      // fine, this option is not available. Say so, with the engine's reason.
      const reason = (err as Error)?.message ?? String(err);
      throw new RequestError(`the selftest's client head cannot run on '${headBackend}' here (${reason}); use head=cpu`, {
        status: 503,
        field: 'head',
        code: 'head_unavailable',
      });
    }
    const result = await runSelftest(engine, head, query, maxTokens, signal);
    ctx.metrics.generations++;
    return { ...result };
  } finally {
    release();
  }
}

/** Routes one HTTP request. Every failure becomes a JSON error with the right status. */
export async function handleHttp(ctx: HttpContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const t0 = performance.now();
  const url = new URL(req.url ?? '/', 'http://localhost');
  // Metrics label: known paths only, so random URLs cannot grow the metrics map.
  const known = ['/health', '/api/v1/metrics', '/api/v1/chat/compare', '/api/v1/split/forward', '/api/v1/split/tokenize', '/api/v1/split/config', '/api/v1/split/selftest'];
  const route = known.includes(url.pathname) ? `${req.method} ${url.pathname}` : ctx.staticFiles.has(url.pathname) ? 'GET static' : 'other';
  let outcome: boolean | 'aborted' = true;
  const closed = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) closed.abort();
  });
  const { controller, done } = track(ctx, closed.signal);
  try {
    // Who may ask: Host (DNS rebinding), Origin (other sites' pages), then the token; the health
    // probe and the page's files only need the Host check (they hold no data, change nothing).
    checkAccess(req, ctx.access, { public: url.pathname === '/health' || ((req.method === 'GET' || req.method === 'HEAD') && ctx.staticFiles.has(url.pathname)) });
    const method = req.method ?? 'GET';
    const only = (m: string) => {
      if (method !== m) throw new RequestError(`${url.pathname} takes ${m}, not ${method}`, { status: 405, code: 'method_not_allowed' });
    };
    switch (url.pathname) {
      case '/health':
        only('GET');
        sendJson(res, 200, health(ctx));
        return;
      case '/api/v1/metrics': {
        only('GET');
        const prom = url.searchParams.get('format') === 'prometheus' || (req.headers.accept ?? '').includes('text/plain');
        if (prom) send(res, 200, metricsPrometheus(ctx), 'text/plain; version=0.0.4; charset=utf-8');
        else sendJson(res, 200, metricsJson(ctx));
        return;
      }
      case '/api/v1/chat/compare':
        only('POST');
        if (ctx.closing) throw new RequestError('server is shutting down', { status: 503, code: 'shutting_down' });
        sendJson(res, 200, await compare(ctx, req, controller.signal));
        return;
      case '/api/v1/split/forward':
        only('POST');
        if (ctx.closing) throw new RequestError('server is shutting down', { status: 503, code: 'shutting_down' });
        await splitForward(ctx, req, res, controller.signal);
        return;
      case '/api/v1/split/tokenize': {
        only('POST');
        refuseIfEmpty(ctx, clientKey(req));
        const body = parseJsonObject(await readBody(req, ctx.maxBodyBytes));
        const text = stringField(body, 'text', LIMITS.tokenizeMaxChars, undefined);
        const ids = requireSplit(ctx).tokenize(text);
        sendJson(res, 200, { token_ids: ids, length: ids.length });
        return;
      }
      case '/api/v1/split/config':
        only('GET');
        sendJson(res, 200, splitConfigBody(ctx));
        return;
      case '/api/v1/split/selftest':
        only('GET');
        if (ctx.closing) throw new RequestError('server is shutting down', { status: 503, code: 'shutting_down' });
        checkRate(ctx, clientKey(req));
        sendJson(res, 200, await selftest(ctx, url, controller.signal));
        return;
      default: {
        const file = ctx.staticFiles.get(url.pathname);
        if (file && (method === 'GET' || method === 'HEAD')) {
          send(res, 200, file.body, file.type, { 'Cache-Control': 'no-cache' });
          return;
        }
        throw new RequestError(`no such endpoint: ${method} ${url.pathname}`, { status: 404, code: 'not_found' });
      }
    }
  } catch (err) {
    const status = errorStatus(err);
    // A client that went away (closed its upload or the connection) is nobody's error.
    const aborted = status === 499 || closed.signal.aborted;
    outcome = aborted ? 'aborted' : false;
    const extra: Record<string, string> =
      status === 429 ? { 'Retry-After': String(ctx.limiter.retryAfterS(clientKey(req)) || 1) } : status === 503 ? { 'Retry-After': '1' } : status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {};
    if (!res.headersSent && !aborted) send(res, status, JSON.stringify(errorBody(err)), 'application/json', extra);
    if (status >= 500 && !aborted && !(err instanceof RequestError)) console.error(`tensafe serve: ${route}: ${(err as Error)?.stack ?? err}`);
  } finally {
    done();
    ctx.metrics.request(route, performance.now() - t0, outcome);
  }
}
