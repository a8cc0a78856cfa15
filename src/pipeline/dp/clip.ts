/** L2 clipping: x * min(1, C / ||x||_2). Returns a new array; x is untouched. */
export function clipL2(x: ArrayLike<number>, clipNorm: number): Float64Array {
  if (!(clipNorm > 0) || !Number.isFinite(clipNorm)) throw new RangeError(`clipNorm must be a finite number > 0, got ${clipNorm}`);
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const norm = Math.sqrt(ss);
  const f = norm > clipNorm ? clipNorm / norm : 1;
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * f;
  return out;
}

export function l2Norm(x: ArrayLike<number>): number {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  return Math.sqrt(ss);
}
