/**
 * `npm run bench -- private-site [--backend cpu|cuda|auto] [--quick] [--iterations N]`
 *
 * Where the time of one private site goes: the protocol steps of one adapted site, run
 * in-process (no network) on one backend, each step's wall time and its phases: the JS steps
 * (deserialise, share arithmetic, reading outputs) timed here and the fused native calls'
 * own phases (`timings` option of sanitizeProducts, reencryptReplies, decryptReplies: a native
 * steady clock; on the GPU the `device` phase is the one synchronisation, device work included).
 * Sites: the Qwen2.5-1.5B shape, adapter common_r16 (r 16, alpha 32, q_proj + v_proj): one
 * `layers` site (q + v of layer 0: rank 32, in 1536, out 1792) under both protocols at their
 * default parameters, and the `final-hidden` site (q_proj's pair on the final hidden state) under
 * two-round. Flooding lambda 40. Medians over the iterations after two warm-ups.
 */
import { Ckks } from '../engine/ckks/ckks';
import { deviceName, resolveBackend } from '../engine/info';
import { COMMON_PRIVATE_EXPERT, privateExpertsFor } from '../cli/private';
import { OneRoundClient, OneRoundServer, traceSteps } from '../private/one-round';
import { defaultCkksParams, DEFAULT_FLOOD_BITS, modulusFacts, planSites, type PrivateParams, type ProtocolName } from '../private/params';
import type { PhaseLog } from '../private/phase-log';
import { adapterSites, sitePublic, type PlacementName } from '../private/sites';
import { TwoRoundClient, TwoRoundServer } from '../private/two-round';
import type { OneRoundLayout, TwoRoundLayout } from '../private/layout';
import type { BenchArgs } from './index';
import { newResult, printTable, stats, writeResult, type Row } from './results';

const SOURCE = 'qwen2.5-1.5b-shape';

type Side = 'client' | 'server';
interface Step {
  name: string;
  side: Side;
}
const TWO_ROUND_STEPS: Step[] = [
  { name: 'client_round1', side: 'client' },
  { name: 'server_round1', side: 'server' },
  { name: 'client_round2', side: 'client' },
  { name: 'server_round2', side: 'server' },
  { name: 'client_finish', side: 'client' },
];
const ONE_ROUND_STEPS: Step[] = [
  { name: 'client_request', side: 'client' },
  { name: 'server_answer', side: 'server' },
  { name: 'client_finish', side: 'client' },
];

/** One site's round trip, step by step: per step its wall ms and its phase log (microseconds). */
type SiteRun = (x: Float64Array) => Promise<Array<{ ms: number; phases: PhaseLog }>>;

async function timed<T>(out: Array<{ ms: number; phases: PhaseLog }>, fn: (phases: PhaseLog) => T | Promise<T>): Promise<T> {
  const phases: PhaseLog = {};
  const t0 = performance.now();
  const r = await fn(phases);
  out.push({ ms: performance.now() - t0, phases });
  return r;
}

async function siteRunner(backend: 'cpu' | 'cuda', placement: PlacementName, protocol: ProtocolName): Promise<{ run: SiteRun; dispose: () => void; polyN: number }> {
  const experts = privateExpertsFor(SOURCE, 0, 1);
  const adapter = experts.get(COMMON_PRIVATE_EXPERT.name);
  const site = adapterSites(adapter, placement, 1536)[0];
  const ckksParams = defaultCkksParams(protocol, [sitePublic(site)]);
  const params: PrivateParams = { protocol, placement, expert: adapter.name, floodBits: DEFAULT_FLOOD_BITS, ckks: ckksParams };
  // the client's and the server's contexts, as in a session (same parameters, separate keys material)
  const c = Ckks.create({ ...ckksParams, backend });
  const s = Ckks.create({ ...ckksParams, backend });
  const { secretKey, publicKey } = c.generateKeys();
  const pk = s.deserializePublicKey(c.serialize(publicKey));
  const [plan] = planSites(params, [sitePublic(site)], modulusFacts(c));
  const moduli = c.info().moduli;
  const dispose = () => {
    c.dispose();
    s.dispose();
  };
  if (protocol === 'two-round') {
    const cl = new TwoRoundClient(c, secretKey, plan.site, plan.layout as TwoRoundLayout, plan.budget, moduli);
    const sv = new TwoRoundServer(s, pk, site, plan.layout as TwoRoundLayout, plan.budget, moduli);
    const run: SiteRun = async (x) => {
      const out: Array<{ ms: number; phases: PhaseLog }> = [];
      const r1 = await timed(out, (ph) => cl.round1(x, undefined, ph));
      const a1 = await timed(out, (ph) => sv.round1(r1.request, ph));
      const q2 = await timed(out, (ph) => cl.round2(a1.replies, ph));
      const a2 = await timed(out, (ph) => sv.round2(q2, a1.share, ph));
      await timed(out, (ph) => cl.finish(a2, r1.xShift, ph));
      return out;
    };
    return { run, dispose, polyN: ckksParams.polyN };
  }
  const gk = await c.generateGaloisKeys(secretKey, traceSteps(plan.layout as OneRoundLayout));
  const cl = new OneRoundClient(c, secretKey, plan.site, plan.layout as OneRoundLayout, plan.budget, moduli);
  const sv = new OneRoundServer(s, pk, s.deserializeGaloisKeys(c.serialize(gk)), site, plan.layout as OneRoundLayout, plan.budget, moduli);
  const run: SiteRun = async (x) => {
    const out: Array<{ ms: number; phases: PhaseLog }> = [];
    const r = await timed(out, (ph) => cl.request(x, undefined, ph));
    const a = await timed(out, (ph) => sv.answer(r.request, ph));
    await timed(out, (ph) => cl.finish(a, r.xShift, ph));
    return out;
  };
  return { run, dispose, polyN: ckksParams.polyN };
}

