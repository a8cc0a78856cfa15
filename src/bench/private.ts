/**
 * `npm run bench -- private [--backend cpu|cuda|auto] [--quick] [--tokens N] [--rtts 0,1,10,50]
 *                           [--poly-ns 8192,16384] [--placements final-hidden,layers]
 *                           [--protocols two-round,one-round]`
 *
 * The cost of privacy: generation in the private (client-key) mode with the client and the server
 * in two processes on this machine, over a real WebSocket on loopback. The server process
 * (`tensafe serve-private`) holds the adapters and runs its HE on the same backend; this process is
 * the client: the base model, the key, encryption and decryption. Per placement x protocol x
 * polyN: tok/s (decode rate: tokens after the first, whose prefill is left out), ms per token by
 * stage, bytes per token up and down, rounds per token; at loopback (RTT 0) and with the client's
 * network model adding 1, 10 and 50 ms of round-trip time. Beside it, in the same run:
 *   - server-key HE-LoRA (the Pipeline, final-hidden, coefficients): `he_lora_tok_s`;
 *   - the base model alone (no adapter) in this process;
 *   - precision against float64 of one site per protocol and flooding parameter lambda
 *     (0 = flooding off, insecure), in-process, so the cost of flooding in bits is measured.
 * Model: the Qwen2.5-1.5B shape (random weights; CPU: its first 4 layers), adapter common_r16
 * (r 16, alpha 32, q_proj + v_proj on every layer of the model), greedy, DP off.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { Ckks } from '../engine/ckks/ckks';
import { deviceName, resolveBackend, resolveDevice, type Backend } from '../engine/info';
import { Model } from '../engine/model/model';
import { packageRoot } from '../engine/native';
import { loraDeltaReference } from '../pipeline/adapter';
import { Pipeline } from '../pipeline/pipeline';
import { PrivateClient, PRIVATE_STAGES } from '../private/client';
import { OneRoundClient, OneRoundServer, traceSteps } from '../private/one-round';
import { defaultCkksParams, modulusFacts, planSites, type PrivateParams, type ProtocolName } from '../private/params';
import { adapterSites, sitePublic, type PlacementName } from '../private/sites';
import { TwoRoundClient, TwoRoundServer } from '../private/two-round';
import type { OneRoundLayout, TwoRoundLayout } from '../private/layout';
import { COMMON_PRIVATE_EXPERT, privateExpertsFor } from '../cli/private';
import type { BenchArgs } from './index';
import { deviceSlug } from '../results';
import { openWsFloor } from './ws-floor';
import { newResult, printTable, stats, writeResult, type Row } from './results';

const SOURCE = 'qwen2.5-1.5b-shape';
const PROMPT = 'What is a savings account?';

function list<T extends string | number>(v: string | undefined, def: T[], parse: (s: string) => T): T[] {
  return v === undefined ? def : v.split(',').map((s) => parse(s.trim()));
}

/** Starts `tensafe serve-private` in a child process; resolves with its URL. */
function startServerProcess(backend: Backend, numLayers: number | undefined, device?: number): Promise<{ url: string; child: ChildProcess }> {
  const args = [path.join(packageRoot(), 'dist', 'cli', 'main.js'), 'serve-private', '--port', '0', '--backend', backend, '--model', SOURCE, '--allow-insecure', '--max-sessions', '4'];
  if (numLayers) args.push('--num-layers', String(numLayers));
  if (device !== undefined) args.push('--device', String(device));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => l.startsWith('{"listening"'));
      if (line) resolve({ url: JSON.parse(line).listening, child });
    });
    child.once('exit', (code) => reject(new Error(`serve-private exited with code ${code} before listening`)));
  });
}

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let n = 0;
  let d = 0;
  for (let i = 0; i < want.length; i++) {
    n += (got[i] - want[i]) ** 2;
    d += want[i] ** 2;
  }
  return Math.sqrt(n / d);
}

