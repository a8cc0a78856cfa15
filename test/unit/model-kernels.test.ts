/**
 * The CPU matrix kernel (SIMD, both cores, the multi-token path of prefill) against a float64
 * loop, on sizes that hit every tail, for f32, bf16 and f16 weights (the reference uses the
 * same rounded weights, so only the arithmetic is compared).
 */
import { describe, expect, it } from 'vitest';

import { native } from '../../src/engine/native';

let s = 2024;
const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 2;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function toBf16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  u32[0] = (((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16) >>> 0;
  return f32[0];
}
function toF16(x: number): number {
  // Round to 11 significant bits (values here are normal in f16 range).
  if (x === 0) return 0;
  const e = Math.floor(Math.log2(Math.abs(x)));
  const q = 2 ** (e - 10);
  const r = x / q;
  const fl = Math.floor(r);
  const diff = r - fl;
  const m = diff > 0.5 || (diff === 0.5 && fl % 2 !== 0) ? fl + 1 : fl;
  return m * q;
}

describe('CPU matmul kernel', () => {
  it.each(['f32', 'bf16', 'f16'] as const)('matches a float64 loop on odd sizes (%s weights)', (dtype) => {
    const round = dtype === 'f32' ? Math.fround : dtype === 'bf16' ? toBf16 : toF16;
    for (const [rows, cols, n] of [[1, 1, 1], [7, 9, 1], [33, 70, 3], [300, 64, 1], [129, 257, 40], [1000, 31, 2], [5, 1536, 1]]) {
      const w = Float32Array.from({ length: rows * cols }, rnd);
      const x = Float32Array.from({ length: n * cols }, rnd);
      const y = native().modelCpuMatmul(w, rows, cols, x, n, dtype) as Float32Array;
      expect(y.length).toBe(rows * n);
      let worst = 0;
      for (let t = 0; t < n; t++)
        for (let r = 0; r < rows; r++) {
          let acc = 0;
          for (let i = 0; i < cols; i++) acc += round(w[r * cols + i]) * x[t * cols + i];
          worst = Math.max(worst, Math.abs(acc - y[t * rows + r]) / Math.sqrt(cols));
        }
      expect(worst, `${rows}x${cols}, n=${n}`).toBeLessThan(2e-6);
    }
  });

  it('checks its arguments', () => {
    expect(() => native().modelCpuMatmul(new Float32Array(6), 2, 3, new Float32Array(2), 1, 'f32')).toThrow(/x must have length 3/);
    expect(() => native().modelCpuMatmul(new Float32Array(6), 2, 3, new Float32Array(3), 1, 'f64')).toThrow(/dtype must be one of/);
    expect(() => native().modelCpuMatmul(new Float64Array(6), 2, 3, new Float32Array(3), 1, 'f32')).toThrow(TypeError);
  });
});
