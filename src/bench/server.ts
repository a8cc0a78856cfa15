/**
 * `npm run bench -- server [--backend cpu|cuda|auto] [--quick] [--model M] [--tokens N]
 *                          [--runs R] [--expert E] [--only ws|split]`
 * (`--only split` is the original's bench_split_ws.py: the split client alone.)
 *
 * Tokens per second through the server on loopback, beside the in-process pipeline and the
 * original's table (RTX A2000, seed-performance-analysis.md: WebSocket HE 7.4 tok/s, split with
 * a GPU LM head 4.85, split selftest with a CPU LM head 1.24):
 *   - inprocess:    Pipeline.generate, HE-LoRA, no server (what the server can at best reach);
 *   - ws_he:        WS /api/v1/chat/stream, HE-LoRA, measured by the client from frame arrival;
 *   - ws_base:      the same without the adapter (use_he false);
 *   - split (GPU / CPU head): the split client with its LM head and sampling local on the GPU
 *                   or on the CPU threads, the decoder and HE-LoRA on the server;
 *   - network:      the server's cost to encode and send a token frame (the `network` stage),
 *                   and for split the round trip minus the server's own time;
 *   - memory (GPU): device memory with 1, 8 and 32 live split sessions (each a context of the
 *                   pipeline's one model: its own KV cache, no weight copy), from cudaMemGetInfo
 *                   and from our own allocation counter, against weights + sessions x KV cache.
 * tok/s are decode rates (the first token, which pays the prompt's prefill, is left out), the
 * pipeline's own convention. Greedy, DP off, the same query as the original's benchmark.
 */
import type { BenchArgs } from './index';
import { newResult, printTable, stats, writeResult, type Row } from './results';
import { deviceName, gpuMemory, info, resolveBackend, type Backend } from '../engine/info';
import type { Pipeline } from '../pipeline/pipeline';
import { openEngines } from '../server/engines';
import { ModelHead, type ModelSplitEngine } from '../server/model-split-engine';
import type { SplitSession } from '../server/split-engine';
import { startServer } from '../server/server';
import { SplitClient } from '../server/split-client';
import WebSocket from 'ws';

const QUERY = 'What is a savings account?';

/** The original's headline rows (cited, not measured here). */
const ORIGINAL = [
  { mode: 'WebSocket HE (best)', key: 'ws_he', tok_s: 7.4, ms_per_token: 135 },
  { mode: 'Split + GPU LM head', key: 'split_gpu_head', tok_s: 4.85, ms_per_token: 207 },
  { mode: 'Split selftest (CPU LM head)', key: 'split_cpu_head', tok_s: 1.24, ms_per_token: 806 },
];

function median(xs: number[]): number {
  return stats(xs).median;
}

