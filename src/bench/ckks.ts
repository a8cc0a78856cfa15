/**
 * `npm run bench -- ckks [--backend cpu|cuda] [--quick] [--iterations k] [--tokens t] [--no-one-thread]`
 *
 * CPU (default): per-operation medians (encode, encrypt, ct x pt, decrypt, decode, rescale,
 * rotate) and the per-token HE-LoRA workload (d = 1536, r = 32: encode h replicated, encrypt,
 * ct x pt by the packed LoRA-A rows, decrypt, decode, segment sums) for poly_n 8192, 16384,
 * 32768, side by side with node-seal@6 (Microsoft SEAL in WASM, one thread) IN THE SAME RUN on
 * the same parameters (primes [60, 40] + special 60, i.e. SEAL's [60, 40, 60]), with ratios.
 * Ours is timed natively (steady clock in C++); node-seal with the host clock around each call.
 * node-seal runs on one WASM thread, so ours is measured twice in the same run: on every core
 * (TENSAFE_THREADS, default: all) and on one thread (a child process with TENSAFE_THREADS=1: the
 * native thread count is fixed per process), and both ratios are reported.
 *
 * CUDA: per-op medians for poly_n 8192..65536 and the per-token workload on CkksContextCuda,
 * printed beside the CITED figures of the original (RTX A2000) and of Phantom-FHE (H200, same
 * primes [60, 40, 60], both timing methods), quoted from ../shared/reference/field-notes.md
 * section 4, not measured here. Per-op figures are `batched`: kOpBatch = 10 back-to-back ops
 * between two CUDA events, divided by 10 (steady-state cost, how library benchmarks report it);
 * `single`: one op between two events (latency, with the launch cost), where the engine's
 * benchmarkOp offers { batch: 1 }. Every row names its method and primes.
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import type { BenchArgs } from './index';
import { newResult, printTable, stats, writeResult, type ResultFile, type Row } from './results';
import { deviceName, info as engineInfo, resolveBackend, type Backend } from '../engine/info';
import { Ckks } from '../engine/ckks';
import type { CkksContextInfo, CkksOpName, HeLoraTiming, OpTiming } from '../engine/ckks/native-api';

/** Ops per timed sample of the CUDA per-op benchmark (native CkksContextCuda::kOpBatch). */
export const CUDA_OP_BATCH = 10;

/** "3 primes (60, 40 + special 60)": what every per-op row and label says. */
export function primesLabel(i: Pick<CkksContextInfo, 'moduli' | 'specialModulus'>): { primes: number; prime_bits: string } {
  const bits = (q: bigint) => q.toString(2).length;
  const main = i.moduli.map(bits).join(', ');
  return {
    primes: i.moduli.length + (i.specialModulus ? 1 : 0),
    prime_bits: i.specialModulus ? `${main} + special ${bits(i.specialModulus)}` : main,
  };
}

/**
 * One op between two events (no batching), where the engine offers benchmarkOp(op, n, { batch: 1 })
 * and says so in its result (`batch: 1`); undefined where it does not (the figure is then left out).
 */
async function singleOp(ckks: Ckks, op: CkksOpName, iterations: number): Promise<OpTiming | undefined> {
  type WithBatch = (op: CkksOpName, iterations: number, o: { batch: number }) => Promise<OpTiming & { batch?: number }>;
  const t = await (ckks.benchmarkOp as unknown as WithBatch).call(ckks, op, iterations, { batch: 1 });
  return t.batch === 1 ? t : undefined;
}

const D = 1536;
const R = 32;
const OPS: CkksOpName[] = ['encode', 'encrypt', 'multiply_plain', 'decrypt', 'decode', 'rescale', 'rotate'];
const STAGES = ['encode', 'encrypt', 'ct_pt_multiply', 'decrypt', 'decode', 'extract_sum', 'total'] as const;

// ---- node-seal (SEAL 4.x in WASM) -----------------------------------------------------------