/** Precision of one layer site (q + v of layer 0) against float64, per protocol and lambda, in-process. */
async function precisionRows(backend: Backend, numLayers: number | undefined): Promise<Row[]> {
  const experts = privateExpertsFor(SOURCE, 0, numLayers);
  const adapter = experts.get(COMMON_PRIVATE_EXPERT.name);
  const site = adapterSites(adapter, 'layers', 1536)[0];
  const rows: Row[] = [];
  for (const protocol of ['two-round', 'one-round'] as const) {
    const ckks = defaultCkksParams(protocol, [sitePublic(site)]);
    for (const lambda of [0, 20, 30, 40, 60]) {
      const params: PrivateParams = { protocol, placement: 'layers', expert: adapter.name, floodBits: lambda, ckks: { ...ckks, allowInsecure: lambda === 0 } };
      const c = Ckks.create({ ...params.ckks, backend });
      const s = Ckks.create({ ...params.ckks, backend });
      try {
        const { secretKey, publicKey } = c.generateKeys();
        const pk = s.deserializePublicKey(c.serialize(publicKey));
        let plan;
        try {
          [plan] = planSites(params, [sitePublic(site)], modulusFacts(c));
        } catch (err) {
          rows.push({ protocol, flood_bits: lambda, poly_n: ckks.polyN, rel_error: null, note: (err as Error).message.slice(0, 80) });
          continue;
        }
        const moduli = c.info().moduli;
        const errs: number[] = [];
        const pairs = site.shape.modules.map((m) => adapter.pair(0, m.module as never)!);
        let run: (x: Float64Array) => Promise<Float64Array>;
        if (protocol === 'two-round') {
          const cl = new TwoRoundClient(c, secretKey, plan.site, plan.layout as TwoRoundLayout, plan.budget, moduli);
          const sv = new TwoRoundServer(s, pk, site, plan.layout as TwoRoundLayout, plan.budget, moduli);
          run = async (x) => {
            const r1 = cl.round1(x);
            const a1 = await sv.round1(r1.request);
            return cl.finish(await sv.round2(await cl.round2(a1.replies), a1.share), r1.xShift);
          };
        } else {
          const gk = await c.generateGaloisKeys(secretKey, traceSteps(plan.layout as OneRoundLayout));
          const cl = new OneRoundClient(c, secretKey, plan.site, plan.layout as OneRoundLayout, plan.budget, moduli);
          const sv = new OneRoundServer(s, pk, s.deserializeGaloisKeys(c.serialize(gk)), site, plan.layout as OneRoundLayout, plan.budget, moduli);
          run = async (x) => {
            const r = cl.request(x);
            return cl.finish(await sv.answer(r.request), r.xShift);
          };
        }
        for (let t = 0; t < 3; t++) {
          // inputs like a post-norm hidden state: unit RMS
          const x = Float64Array.from({ length: 1536 }, () => (Math.random() * 2 - 1) * Math.sqrt(3));
          const want = pairs.flatMap((p) => [...loraDeltaReference(p, adapter.scaling, x)]);
          errs.push(relErr(await run(x), want));
        }
        rows.push({ protocol, flood_bits: lambda, poly_n: ckks.polyN, primes: ckks.primeBits.length, rel_error: Math.max(...errs), flood_log2: Number(plan.budget.floodLog2.toFixed(1)), beta_log2: Number(plan.budget.betaLog2.toFixed(1)), insecure: lambda === 0 });
      } finally {
        c.dispose();
        s.dispose();
      }
    }
  }
  return rows;
}