export async function run(args: BenchArgs): Promise<void> {
  const backend = resolveBackend(args.backend);
  const iterations = Number(args.options.iterations ?? (args.quick ? 5 : 20));
  const result = newResult('private-site', backend, deviceName(backend), args.argv);
  const cases: Array<{ placement: PlacementName; protocol: ProtocolName }> = [
    { placement: 'layers', protocol: 'two-round' },
    { placement: 'layers', protocol: 'one-round' },
    { placement: 'final-hidden', protocol: 'two-round' },
  ];
  const stepRows: Row[] = [];
  const phaseRows: Row[] = [];
  for (const { placement, protocol } of cases) {
    const { run, dispose, polyN } = await siteRunner(backend, placement, protocol);
    const steps = protocol === 'two-round' ? TWO_ROUND_STEPS : ONE_ROUND_STEPS;
    try {
      const samples: Array<Array<{ ms: number; phases: PhaseLog }>> = [];
      for (let i = 0; i < iterations + 2; i++) {
        // inputs like a post-norm hidden state: unit RMS
        const x = Float64Array.from({ length: 1536 }, () => (Math.random() * 2 - 1) * Math.sqrt(3));
        const r = await run(x);
        if (i >= 2) samples.push(r);
      }
      const side: Record<Side, number[]> = { client: samples.map(() => 0), server: samples.map(() => 0) };
      steps.forEach((st, k) => {
        const ms = samples.map((s) => s[k].ms);
        ms.forEach((v, i) => (side[st.side][i] += v));
        const m = stats(ms);
        stepRows.push({ placement, protocol, poly_n: polyN, step: st.name, side: st.side, median_ms: m.median, p10_ms: m.p10, p90_ms: m.p90, runs: m.runs });
        const names = [...new Set(samples.flatMap((s) => Object.keys(s[k].phases)))];
        for (const ph of names) {
          const us = stats(samples.map((s) => s[k].phases[ph] ?? 0));
          phaseRows.push({ placement, protocol, step: st.name, phase: ph, median_us: us.median, p90_us: us.p90, runs: us.runs });
        }
      });
      for (const sd of ['client', 'server'] as const) {
        const m = stats(side[sd]).median;
        stepRows.push({ placement, protocol, poly_n: polyN, step: `${sd} total`, side: sd, median_ms: m, runs: samples.length });
        result.summary[`${placement === 'layers' ? 'site' : 'final_hidden'}_${sd}_ms_${protocol.replace('-', '_')}`] = m;
      }
    } finally {
      dispose();
    }
  }
  printTable(stepRows, ['placement', 'protocol', 'poly_n', 'step', 'side', 'median_ms', 'p10_ms', 'p90_ms', 'runs'], `one private site per step on ${result.device} (${backend}, in-process)`);
  printTable(phaseRows, ['placement', 'protocol', 'step', 'phase', 'median_us', 'p90_us'], 'phases (us; `name.phase` = the fused native call\'s own clock)');
  result.rows = [...stepRows.map((r) => ({ table: 'steps', ...r })), ...phaseRows.map((r) => ({ table: 'phases', ...r }))];
  result.notes = [
    `Model shape ${SOURCE}; adapter ${COMMON_PRIVATE_EXPERT.name}: r ${COMMON_PRIVATE_EXPERT.r}, alpha ${COMMON_PRIVATE_EXPERT.alpha}, ${COMMON_PRIVATE_EXPERT.targetModules.join(' + ')}; the layers site is q + v of layer 0; flooding lambda ${DEFAULT_FLOOD_BITS}.`,
    'Client and server contexts in one process on the same backend, no network: the HE and serialisation cost of a site alone.',
    'CPU phases of products (or replies) that run in parallel are summed (thread time); a native call\'s `wall` phase is its own wall time.',
  ];
  console.log(`wrote ${writeResult(result)}`);
}
