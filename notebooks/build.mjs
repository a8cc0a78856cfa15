#!/usr/bin/env node
// Writes the notebooks (tslab kernel, TypeScript) from the cell lists below, without outputs.
// The logic lives in src/lab; cells stay a few lines each. Run: node notebooks/build.mjs
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const md = (text) => ({ cell_type: 'markdown', metadata: {}, source: lines(text) });
const code = (text) => ({ cell_type: 'code', execution_count: null, metadata: {}, outputs: [], source: lines(text) });
function lines(text) {
  const ls = text.replace(/^\n/, '').replace(/\n\s*$/, '').split('\n');
  return ls.map((l, i) => (i < ls.length - 1 ? `${l}\n` : l));
}

// Every notebook opens the session the same way; TENSAFE_NOTEBOOK_SMALL=1 picks small sizes.
const open = code(`
import { Lab } from '..';
const lab = await Lab.open({ backend: 'auto' });
lab.note(lab.header());
`);

const notebooks = {
  '00-engine': [
    md(`
# 00 · The engine

The library loads from the compiled package (\`import { Lab } from '..'\`, package.json \`main\`). Below: what
the native engine was built with (\`engine.info()\`), an arquero table, and a plotly figure rendered inline from
\`plotly.js-dist\` (inlined once per notebook, no CDN).
`),
    open,
    code(`
import { engine } from '..';
lab.backend ? engine.info() : lab.engineError
`),
    code(`
lab.show(lab.tables.headline(), { caption: 'The original\\'s headline numbers: cited (seed-performance-analysis.md, RTX A2000 8GB)' });
`),
    code(`
lab.show(lab.plot.breakdownStandard());
`),
    code(`
lab.showResults('ntt');
`),
  ],

  '01-ckks-op-costs': [
    md(`
# 01 · CKKS operation costs

The original measured its GPU CKKS library (CuKKS) on an RTX A2000 at poly_n 16384 and 32768. Here: the same
operations measured by tensafe (live on this machine, small sizes without a GPU; GPU figures from the committed
result files, labelled with their card and date), beside the original and the peers measured on this workplace's
machines. GPU per-op figures say how they were timed: *batched* (10 back-to-back ops between two CUDA events, / 10)
or *single op*, and with how many primes; Phantom's are the equal-terms H200 rows (same primes, both methods). On the
CPU, tensafe runs on every core and on one thread, beside node-seal's one WASM thread.
`),
    open,
    code(`
lab.show(lab.tables.ckksOpCosts(), { caption: 'original (RTX A2000), CuKKS: cited (seed-performance-analysis.md)' });
`),
    code(`
lab.showResults('ckks', (r) => r.kind === 'op' || (typeof r.op === 'string' && !String(r.op).startsWith('helora_')));
`),
    code(`
const live = await lab.live.ckksOps({ polyN: lab.small ? [8192] : [8192, 16384, 32768], iterations: lab.small ? 3 : 20 });
lab.showLive(live, 'CKKS op medians (us), live');
`),
    code(`
lab.show(lab.plot.ckksOpCostsStandard(live.series));
`),
    code(`
lab.show(lab.tables.peers(), { caption: 'peers: measured on this workplace\\'s machines (field-notes section 4) or published' });
`),
  ],

  '02-per-token-breakdown': [
    md(`
# 02 · Where a token's time goes

The original's per-token breakdowns (WebSocket mode; split mode with the LM head on the CPU and on the GPU) as
nested trees, then side by side with tensafe's stage records. Where the original's parts do not add up to its
printed total, the difference is drawn as "not itemised".
`),
    open,
    code(`
lab.show(lab.tables.breakdown('breakdown_websocket'), { caption: 'WebSocket mode, poly_n 16384: cited (seed-performance-analysis.md, RTX A2000 8GB)' });
lab.show(lab.plot.breakdownTreeStandard('breakdown_websocket'));
`),
    code(`
lab.show(lab.plot.breakdownTreeStandard('breakdown_split_cpu_head'));
lab.show(lab.plot.breakdownTreeStandard('breakdown_split_gpu_head', 'icicle'));
`),
    code(`
const can = await lab.canGenerate();
const runs = [];
if (can.available) {
  const run = await lab.generate('What is a savings account?', { mode: 'he-lora', maxTokens: lab.small ? 4 : 16, timers: true });
  lab.show(run.breakdown(), { caption: \`median ms per stage, \${run.tokens.length} tokens: \${run.source()}\` });
  runs.push(run.stageSeries());
} else {
  lab.note(\`**Live generation: not run here** (\${can.reason}). The bars below use committed results and cited data.\`);
}
`),
    code(`
lab.showResults('pipeline', (r) => typeof r.stage === 'string');
lab.show(lab.plot.breakdownStandard(runs));
`),
  ],

  '03-optimisation-and-poly-n': [
    md(`
# 03 · The optimisation steps, and why poly_n 16384 wins

The original went from poly_n 32768 with sequential decryption to batched GPU decryption, then to poly_n 16384
(more products per token, each much cheaper). Its arithmetic, the peers' HE-LoRA per token, and tensafe's own
HE-LoRA crypto per token at each poly_n (live and committed).
`),
    open,
    code(`
lab.show(lab.tables.optimisationWebsocket(), { caption: 'cited (seed-performance-analysis.md, RTX A2000 8GB)' });
lab.show(lab.tables.optimisationSplit(), { caption: 'split mode: cited (seed-performance-analysis.md, RTX A2000 8GB)' });
lab.show(lab.plot.optimisationStandard());
`),
    code(`
lab.show(lab.tables.polyNComparison(), { caption: 'the original\\'s arithmetic: cited (seed-performance-analysis.md)' });
`),
    code(`
const he = await lab.live.heLora({ polyN: lab.small ? [8192, 16384] : [8192, 16384, 32768], iterations: lab.small ? 2 : 10 });
lab.showLive(he, 'HE-LoRA crypto per token (us), live');
lab.show(lab.plot.heCostStandard(he.series));
`),
    code(`
const can = await lab.canGenerate();
if (can.available) {
  const sweep = await lab.sweep({ packing: ['replicated-slots', 'rotations', 'coefficients'], polyN: lab.small ? [8192] : [8192, 16384, 32768] },
    async (p, ctx) => { const run = await lab.generate('What is a savings account?', { mode: 'he-lora', maxTokens: lab.small ? 2 : 8, packing: p.packing as any, polyN: p.polyN as number }, ctx.signal);
      return { tok_s: run.summary.tokPerS }; }, { name: 'nb03-packings' });
  lab.show(sweep.table());
  lab.show(lab.plot.sweepView(sweep.table(), { x: 'packing', y: 'tok_s', lines: ['polyN'], provenance: lab.provenance(), title: 'HE-LoRA tok/s by packing (lines: poly_n)' }));
} else {
  lab.note(\`**Packing sweep: not run here** (\${can.reason}).\`);
}
`),
  ],

  '04-lm-head': [
    md(`
# 04 · The LM head

The original's largest discovery: a numpy LM head (151936 x 1536, float32) took about 650 ms per token on the
CPU, against about 5 ms with torch on the GPU. tensafe's LM head figures come from the model benchmark.
`),
    open,
    code(`
lab.show(lab.tables.lmHeadAnalysis(), { caption: 'the original\\'s analysis, verbatim: cited (seed-performance-analysis.md)' });
lab.show(lab.tables.lmHead(), { caption: 'cited (seed-performance-analysis.md, RTX A2000 8GB)' });
`),
    code(`
lab.showResults('model', (r) => JSON.stringify(r).includes('lm_head'));
lab.show(lab.tables.summary('model'), { caption: 'model bench summaries: measured here (committed results)' });
`),
    code(`
lab.show(lab.plot.lmHeadStandard());
`),
  ],

  '05-sota-comparison': [
    md(`
# 05 · Against the state of the art

The original's SOTA table had wrong and unsourced rows. The corrected table (datasets/sota.csv) gives each row
its source, **who holds the key and what is protected from whom**, and marks rows without a fair per-token figure;
rows measured here are highlighted. Server-key rows (the original, and tensafe's default keyOwner 'server') are
hatched and marked: the server holds the key, so the encryption hides nothing from it, while the client-key FHE and
MPC rows keep the client's data from the server. They share a speed axis, not a threat model.
`),
    open,
    code(`
lab.show(lab.tables.sotaAsPrinted(), { caption: 'as the original printed it: cited (seed-performance-analysis.md)' });
lab.show(lab.tables.sota(), { caption: 'corrected (field-notes section 1): each row names its source' });
`),
    code(`
lab.show(lab.plot.sotaStandard());
`),
    code(`
lab.show(lab.tables.sotaFactors(), { caption: 'the original\\'s explanation, as printed (its "HE direction" row is the server-local weakness)' });
`),
  ],

  '06-kernel-profiling': [
    md(`
# 06 · Kernel profiling

\`lab.profile(fn)\` returns a per-kernel table (name, calls, total, mean) of the native work fn does, from the
engine's profiler hook (CUPTI on the GPU). Where the build or machine has no profiler the table says so and
holds only the whole call's time.
`),
    open,
    code(`
const w = lab.live.heLoraWorkload({ polyN: 16384, iterations: lab.small ? 2 : 20 });
if (w.available) {
  const p = await lab.profile(w.run);
  lab.show(p.table(), { caption: p.note });
  if (p.native) lab.show(lab.plot.kernelProfile(p.rows, lab.provenance(), { title: 'HE-LoRA, poly_n 16384: time per kernel' }));
} else {
  lab.note(\`**Profiling: not run here** (\${w.reason}).\`);
}
`),
    code(`
lab.showResults('ckks', (r) => 'kernel' in r);
`),
  ],

  '07-dp-privacy-utility': [
    md(`
# 07 · DP: privacy against utility

The original clipped h to norm C = 1 and added Gaussian noise with sigma = C sqrt(2 ln(1.25/delta)) / epsilon
(4.84 at epsilon 1), using C as the sensitivity (replace-one neighbours give 2C) and charging the budget once per
request although every token releases a noisy h. The noise scale of each calibration (the classic formula is proven
for epsilon < 1 only: rows outside are flagged), then the utility: greedy-token agreement of HE-LoRA with DP against
plaintext LoRA without noise, **against the accounted epsilon of the whole request** (every token is a release),
with the nominal per-token epsilon as each point's label. The synthetic experts move the hidden state by a stated
5% of its norm (src/pipeline/experts.ts), the order of a real fine-tune; the dotted line is the base model's
agreement (adapter off), which DP at a large epsilon approaches because h is clipped to C = 1.
`),
    open,
    code(`
lab.show(lab.dp.sigmas(), { caption: 'computed here (src/pipeline/dp; no hardware involved)' });
lab.show(lab.dp.sigmaFigure());
`),
    code(`
const util = await lab.live.dpUtility({ epsilons: lab.small ? [1, 8] : [0.5, 1, 2, 4, 8, 16], maxTokens: lab.small ? 4 : 16 });
lab.showLive(util, 'token agreement, live');
const fig = lab.plot.dpStandard(util.series);
fig ? lab.show(fig) : lab.note('No DP utility figure: no committed result holds DP rows and the live run was not possible.');
`),
  ],
  '08-private-lora': [
    md(`
# 08 · Private LoRA: the cost of privacy

In every earlier notebook the server holds the CKKS key (the original's design): the encryption hides nothing from
it. Here the setting of arXiv 2501.01672 ("open base model + private LoRA"): the **client** runs the public base
model and holds the key; the **server** holds the adapters and computes on ciphertexts only (src/server/PROTOCOL.md
says what each party sends, receives and learns; docs/threat-model.md which mode protects whom). Two protocols:

- **two-round**: no rotations; round 1 returns A x under a one-time pad (the server keeps the pad), round 2 returns
  B applied to the unmasked share, every coefficient the client must not read masked, the read ones noise-flooded;
- **one-round**: the server cleans A x inside the ciphertext with Galois automorphisms (the client's keys) and
  answers in one round trip, at a larger ring.

Placements: \`final-hidden\` (one site per token, the original's pair on the final hidden state) and \`layers\` (every
adapted module of every layer: the client's forward pauses at each for the encrypted round trip). Below: the committed
benchmark (\`npm run bench -- private\`: two processes, real WebSocket, loopback and a client-side RTT model), then a
live private generation on this machine, beside server-key HE-LoRA.
`),
    open,
    code(`
lab.showResults('private', (r) => r.table === 'generation');
`),
    code(`
for (const f of [lab.plot.privateRttStandard(), lab.plot.privateStagesStandard(), lab.plot.privateBytesStandard()]) {
  f ? lab.show(f) : lab.note('No committed private result yet: run \`npm run bench -- private\`.');
}
`),
    md(`
## Noise flooding against precision

The flooding parameter lambda (statistical distance 2^-lambda per coefficient the client reads) costs modulus, not
precision, at these parameters: the error floor is the 20-bit quantisation of A and B until the flood reaches the
modulus. lambda 0 turns flooding off (insecure against a curious client; measured only to show the cost).
`),
    code(`
lab.showResults('private', (r) => r.table === 'precision');
const p = lab.plot.privatePrecisionStandard();
p ? lab.show(p) : lab.note('No committed precision rows yet.');
`),
    md(`
## Live: a private generation here

The client part runs in this kernel on the session's model with its own key; \`server: 'local'\` starts the private
endpoint in this process on the session's experts and talks to it over a real loopback WebSocket (the server sees the
same frames a remote one would). Beside it, the server-key HE-LoRA of the same session.
`),
    code(`
const canRun = await lab.canGenerate();
if (!canRun.available) lab.note(\`**Live runs not possible here** (\${canRun.reason}); the figures above use committed results.\`);
const q = 'What is a savings account?';
const priv = canRun.available ? await lab.generate(q, { keyOwner: 'client', server: 'local', placement: 'final-hidden', protocol: 'two-round', maxTokens: lab.small ? 4 : 16, stopAtEos: false }) : null;
const srv = canRun.available ? await lab.generate(q, { mode: 'he-lora', maxTokens: lab.small ? 4 : 16 }) : null;
if (priv) lab.show(priv.breakdown(), { caption: \`client key, final-hidden, two-round: \${priv.summary.tokPerS.toFixed(2)} tok/s, \${(priv.summary.bytesPerToken.up / 1e6).toFixed(2)} MB up + \${(priv.summary.bytesPerToken.down / 1e6).toFixed(2)} MB down per token; \${priv.source()}\` });
if (srv) lab.show(srv.breakdown(), { caption: \`server key (hides nothing from the server): \${srv.summary.tokPerS.toFixed(2)} tok/s; \${srv.source()}\` });
`),
    code(`
if (priv && srv) {
  const serverRow = { label: 'server key, HE-LoRA (this session)', provenance: srv.provenance, serverKey: true, stages: { he: Object.values(srv.stageSeries().stages).reduce((a, b) => a + b, 0) } };
  lab.show(lab.plot.privateStageBars([priv.barRow(), serverRow], { caption: 'live, this session: medians over the tokens after the first' }));
}
`),
    md(`
## Against the literature

The SOTA figure with the measured client-key rows (from the committed \`private\` result) beside the cited anchor
(arXiv 2501.01672: 1.61 s/token, ChatGLM2-6B, LoRA r 8 under CKKS with the client's key). Server-key rows are marked:
they are a cost model, not privacy.
`),
    code(`
lab.show(lab.plot.sotaStandard());
`),
  ],
};

for (const [name, cells] of Object.entries(notebooks)) {
  const nb = {
    cells,
    metadata: {
      kernelspec: { display_name: 'TypeScript', language: 'typescript', name: 'tslab' },
      language_info: { codemirror_mode: { mode: 'typescript', name: 'javascript', typescript: true }, file_extension: '.ts', mimetype: 'text/typescript', name: 'typescript', version: '5.0' },
    },
    nbformat: 4,
    nbformat_minor: 5,
  };
  nb.cells.forEach((c, i) => { c.id = `${name}-${i}`; });
  writeFileSync(join(here, `${name}.ipynb`), JSON.stringify(nb, null, 1) + '\n');
  console.log(`wrote notebooks/${name}.ipynb (${cells.length} cells)`);
}