export async function run(args: BenchArgs): Promise<void> {
  const backend = resolveBackend(args.backend);
  const quick = args.quick;
  const numLayers = backend === 'cpu' ? 4 : undefined;
  const tokens = Number(args.options.tokens ?? (quick ? 6 : backend === 'cuda' ? 64 : 12));
  const rtts = list(args.options.rtts, quick ? [0, 10] : [0, 1, 10, 50], Number);
  const placements = list<PlacementName>(args.options.placements, ['final-hidden', 'layers'], (s) => s as PlacementName);
  const protocols = list<ProtocolName>(args.options.protocols, ['two-round', 'one-round'], (s) => s as ProtocolName);
  const polyNsOpt = args.options['poly-ns'] ? list(args.options['poly-ns'], [], Number) : undefined;
  // Two GPUs (issue 14): the client's model and CKKS on --client-device, the server's HE on --server-device.
  const devOpt = (k: string): number | undefined => {
    const v = args.options[k];
    if (v === undefined) return undefined;
    if (backend !== 'cuda') throw new RangeError(`--${k} needs --backend cuda`);
    return resolveDevice('cuda', Number(v), `--${k}`).device;
  };
  const clientDevice = devOpt('client-device');
  const serverDevice = devOpt('server-device');
  const twoGpus = clientDevice !== undefined && serverDevice !== undefined && clientDevice !== serverDevice;
  const result = newResult('private', backend, deviceName(backend), args.argv);
  const notes: string[] = [
    `Client and server are two processes on this machine (${result.device}), real WebSocket on loopback; the server's HE runs on the same backend (${backend}) as the client.`,
    `Model: ${SOURCE} (random weights${numLayers ? `, first ${numLayers} layers` : ''}); adapter ${COMMON_PRIVATE_EXPERT.name}: r ${COMMON_PRIVATE_EXPERT.r}, alpha ${COMMON_PRIVATE_EXPERT.alpha}, ${COMMON_PRIVATE_EXPERT.targetModules.join(' + ')} on every layer. Greedy, DP off, prompt ${JSON.stringify(PROMPT)}.`,
    'tok/s = decode rate over the tokens after the first (whose prefill, with a site per prompt position for layers, is left out); ms per stage = medians over those tokens; RTT rows add the client-side network model (half the RTT before each frame leaves, half before a reply is delivered).',
    'Flooding: lambda 40 (statistical distance 2^-40 per read coefficient) unless a row says otherwise; the precision rows measure lambda 0 (flooding off, insecure) to 60 against float64.',
  ];
  const shapeNote = numLayers ? 'qwen2.5-1.5b-shape (4 layers)' : 'qwen2.5-1.5b-shape';

  // ---- server-key HE-LoRA and the base model, same run ----
  const pipe = await Pipeline.open({ backend, model: SOURCE, numLayers, adapters: privateExpertsFor(SOURCE, 0, numLayers).root, packing: 'coefficients', decrypt: 'batched', polyN: 8192 });
  const rows: Row[] = [];
  let heLoraTokS = 0;
  let baseTokS = 0;
  try {
    for (const mode of ['base', 'he-lora'] as const) {
      const samples: number[] = [];
      for (let r = 0; r < (quick ? 1 : 3); r++) {
        const { summary } = await pipe.run(PROMPT, { mode, expert: COMMON_PRIVATE_EXPERT.name, maxTokens: Math.max(tokens, 8), temperature: 0 });
        samples.push(summary.tokPerS);
      }
      const t = stats(samples).median;
      if (mode === 'base') baseTokS = t;
      else heLoraTokS = t;
      rows.push({ key_owner: 'server', placement: 'final-hidden', protocol: mode === 'base' ? 'none (base model)' : 'in-process', poly_n: 8192, rtt_ms: 0, tok_s: t, ms_per_token: 1000 / t });
    }
  } finally {
    await pipe.dispose();
  }

  // ---- private mode: two processes ----
  const { url, child } = await startServerProcess(backend, numLayers, serverDevice);
  const model = await Model.load(SOURCE, { backend, contextLength: 1024, ...(numLayers ? { numLayers } : {}), ...(clientDevice !== undefined ? { device: clientDevice } : {}) });
  const best: Record<string, { tokS: number; row: Row }> = {};
  try {
    for (const placement of placements) {
      for (const protocol of protocols) {
        const hello = privateExpertsFor(SOURCE, 0, numLayers);
        const sites = adapterSites(hello.get(COMMON_PRIVATE_EXPERT.name), placement, model.config.hiddenSize).map(sitePublic);
        const polyNs = polyNsOpt ?? [defaultCkksParams(protocol, sites).polyN];
        for (const polyN of polyNs) {
          for (const rtt of rtts) {
            let client: PrivateClient | undefined;
            try {
              client = await PrivateClient.open(model, { url, expert: COMMON_PRIVATE_EXPERT.name, placement, protocol, ckks: { polyN }, heBackend: backend, ...(clientDevice !== undefined ? { device: clientDevice } : {}), network: { rttMs: rtt } });
              const n = placement === 'layers' && backend === 'cpu' ? Math.min(tokens, 6) : rtt >= 10 && placement === 'layers' ? Math.min(tokens, 8) : tokens;
              const { summary } = await client.run(PROMPT, { maxTokens: n, stopAtEos: false });
              const row: Row = {
                key_owner: 'client',
                placement,
                protocol,
                poly_n: polyN,
                rtt_ms: rtt,
                tok_s: summary.tokPerS === 0 ? null : (summary.tokens - 1) / ((summary.tokens - 1) / summary.tokPerS),
                ms_per_token: 0,
                sites_per_token: client.sites.length,
                rounds_per_token: summary.roundsPerToken,
                bytes_up_per_token: summary.bytesPerToken.up,
                bytes_down_per_token: summary.bytesPerToken.down,
                setup_ms: summary.setup.ms,
                setup_bytes_up: summary.setup.bytesUp,
                tokens: summary.tokens,
              };
              // decode rate: the steady tokens' stage sums
              const perToken = PRIVATE_STAGES.reduce((s, st) => s + (summary.stageMedians[st] || 0), 0);
              for (const st of PRIVATE_STAGES) row[`${st}_ms`] = summary.stageMedians[st];
              row.ms_per_token = perToken;
              row.tok_s = 1000 / perToken;
              rows.push(row);
              const key = `${placement}:${rtt}`;
              if (!best[key] || (row.tok_s as number) > best[key].tokS) best[key] = { tokS: row.tok_s as number, row };
            } catch (err) {
              rows.push({ key_owner: 'client', placement, protocol, poly_n: polyN, rtt_ms: rtt, tok_s: null, note: (err as Error).message.slice(0, 120) });
            } finally {
              await client?.dispose();
            }
          }
        }
      }
    }
  } finally {
    model.dispose();
    child.kill('SIGTERM');
  }

  // The transport's floor beside each loopback row: rounds x a raw ws round trip of the row's
  // mean frame sizes (bench/ws-floor.ts); network_ms above it is our framing and scheduling.
  const floor = await openWsFloor();
  try {
    for (const r of rows) {
      const rounds = r.rounds_per_token as number | undefined;
      if (r.key_owner !== 'client' || r.rtt_ms !== 0 || !rounds || typeof r.bytes_up_per_token !== 'number') continue;
      const up = Math.round(r.bytes_up_per_token / rounds);
      const down = Math.round((r.bytes_down_per_token as number) / rounds);
      r.network_floor_ms = rounds * (await floor.roundTripMs(up, down, rounds > 8 ? 20 : 50));
    }
  } finally {
    await floor.close();
  }
  notes.push('network_floor_ms (loopback rows): rounds per token x the median round trip of a raw WebSocket (same ws library and options, a second process, no framing or HE) carrying the row\'s mean frame sizes; network_ms minus it is what the private endpoint\'s framing, parsing and scheduling add.');
  const precision = await precisionRows(backend, numLayers);
  printTable(
    rows,
    ['key_owner', 'placement', 'protocol', 'poly_n', 'rtt_ms', 'tok_s', 'ms_per_token', 'forward_ms', 'client_encrypt_ms', 'network_ms', 'network_floor_ms', 'server_he_ms', 'client_decrypt_ms', 'lm_head_ms', 'rounds_per_token', 'bytes_up_per_token', 'bytes_down_per_token', 'note'],
    `private mode on ${result.device} (${shapeNote}, ${COMMON_PRIVATE_EXPERT.name})`,
  );
  printTable(precision, ['protocol', 'flood_bits', 'poly_n', 'primes', 'rel_error', 'flood_log2', 'beta_log2', 'note'], 'precision of one site (q+v of layer 0) against float64');
  const fh = best['final-hidden:0'];
  const ly = best['layers:0'];
  const ly10 = best['layers:10'];
  if (fh) result.summary.final_hidden_tok_s = fh.tokS;
  if (fh) result.summary.final_hidden_best_protocol = String(fh.row.protocol);
  if (fh && typeof fh.row.network_floor_ms === 'number') {
    result.summary.final_hidden_network_ms = fh.row.network_ms as number;
    result.summary.final_hidden_network_floor_ms = fh.row.network_floor_ms;
  }
  if (ly) {
    result.summary.layers_tok_s = ly.tokS;
    result.summary.layers_best_protocol = String(ly.row.protocol);
    result.summary.layers_bytes_per_token = (ly.row.bytes_up_per_token as number) + (ly.row.bytes_down_per_token as number);
  }
  if (ly10) result.summary.layers_tok_s_rtt_10ms = ly10.tokS;
  result.summary.he_lora_tok_s = heLoraTokS;
  result.summary.base_tok_s = baseTokS;
  if (fh && heLoraTokS) result.summary.final_hidden_over_server_key = fh.tokS / heLoraTokS;
  if (twoGpus) {
    // The two-GPU run is its own file (results.md): the headline keys carry the suffix so a reader never
    // mistakes a client-on-one-GPU, server-on-another number for the one-GPU figure.
    if (fh) result.summary.final_hidden_tok_s_two_gpus = fh.tokS;
    if (ly) result.summary.layers_tok_s_two_gpus = ly.tokS;
    result.summary.client_device = clientDevice!;
    result.summary.server_device = serverDevice!;
    notes.push(`Two GPUs: the client (base model and its CKKS) on CUDA device ${clientDevice}, the server's HE on device ${serverDevice}; the server-key HE-LoRA row ran on the client's device.`);
  }
  result.rows = [...rows.map((r) => ({ table: 'generation', ...r })), ...precision.map((r) => ({ table: 'precision', ...r }))];
  result.notes = notes;
  console.log(`wrote ${writeResult(result, undefined, twoGpus ? `private-${backend}-2x-${deviceSlug(result.device)}.json` : undefined)}`);
}
