/**
 * `npm start`: the HE-LoRA demo. Prints the engine facts, opens the embedded default (CPU: the
 * Qwen2.5-1.5B shape with 4 of its 28 layers; GPU: the full 1.5B shape; random weights, real
 * Qwen vocabulary), streams a short answer with the adapter under CKKS, prints the per-token
 * breakdown in the original's format with base and HE tok/s, and writes one figure
 * (figures/demo-breakdown.html) beside the original's A2000 breakdown.
 *
 * Options: --backend cpu|cuda|auto, --tokens N, --prompt "...", --packing P, --poly-n N,
 * --dp off|analytic|classic|original, --out <figure path without extension>.
 */
import * as path from 'node:path';
import { deviceName, info, resolveBackend, type BackendChoice } from '../engine/info';
import { packageRoot } from '../engine/native';
import { heMs } from '../pipeline/records';
import type { DpMechanism, GenerationSummary, Packing, PipelineOptions, StageName, StageTimes, TokenEvent } from '../pipeline/types';

function parseArgs(argv: string[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new RangeError(`demo: unexpected argument '${a}'`);
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      o[a.slice(2)] = next;
      i++;
    } else o[a.slice(2)] = 'true';
  }
  return o;
}

const LINES: Array<[StageName, string, string]> = [
  ['forward', 'Transformer forward', ''],
  ['dp_noise', 'DP noise injection', ''],
  ['encode', 'CKKS encode', ''],
  ['encrypt', 'CKKS encrypt', ''],
  ['ct_pt_multiply', 'ct*pt multiply', ''],
  ['decrypt', 'Decrypt', ''],
  ['transfer', 'GPU→CPU transfer', ''],
  ['extract_sum', 'Extract + sum', ''],
  ['lora_b', 'LoRA-B plaintext mul', ''],
  ['lm_head', 'LM head projection', ''],
  ['sampling', 'Sampling', ''],
];

function fmtMs(v: number): string {
  return v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v >= 0.01 ? v.toFixed(3) : v.toPrecision(2);
}

/** The original's tree format: "Total: ~X ms/token" then one "├── stage: ~Y ms (note)" per stage. */
export function formatBreakdown(stages: StageTimes, total: number, notes: Partial<Record<StageName, string>> = {}): string {
  const rows = LINES.filter(([s]) => stages[s] !== undefined);
  const out = [`Total:                    ~${fmtMs(total)} ms/token`];
  rows.forEach(([s, label], i) => {
    const branch = i === rows.length - 1 ? '└──' : '├──';
    const left = `${branch} ${label}:`.padEnd(26);
    const note = notes[s] ? `   (${notes[s]})` : '';
    out.push(`${left}${fmtMs(stages[s]!).padStart(8)} ms${note}`);
  });
  return out.join('\n');
}