/** One chat/stream generation; tok/s from the arrival times of token frames 1..n-1. */
function wsGenerate(url: string, req: Record<string, unknown>): Promise<{ tokS: number; tokens: number; networkMs: number[]; serverTokS: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/api/v1/chat/stream`, { perMessageDeflate: false });
    const arrivals: number[] = [];
    const networkMs: number[] = [];
    ws.on('open', () => ws.send(JSON.stringify(req)));
    ws.on('message', (data) => {
      const t = performance.now();
      const m = JSON.parse(data.toString());
      if (m.type === 'token') {
        arrivals.push(t);
        if (m.index > 0) networkMs.push(m.stages.network); // frame i carries frame i-1's cost
      } else if (m.type === 'done') {
        ws.close();
        const n = arrivals.length;
        resolve({ tokS: n > 1 ? ((n - 1) / (arrivals[n - 1] - arrivals[0])) * 1000 : 0, tokens: n, networkMs, serverTokS: m.summary.tok_s });
      } else if (m.type === 'error') {
        ws.close();
        reject(new Error(`chat/stream: ${m.message}`));
      }
    });
    ws.on('error', reject);
  });
}

/** Bytes of a KV cache alone: K and V of every layer, kv head and position, in the weight type. */
function kvBytes(c: { numHiddenLayers: number; numKeyValueHeads: number; headDim: number }, positions: number, bytesPerValue: number): number {
  return 2 * c.numHiddenLayers * c.numKeyValueHeads * positions * c.headDim * bytesPerValue;
}

/**
 * GPU memory with 1, 8 and 32 live split sessions. Sessions are made through the split engine
 * (as the server does) and each gets its context by a one-token forward (HE off). `before` is
 * the device before the engines were opened. Rows and summary keys gpu_bytes_weights,
 * gpu_bytes_per_session, gpu_bytes_32_sessions (cudaMemGetInfo, the bytes used by the process).
 */
async function memoryRows(split: ModelSplitEngine, pipeline: Pipeline, before: ReturnType<typeof gpuMemory>, result: ReturnType<typeof newResult>, rows: Row[]): Promise<void> {
  const device = pipeline.model.device ?? 0;
  const cfg = pipeline.model.config;
  const positions = split.config().contextLength;
  const kv = kvBytes(cfg, positions, pipeline.model.dtype === 'f32' ? 4 : 2);
  const contextBytes = pipeline.model.contextBytes(positions);
  const weights = pipeline.model.memoryBytes;
  const idle = gpuMemory(device);
  const usedWeights = idle.usedBytes - before.usedBytes;
  const sessions: SplitSession[] = [];
  const at: Record<number, { used: number; allocated: number }> = {};
  try {
    for (const n of [1, 8, 32]) {
      while (sessions.length < n) {
        const s = split.createSession();
        sessions.push(s);
        await s.forward({ kind: 'tokens', ids: [1] }, { expert: 'none', useHe: false });
      }
      const m = gpuMemory(device);
      at[n] = { used: m.usedBytes - idle.usedBytes, allocated: m.allocatedBytes - idle.allocatedBytes };
      const expected = weights + n * kv;
      const measured = usedWeights + at[n].used;
      rows.push({
        mode: `GPU memory, ${n} split session${n === 1 ? '' : 's'}`,
        transport: '',
        sessions: n,
        gpu_used_bytes: measured,
        gpu_sessions_used_bytes: at[n].used,
        gpu_sessions_allocated_bytes: at[n].allocated,
        expected_bytes: expected,
        used_over_expected: measured / expected,
        within_5pct: Math.abs(measured / expected - 1) <= 0.05,
        source: 'measured',
      });
    }
  } finally {
    await Promise.all(sessions.map((s) => s.dispose()));
  }
  const after = gpuMemory(device);
  result.summary.gpu_bytes_weights = usedWeights;
  result.summary.gpu_bytes_per_session = at[32].used / 32;
  result.summary.gpu_bytes_32_sessions = usedWeights + at[32].used;
  result.summary.gpu_kv_bytes_per_session = kv;
  result.summary.gpu_context_bytes_per_session = contextBytes;
  result.summary.gpu_model_bytes = weights;
  result.notes = [
    ...(result.notes ?? []),
    `GPU memory: cudaMemGetInfo used bytes (the whole device, this process's CUDA context included) from before the engines were opened; gpu_bytes_weights = after opening the pipeline (weights ${weights} B by our counter, the pipeline's own context, HE keys), gpu_bytes_per_session = (32 sessions - none) / 32 against a KV cache of ${kv} B (${positions} positions; a context's arena is ${contextBytes} B: KV + scratch); expected = weights + sessions x KV; after disposing the sessions the sessions' bytes went back to ${after.usedBytes - idle.usedBytes} B (allocation counter ${after.allocatedBytes - idle.allocatedBytes} B)`,
  ];
}

async function runBackend(backend: Backend, args: BenchArgs): Promise<void> {
  const quick = args.quick;
  const tokens = Number(args.options.tokens ?? (quick ? 16 : 64));
  const runs = Number(args.options.runs ?? (quick ? 2 : 5));
  const model = args.options.model ?? (backend === 'cuda' ? 'qwen2.5-1.5b-shape' : 'tiny');
  const expert = args.options.expert ?? 'banking_expert';
  const only = args.options.only ?? 'all';
  if (!['all', 'ws', 'split'].includes(only)) throw new RangeError(`--only must be ws or split, got '${only}'`);
  const memBefore = backend === 'cuda' ? gpuMemory(0) : undefined;
  const engines = await openEngines({ backend, model });
  const pipeline = engines.service as Pipeline;
  const { server, url } = await startServer({ service: engines.service, split: engines.split, port: 0, ownEngines: false, rateLimit: { perMinute: 1e6, burst: 1e5 } });
  const result = newResult('server', backend, deviceName(backend), args.argv);
  const rows: Row[] = [];
  const desc = engines.service.describe();
  try {
    const chatReq = (useHe: boolean) => ({ query: QUERY, max_tokens: tokens, temperature: 0, use_he: useHe, expert });

    // Warm-up: HE keys and generators, JIT, sockets.
    await pipeline.run(QUERY, { mode: 'he-lora', expert, maxTokens: 4, temperature: 0 });
    if (only !== 'split') {
      await wsGenerate(url, { ...chatReq(true), max_tokens: 4 });
      await wsGenerate(url, { ...chatReq(false), max_tokens: 4 });

      // In-process and WebSocket HE runs interleaved, so drift hits both alike.
      const inproc: number[] = [];
      const wsHe: number[] = [];
      const wsHeServer: number[] = [];
      const wsBase: number[] = [];
      const network: number[] = [];
      for (let r = 0; r < runs; r++) {
        const ip = await pipeline.run(QUERY, { mode: 'he-lora', expert, maxTokens: tokens, temperature: 0 });
        inproc.push(ip.summary.tokPerS);
        const w = await wsGenerate(url, chatReq(true));
        wsHe.push(w.tokS);
        wsHeServer.push(w.serverTokS);
        network.push(...w.networkMs);
        wsBase.push((await wsGenerate(url, chatReq(false))).tokS);
      }
      const ipS = stats(inproc);
      const wsS = stats(wsHe);
      rows.push({ mode: 'in-process pipeline, HE-LoRA', transport: 'none', tok_s: ipS.median, ms_per_token: 1000 / ipS.median, tok_s_min: ipS.min, tok_s_max: ipS.max, runs, tokens, source: 'measured' });
      rows.push({ mode: 'WebSocket HE (chat/stream)', transport: 'ws', tok_s: wsS.median, ms_per_token: 1000 / wsS.median, tok_s_min: wsS.min, tok_s_max: wsS.max, runs, tokens, network_ms: median(network), source: 'measured' });
      const wbS = stats(wsBase);
      rows.push({ mode: 'WebSocket base (use_he false)', transport: 'ws', tok_s: wbS.median, ms_per_token: 1000 / wbS.median, tok_s_min: wbS.min, tok_s_max: wbS.max, runs, tokens, source: 'measured' });
      result.summary.inprocess_tok_s = ipS.median;
      result.summary.ws_he_tok_s = wsS.median;
      result.summary.ws_over_inprocess = wsS.median / ipS.median;
      result.summary.ws_he_server_tok_s = median(wsHeServer);
      result.summary.ws_base_tok_s = wbS.median;
      result.summary.network_ms_per_token = median(network);
    }

    // Split: the decoder + HE on the server, the LM head and sampling local.
    if (only === 'ws') {
      // not asked for
    } else if (engines.split) {
      const split = engines.split;
      const promptIds = split.tokenize(split.prompt(QUERY));
      const heads: Array<{ name: string; backend: Backend; key: string }> = [];
      if (info().cuda.available && backend === 'cuda') heads.push({ name: 'GPU', backend: 'cuda', key: 'split_gpu_head_tok_s' });
      heads.push({ name: 'CPU', backend: 'cpu', key: 'split_cpu_head_tok_s' });
      for (const h of heads) {
        try {
          const head = await ModelHead.open(model, { backend: h.backend, seed: 0 });
          const client = await SplitClient.connect(url, { binary: true, dtype: 'float32' });
          const one = async (n: number) => {
            const gen = client.generate(head, promptIds, { maxTokens: n, expert });
            let step = await gen.next();
            const net: number[] = [];
            const lm: number[] = [];
            while (!step.done) {
              if (step.value.index > 0) {
                net.push(step.value.stages.network ?? 0);
                lm.push(step.value.stages.lm_head ?? 0);
              }
              step = await gen.next();
            }
            return { tokS: step.value.tokPerS, net, lm };
          };
          await one(4);
          const tps: number[] = [];
          const net: number[] = [];
          const lm: number[] = [];
          for (let r = 0; r < runs; r++) {
            const o = await one(tokens);
            tps.push(o.tokS);
            net.push(...o.net);
            lm.push(...o.lm);
          }
          await client.close();
          await head.dispose();
          const s = stats(tps);
          rows.push({ mode: `Split + ${h.name} LM head (split client)`, transport: 'ws binary f32', tok_s: s.median, ms_per_token: 1000 / s.median, tok_s_min: s.min, tok_s_max: s.max, runs, tokens, network_ms: median(net), lm_head_ms: median(lm), source: 'measured' });
          result.summary[h.key] = s.median;
          result.summary[`${h.key.replace('_tok_s', '')}_network_ms`] = median(net);
          result.summary[`${h.key.replace('_tok_s', '')}_lm_head_ms`] = median(lm);
        } catch (err) {
          // One head failing (a backend without some model method) must not lose the other rows.
          result.notes = [...(result.notes ?? []), `split with the ${h.name} LM head not measured: ${(err as Error).message}`];
          // eslint-disable-next-line no-console
          console.error(`bench server: split ${h.name} head: ${(err as Error).stack ?? err}`);
        }
      }
    } else {
      result.notes = [...(result.notes ?? []), `split not measured: ${engines.splitUnavailable ?? 'no split engine'}`];
    }
    // Memory of split sessions (GPU only: the CPU's KV caches are host memory, reserved and not
    // written until used, so their size is not a resident-memory measurement).
    if (backend === 'cuda' && memBefore && engines.split && only === 'all') {
      await memoryRows(engines.split as ModelSplitEngine, pipeline, memBefore, result, rows);
    }
    for (const o of ORIGINAL) rows.push({ mode: `original: ${o.mode}`, transport: '', tok_s: o.tok_s, ms_per_token: o.ms_per_token, source: 'cited: seed-performance-analysis.md, RTX A2000 8GB' });
    result.rows = rows;
    result.notes = [
      ...(result.notes ?? []),
      `model: ${desc.model} on ${desc.backend}, poly_n ${desc.polyN}, expert ${expert}, greedy, DP off, ${tokens} tokens per run, query "${QUERY}"`,
      'tok/s are decode rates: the first token (prompt prefill) is left out, as the pipeline reports them; ws_he_tok_s is timed by the client from token frame arrivals',
      'network_ms_per_token: the server encoding and sending one token frame (JSON); split *_network_ms: round trip minus the server time (both sides encode/decode + loopback)',
      `split: the client embeds locally and sends ${engines.split?.config().inputs.includes('hidden_states') ? 'embedding rows' : 'token ids (this engine has no forward from rows)'} in binary float32 frames, and receives the final hidden state the same way`,
      'original rows are cited from seed-performance-analysis.md (RTX A2000, Qwen2.5-1.5B real weights), not measured here',
    ];
    printTable(rows, ['mode', 'transport', 'tok_s', 'ms_per_token', 'tok_s_min', 'tok_s_max', 'network_ms', 'lm_head_ms', 'runs', 'gpu_used_bytes', 'expected_bytes', 'used_over_expected', 'source'], `server on ${result.device} (${desc.model})`);
    // eslint-disable-next-line no-console
    console.log(JSON.stringify(result.summary, null, 2));
    // A partial run (--only) prints its table but leaves the result file to full runs.
    // eslint-disable-next-line no-console
    console.log(only === 'all' ? `wrote ${writeResult(result)}` : `--only ${only}: result file not written (partial run)`);
  } finally {
    await server.close(2000);
    await engines.split?.dispose();
    await engines.service.dispose();
  }
}

export async function run(args: BenchArgs): Promise<void> {
  const backend = resolveBackend(args.backend);
  await runBackend(backend, args);
}