/* eslint-disable @typescript-eslint/no-explicit-any */
export async function loadSeal(): Promise<any | undefined> {
  try {
    // Compile SEAL's WASM with the optimising tier up front: otherwise V8 starts in its
    // baseline tier and tiers up in the background, and on a busy 2-core machine the first
    // seconds of node-seal would be measured at baseline speed (unfair to node-seal).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('node:v8').setFlagsFromString('--no-liftoff');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return await require('node-seal')();
  } catch {
    return undefined;
  }
}

function hostUs(fn: () => unknown): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e3;
}

interface SealRun {
  ops: Record<string, number>;
  helora: Record<(typeof STAGES)[number], number>;
  maxAbsError: number;
  version: string;
}

export function runSeal(seal: any, polyN: number, opIters: number, tokens: number): SealRun {
  const parms = seal.EncryptionParameters(seal.SchemeType.ckks);
  parms.setPolyModulusDegree(polyN);
  parms.setCoeffModulus(seal.CoeffModulus.Create(polyN, Int32Array.from([60, 40, 60])));
  const context = seal.Context(parms, true, seal.SecurityLevel.tc128);
  if (!context.parametersSet()) throw new Error(`node-seal refused N = ${polyN}: ${context.parameterErrorMessage()}`);
  const encoder = seal.CKKSEncoder(context);
  const keygen = seal.KeyGenerator(context);
  const pk = keygen.createPublicKey();
  const sk = keygen.secretKey();
  const gk = keygen.createGaloisKeys(Int32Array.from([1]));
  const encryptor = seal.Encryptor(context, pk);
  const decryptor = seal.Decryptor(context, sk);
  const evaluator = seal.Evaluator(context);
  const scale = 2 ** 40;
  const slots = polyN / 2;
  const values = Float64Array.from({ length: slots }, () => Math.random() * 2 - 1);
  const pt = encoder.encode(values, scale);
  const ct = encryptor.encrypt(pt);
  const dec = decryptor.decrypt(ct);
  const median = (fn: () => unknown) => {
    fn();
    fn();
    const s: number[] = [];
    for (let i = 0; i < opIters; i++) s.push(hostUs(fn));
    return stats(s).median;
  };
  const del = (x: any) => x?.delete?.();
  const ops: Record<string, number> = {
    encode: median(() => del(encoder.encode(values, scale))),
    encrypt: median(() => del(encryptor.encrypt(pt))),
    multiply_plain: median(() => del(evaluator.multiplyPlain(ct, pt))),
    decrypt: median(() => del(decryptor.decrypt(ct))),
    decode: median(() => encoder.decode(dec)),
    rescale: median(() => del(evaluator.rescaleToNext(ct))),
    rotate: median(() => del(evaluator.rotateVector(ct, 1, gk))),
  };

  // The per-token workload with the same packing as ours.
  const replicas = Math.min(Math.floor(slots / D), R);
  const products = Math.ceil(R / replicas);
  const A = Float64Array.from({ length: R * D }, () => (Math.random() * 2 - 1) / Math.sqrt(D));
  const apts = Array.from({ length: products }, (_, p) => {
    const v = new Float64Array(slots);
    for (let k = 0; k < replicas && p * replicas + k < R; k++) v.set(A.subarray((p * replicas + k) * D, (p * replicas + k + 1) * D), k * D);
    return encoder.encode(v, scale);
  });
  const samples: Record<string, number[]> = Object.fromEntries(STAGES.map((s) => [s, []]));
  let maxAbsError = 0;
  for (let it = -2; it < tokens; it++) {  // two warm-up tokens
    const h = Float64Array.from({ length: D }, () => Math.random() * 2 - 1);
    const t: number[] = [];
    const clock = () => t.push(performance.now() * 1e3);  // microseconds
    clock();
    const rep = new Float64Array(replicas * D);
    for (let k = 0; k < replicas; k++) rep.set(h, k * D);
    const hp = encoder.encode(rep, scale);
    clock();
    const hc = encryptor.encrypt(hp);
    clock();
    const prods = apts.map((a) => evaluator.multiplyPlain(hc, a));
    clock();
    const decs = prods.map((c: any) => decryptor.decrypt(c));
    clock();
    const slotsOut = decs.map((d: any) => encoder.decode(d) as Float64Array);
    clock();
    const y = new Float64Array(R);
    for (let p = 0; p < products; p++)
      for (let k = 0; k < replicas && p * replicas + k < R; k++) {
        let acc = 0;
        for (let i = 0; i < D; i++) acc += slotsOut[p][k * D + i];
        y[p * replicas + k] = acc;
      }
    clock();
    [hp, hc, ...prods, ...decs].forEach(del);
    if (it < 0) continue;
    STAGES.slice(0, 6).forEach((s, i) => samples[s].push(t[i + 1] - t[i]));
    samples.total.push(t[6] - t[0]);
    if (it === tokens - 1) {
      for (let row = 0; row < R; row++) {
        let ref = 0;
        for (let i = 0; i < D; i++) ref += A[row * D + i] * h[i];
        maxAbsError = Math.max(maxAbsError, Math.abs(ref - y[row]));
      }
    }
  }
  const helora = Object.fromEntries(STAGES.map((s) => [s, stats(samples[s]).median])) as SealRun['helora'];
  [pt, ct, dec, ...apts, gk, pk, encryptor, decryptor, evaluator, keygen, encoder, context, parms].forEach(del);
  return { ops, helora, maxAbsError, version: String(seal.Version ?? '4.x') };
}
/* eslint-enable @typescript-eslint/no-explicit-any */