export async function runDemo(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const i = info();
  const backend = resolveBackend((args.backend ?? 'auto') as BackendChoice);
  console.log(`tensafe ${i.version}: backends built [${i.backendsBuilt.join(', ')}], using ${backend}`);
  console.log(`CPU: ${i.cpuModel}, ${i.cpuThreads} threads`);
  if (i.cuda.available) {
    for (const d of i.cuda.devices) {
      console.log(`GPU ${d.index}: ${d.name}, sm_${d.computeCapability.replace('.', '')}, ${(d.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB, driver ${i.cuda.driverVersion}`);
    }
  } else {
    console.log(`GPU: none (${i.cuda.unavailableReason})`);
  }

  const { Pipeline } = await import('../pipeline/pipeline');
  const maxTokens = Number(args.tokens ?? 16);
  const prompt = args.prompt ?? 'What is a savings account?';
  const dpMech = (args.dp ?? 'analytic') as DpMechanism;
  const he: PipelineOptions = {
    mode: 'he-lora',
    maxTokens,
    temperature: 0,
    packing: (args.packing ?? 'coefficients') as Packing,
    polyN: Number(args['poly-n'] ?? 16384),
    decrypt: 'batched',
    dp: { mechanism: dpMech, epsilon: 1, delta: 1e-5 },
  };
  const t0 = Date.now();
  console.log('\nloading the model and the experts ...');
  const p = await Pipeline.open({ backend });
  const d = p.describe();
  console.log(`model: ${d.model}, d = ${d.hiddenSize}, vocab ${d.vocabSize}, on ${d.backend} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  console.log(`experts: ${p.experts().join(', ')} (synthetic PEFT adapters, r = 32)`);
  try {
    // Warm-up (first-call costs: key generation, weight plaintexts, CUDA graph capture).
    await p.run(prompt, { ...he, maxTokens: 2 });
    await p.run(prompt, { mode: 'base', maxTokens: 2, temperature: 0 });

    console.log(`\n> ${prompt}`);
    process.stdout.write('< ');
    const events: TokenEvent[] = [];
    const it = p.generate(prompt, he);
    let summary: GenerationSummary;
    for (;;) {
      const r = await it.next();
      if (r.done) {
        summary = r.value;
        break;
      }
      events.push(r.value);
      process.stdout.write(r.value.text);
    }
    process.stdout.write('\n');
    const base = await p.run(prompt, { mode: 'base', maxTokens, temperature: 0 });

    const st = summary.stageMedians;
    const total = Object.values(st).reduce((a, b) => a + (b ?? 0), 0);
    const o = summary.options;
    console.log(`\nPer-token breakdown (${d.backend}, poly_n=${o.polyN}, ${o.packing}, ${o.decrypt} decrypt, expert ${summary.expert}, median of ${Math.max(1, events.length - 1)} decode tokens)`);
    console.log('```');
    console.log(formatBreakdown(st, total, { dp_noise: o.dp?.mechanism === 'off' ? 'off' : `${o.dp?.mechanism} Gaussian, clip C=1`, ct_pt_multiply: `${o.packing}` }));
    console.log('```');
    const heTotal = heMs(st);
    console.log(`base model:   ${base.summary.tokPerS.toFixed(2)} tok/s`);
    console.log(`HE-LoRA:      ${summary.tokPerS.toFixed(2)} tok/s  (${((summary.tokPerS / base.summary.tokPerS) * 100).toFixed(0)}% of base; all HE stages ${fmtMs(heTotal)} ms/token)`);
    console.log(`the original: 7.4 tok/s HE vs 28.2 base on an RTX A2000 (26%; seed-performance-analysis.md)`);
    if (summary.privacy) {
      console.log(`privacy:      ${summary.privacy.releases} DP releases composed (${summary.privacy.accountant}): epsilon = ${summary.privacy.epsilon.toFixed(2)} at delta = ${summary.privacy.delta} for this request`);
    }
    console.log('note: the weights and the adapters are random (no checkpoint can be downloaded here), so the text is not meaningful; the costs are.');

    // One figure: our breakdown beside the original's (lab exporter, self-contained HTML).
    const lab = await import('../lab/plots/breakdown');
    const { originalBreakdownSeries } = await import('../lab/sources');
    const { loadOriginal } = await import('../lab/datasets');
    const { measured } = await import('../lab/provenance');
    const { exportFigure } = await import('../lab/export');
    const date = new Date().toISOString();
    const dev = deviceName(backend);
    const ours = (label: string, s: StageTimes) => ({ label, provenance: measured(dev, date, { backend }), stages: s as Record<string, number> });
    const fig = lab.latencyBreakdown(
      [originalBreakdownSeries(loadOriginal(), 'breakdown_websocket'), ours(`tensafe HE-LoRA (${d.backend})`, st), ours(`tensafe base (${d.backend})`, base.summary.stageMedians)],
      { title: `Per-token latency: ${d.model}`, caption: 'random weights; the original: Qwen2.5-1.5B on an RTX A2000' },
    );
    const target = args.out ?? path.join(packageRoot(), 'figures', 'demo-breakdown');
    const res = await exportFigure(fig, target, { formats: ['html'] });
    console.log(`figure: ${res.html}`);
  } finally {
    await p.dispose();
  }
}
