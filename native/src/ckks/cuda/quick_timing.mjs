// Quick device timings of the CUDA NTT and CKKS backend (development tool for the GPU runs;
// the published numbers come from `npm run bench -- ntt|ckks`). Prints one JSON line per
// measurement and a summary table; every time is a median of CUDA-event samples.
//   node native/src/ckks/cuda/quick_timing.mjs [path/to/tensafe.node]
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const addon = require(process.argv[2] ?? process.env.TENSAFE_ADDON ?? './build/native/Release/tensafe.node');
const rows = [];
const emit = (r) => { rows.push(r); console.log(JSON.stringify(r)); };

emit({ what: 'copy_bandwidth_GBps', value: addon.NttPlanCuda.measureCopyBandwidth() / 1e9 });
for (const logN of [13, 14, 15, 16]) {
  const n = 2 ** logN;
  for (const limbs of [1, 2, 4]) {
    const moduli = addon.generateNttPrimes(n, 50, limbs);
    const p = new addon.NttPlanCuda({ n, moduli });
    for (const direction of ['forward', 'inverse']) {
      const t = await p.benchmark({ direction, iterations: 50 });
      const bytes = 4 * n * limbs * 8; // two passes, read + write each
      emit({ what: 'ntt', n, limbs, direction, medianUs: t.medianUs, GBps: bytes / (t.medianUs * 1e3) });
    }
    p.dispose();
  }
}
const ops = ['encode', 'decode', 'encode_coefficients', 'encrypt', 'encrypt_symmetric', 'decrypt', 'add', 'sub',
  'multiply_plain', 'rescale', 'mod_switch', 'rotate'];
for (const polyN of [8192, 16384, 32768, 65536]) {
  const bits = polyN === 8192 ? 50 : 60;
  const ctx = new addon.CkksContextCuda({ polyN, primeBits: [bits, 40, bits], specialPrimeBits: bits });
  for (const op of ops) {
    const t = await ctx.benchmarkOp({ op, iterations: 30 });
    emit({ what: 'op', polyN, op, medianUs: t.medianUs, minUs: t.minUs });
  }
  ctx.dispose();
  if (polyN <= 32768) {
    const h = new addon.CkksContextCuda({ polyN, primeBits: [60, 40] });
    const t = await h.benchmarkHeLora({ d: 1536, r: 32, iterations: 50 });
    emit({ what: 'helora', polyN, ...t.medianUs, products: t.products, replicas: t.replicas, maxAbsError: t.maxAbsError });
    h.dispose();
  }
}
console.log('\nsummary');
for (const r of rows) {
  if (r.what === 'helora') console.log(`helora N=${r.polyN}: total ${r.total.toFixed(1)} us (enc ${r.encode.toFixed(1)}, encrypt ${r.encrypt.toFixed(1)}, mul ${r.ct_pt_multiply.toFixed(1)}, dec ${r.decrypt.toFixed(1)}, decode ${r.decode.toFixed(1)}, sums ${r.extract_sum.toFixed(1)}) err ${r.maxAbsError.toExponential(2)}`);
}
for (const r of rows) if (r.what === 'op' && r.polyN === 16384) console.log(`op N=16384 ${r.op}: ${r.medianUs.toFixed(1)} us`);
for (const r of rows) if (r.what === 'ntt' && r.n === 16384) console.log(`ntt N=16384 x${r.limbs} ${r.direction}: ${r.medianUs.toFixed(2)} us ${r.GBps.toFixed(0)} GB/s`);