// ---- ours ----------------------------------------------------------------------------------------

export async function runOurs(backend: Backend, polyN: number, opIters: number, tokens: number) {
  const ckks = Ckks.create({ polyN, primeBits: [60, 40], specialPrimeBits: 60, backend });
  const info = ckks.info();
  const ops: Record<string, number> = {};
  const spread: Record<string, { min: number; max: number }> = {};
  const single: Record<string, OpTiming> = {};
  const missing: string[] = [];
  for (const op of OPS) {
    try {
      const t = await ckks.benchmarkOp(op, opIters);
      ops[op] = t.medianUs;
      spread[op] = { min: t.minUs, max: t.maxUs };
      if (backend === 'cuda') {
        const one = await singleOp(ckks, op, opIters);
        if (one) single[op] = one;
      }
    } catch (err) {
      // A backend that cannot run an op leaves its figure out (results.md), with the reason.
      missing.push(`${op} at N = ${polyN} on ${backend}: ${(err as Error).message}`);
    }
  }
  const helora: HeLoraTiming = await ckks.benchmarkHeLora({ d: D, r: R, iterations: tokens });
  ckks.dispose();
  return { ops, spread, single, helora, info, missing };
}

// ---- ours on one thread (a child process: the native thread count is fixed per process) --------

const ONE_THREAD_FLAG = '--ckks-one-thread-child';

interface OneThreadRun {
  threads: number;
  ops: Record<string, number>;
  helora: HeLoraTiming;
}

/** Runs runOurs('cpu') in a child with TENSAFE_THREADS=1; the reason when it cannot. */
function runOursOneThread(polyN: number, opIters: number, tokens: number): OneThreadRun | string {
  const r = spawnSync(process.execPath, [__filename, ONE_THREAD_FLAG, String(polyN), String(opIters), String(tokens)], {
    encoding: 'utf8',
    env: { ...process.env, TENSAFE_THREADS: '1' },
    timeout: 1_800_000,
    maxBuffer: 16 << 20,
  });
  const line = (r.stdout ?? '').trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (r.error || r.status !== 0 || !line) return `one-thread run failed: ${r.error?.message ?? `exit ${r.status}: ${(r.stderr ?? '').trim().split('\n').pop()}`}`;
  const j = JSON.parse(line) as OneThreadRun;
  if (j.threads !== 1) return `one-thread run used ${j.threads} threads (TENSAFE_THREADS not honoured)`;
  return j;
}

if (require.main === module && process.argv[2] === ONE_THREAD_FLAG) {
  const [polyN, opIters, tokens] = process.argv.slice(3).map(Number);
  runOurs('cpu', polyN, opIters, tokens).then(
    (o) => process.stdout.write(JSON.stringify({ threads: engineInfo().cpuThreads, ops: o.ops, helora: o.helora }) + '\n'),
    (err) => {
      process.stderr.write(`${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}

// ---- CPU run -----------------------------------------------------------------------------------

async function runCpu(args: BenchArgs): Promise<ResultFile> {
  const sizes = args.quick ? [16384] : [8192, 16384, 32768];
  const opIters = Number(args.options.iterations ?? (args.quick ? 5 : 20));
  const tokens = Number(args.options.tokens ?? (args.quick ? 3 : 10));
  const result = newResult('ckks', 'cpu', deviceName('cpu'), args.argv);
  const seal = await loadSeal();
  const threads = engineInfo().cpuThreads;
  const notes: string[] = [
    'parameters: primes [60, 40] + special prime 60 (SEAL [60, 40, 60]), scale 2^40, 128-bit secure (not insecure)',
    `tensafe: timed natively (steady clock in C++), on ${threads} threads (all cores) and on 1 thread (a child process with TENSAFE_THREADS=1, same run); node-seal: host clock around each WASM call, one thread`,
    'ratios: speedup = node-seal / tensafe on all threads; speedup_1thread = node-seal / tensafe on one thread (equal terms: one thread each)',
    `HE-LoRA workload: d = ${D}, r = ${R}, replicated slots, pre-encoded LoRA-A; tensafe: medians over ${tokens} tokens after one warm-up; node-seal: over ${Math.max(2, Math.floor(tokens / 2))} tokens after two warm-ups`,
    'node-seal WASM compiled with V8 --no-liftoff (optimising tier from the start) so it is measured at its best',
  ];
  if (!seal) notes.push('node-seal could not be loaded: its columns are left out');
  const opRows: Row[] = [];
  const tokRows: Row[] = [];
  result.summary.threads = threads;
  for (const polyN of sizes) {
    const ours = await runOurs('cpu', polyN, opIters, tokens);
    const one = args.options['no-one-thread'] === 'true' ? 'not asked for (--no-one-thread)' : runOursOneThread(polyN, opIters, tokens);
    if (typeof one === 'string') notes.push(`one-thread figures at N = ${polyN} left out: ${one}`);
    const oneOk = typeof one === 'string' ? undefined : one;
    const theirs = seal ? runSeal(seal, polyN, Math.max(3, Math.floor(opIters / 2)), Math.max(2, Math.floor(tokens / 2))) : undefined;
    notes.push(...ours.missing);
    for (const op of OPS) {
      if (ours.ops[op] === undefined) continue;
      const row: Row = { op, poly_n: polyN, median_us: ours.ops[op], min_us: ours.spread[op].min, max_us: ours.spread[op].max, runs: opIters, threads };
      if (oneOk?.ops[op] !== undefined) row.one_thread_us = oneOk.ops[op];
      if (theirs) {
        row.node_seal_us = theirs.ops[op];
        row.speedup = theirs.ops[op] / ours.ops[op];
        if (oneOk?.ops[op] !== undefined) row.speedup_1thread = theirs.ops[op] / oneOk.ops[op];
      }
      opRows.push(row);
    }
    for (const s of STAGES) {
      const row: Row = { stage: s, poly_n: polyN, ms: ours.helora.medianUs[s] / 1e3, threads };
      if (oneOk) row.one_thread_ms = oneOk.helora.medianUs[s] / 1e3;
      if (theirs) {
        row.node_seal_ms = theirs.helora[s] / 1e3;
        row.speedup = theirs.helora[s] / ours.helora.medianUs[s];
        if (oneOk) row.speedup_1thread = theirs.helora[s] / oneOk.helora.medianUs[s];
      }
      tokRows.push(row);
    }
    result.summary[`helora_ms_per_token_${polyN}`] = ours.helora.medianUs.total / 1e3;
    result.summary[`helora_max_abs_error_${polyN}`] = ours.helora.maxAbsError;
    if (oneOk) result.summary[`helora_ms_per_token_${polyN}_1thread`] = oneOk.helora.medianUs.total / 1e3;
    if (theirs) {
      result.summary[`node_seal_ms_per_token_${polyN}`] = theirs.helora.total / 1e3;
      result.summary[`speedup_vs_node_seal_${polyN}`] = theirs.helora.total / ours.helora.medianUs.total;
      if (oneOk) result.summary[`speedup_vs_node_seal_${polyN}_1thread`] = theirs.helora.total / oneOk.helora.medianUs.total;
      result.summary[`node_seal_max_abs_error_${polyN}`] = theirs.maxAbsError;
    }
    result.summary[`insecure_${polyN}`] = ours.info.insecure;
    result.summary[`replicas_${polyN}`] = ours.helora.replicas;
    result.summary[`products_${polyN}`] = ours.helora.products;
  }
  printTable(opRows, undefined, `CKKS per-operation medians (us), tensafe CPU (${threads} threads and 1 thread) vs node-seal (1 thread), ${result.device}`);
  printTable(tokRows, undefined, 'HE-LoRA per token (ms), d = 1536, r = 32');
  result.rows = [...opRows.map((r) => ({ kind: 'op', ...r })), ...tokRows.map((r) => ({ kind: 'helora_stage', ...r }))];
  // A shared CPU machine makes these noisy: record how loaded it was.
  notes.push(`load average at the end (1/5/15 min): ${os.loadavg().map((x) => x.toFixed(1)).join(' / ')} on ${os.cpus().length} CPUs`);
  result.notes = notes;
  return result;
}

// ---- CUDA run -------------------------------------------------------------------------------------

/**
 * CITED, not measured here: field-notes section 4 and the seed analysis. Phantom-FHE: the H200
 * rows, the equal-terms ones (same primes [60, 40, 60] as ours; per-op figures by both methods).
 */
const CITED: Row[] = [
  { source: 'original (CuKKS), RTX A2000, CITED', poly_n: 16384, method: 'not stated', encrypt_us: 10200, ct_pt_multiply_us: 4800, decrypt_us: 7100, helora_ms: 80 },
  { source: 'original (CuKKS), RTX A2000, CITED', poly_n: 32768, method: 'not stated', encrypt_us: 23100, ct_pt_multiply_us: 11000, decrypt_us: 16400, helora_ms: 132.7 },
  { source: 'Phantom-FHE, H200, [60,40,60], CITED', poly_n: 8192, method: 'per token', helora_ms: 2.263 },
  { source: 'Phantom-FHE, H200, [60,40,60], CITED', poly_n: 16384, method: `batched (${CUDA_OP_BATCH} ops / ${CUDA_OP_BATCH})`, primes: 3,
    encode_us: 158, encrypt_us: 232, encrypt_symmetric_us: 136, ct_pt_multiply_us: 13.9, decrypt_us: 10.1, decode_us: 114, helora_ms: 1.473 },
  { source: 'Phantom-FHE, H200, [60,40,60], CITED', poly_n: 16384, method: 'single op', primes: 3,
    encode_us: 139, encrypt_us: 271, encrypt_symmetric_us: 139, ct_pt_multiply_us: 17.4, decrypt_us: 13.0, decode_us: 114 },
  { source: 'Phantom-FHE, H200, [60,40,60], CITED', poly_n: 32768, method: 'per token', helora_ms: 1.46 },
];

async function runCuda(args: BenchArgs): Promise<ResultFile> {
  const backend = resolveBackend('cuda');
  const sizes = args.quick ? [16384] : [8192, 16384, 32768, 65536];
  const opIters = Number(args.options.iterations ?? (args.quick ? 20 : 200));
  const tokens = Number(args.options.tokens ?? (args.quick ? 10 : 50));
  const result = newResult('ckks', 'cuda', deviceName(backend), args.argv);
  const missing: string[] = [];
  const opRows: Row[] = [];
  const tokRows: Row[] = [];
  let singleMeasured = false;
  for (const polyN of sizes) {
    const ours = await runOurs(backend, polyN, opIters, tokens);
    const p = primesLabel(ours.info);
    const batched = `batched (${CUDA_OP_BATCH} ops / ${CUDA_OP_BATCH})`;
    const row: Row = { source: 'tensafe (measured)', poly_n: polyN, method: batched, primes: p.primes };
    const singleRow: Row = { source: 'tensafe (measured)', poly_n: polyN, method: 'single op', primes: p.primes };
    missing.push(...ours.missing);
    for (const op of OPS) {
      if (ours.ops[op] === undefined) continue;
      const name = `${op === 'multiply_plain' ? 'ct_pt_multiply' : op}_us`;
      opRows.push({ op, poly_n: polyN, method: 'batched', ops_per_sample: CUDA_OP_BATCH, ...p, median_us: ours.ops[op], min_us: ours.spread[op].min, max_us: ours.spread[op].max, runs: opIters });
      row[name] = ours.ops[op];
      const one = ours.single[op];
      if (one) {
        singleMeasured = true;
        opRows.push({ op, poly_n: polyN, method: 'single', ops_per_sample: 1, ...p, median_us: one.medianUs, min_us: one.minUs, max_us: one.maxUs, runs: one.runs });
        singleRow[name] = one.medianUs;
      }
    }
    row.helora_ms = ours.helora.medianUs.total / 1e3;
    tokRows.push(row);
    if (Object.keys(singleRow).some((k) => k.endsWith('_us'))) tokRows.push(singleRow);
    for (const s of STAGES) opRows.push({ op: `helora_${s}`, poly_n: polyN, method: 'per token', ...p, median_us: ours.helora.medianUs[s], runs: tokens });
    result.summary[`helora_ms_per_token_${polyN}`] = ours.helora.medianUs.total / 1e3;
    result.summary[`helora_max_abs_error_${polyN}`] = ours.helora.maxAbsError;
    if (polyN === 16384) {
      const put = (key: string, v: number | undefined) => {
        if (v !== undefined) result.summary[key] = v;
      };
      put('encrypt_us_16384', ours.ops.encrypt);
      put('ct_pt_multiply_us_16384', ours.ops.multiply_plain);
      put('decrypt_us_16384', ours.ops.decrypt);
      put('decode_us_16384', ours.ops.decode);
      put('encrypt_single_us_16384', ours.single.encrypt?.medianUs);
      put('ct_pt_multiply_single_us_16384', ours.single.multiply_plain?.medianUs);
      put('decrypt_single_us_16384', ours.single.decrypt?.medianUs);
      put('decode_single_us_16384', ours.single.decode?.medianUs);
      result.summary.primes = p.primes;
      result.summary.op_batch = CUDA_OP_BATCH;
    }
  }
  if (!singleMeasured) {
    missing.push('single-op latency not measured: this engine\'s benchmarkOp has no { batch: 1 } option (only the batched figures are given)');
  }
  printTable(opRows, undefined, `CKKS CUDA per-operation medians (us), ${result.device}`);
  printTable([...tokRows, ...CITED], undefined, 'measured here vs CITED figures (not measured in this run)');
  result.rows = opRows;
  result.notes = [
    'parameters: primes [60, 40] + special prime 60 (3 primes), scale 2^40; timed natively with CUDA events',
    `per-op method 'batched': ${CUDA_OP_BATCH} back-to-back ops between two CUDA events, divided by ${CUDA_OP_BATCH} (steady-state cost per op); ` +
      "'single': one op between two events (latency including the launch); 'per token': one HE-LoRA token's stage, each stage a CUDA graph",
    'CITED rows (original on RTX A2000; Phantom-FHE on an H200 with the same primes [60, 40, 60], both methods) come from field-notes section 4; they are not measured in this run',
    ...missing,
  ];
  return result;
}

export async function run(args: BenchArgs): Promise<void> {
  const result = args.backend === 'cuda' ? await runCuda(args) : await runCpu(args);
  // eslint-disable-next-line no-console
  console.log(`wrote ${writeResult(result)}`);
}
