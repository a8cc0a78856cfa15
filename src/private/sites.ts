/**
 * The server's adapter, cut into the sites of the private protocols and quantised to integers.
 *
 * A site is one encrypted round trip per token position: the adapted modules of one layer that
 * read the same input (q_proj, k_proj and v_proj read the post-norm hidden state; gate_proj and
 * up_proj read the post-attention-norm state; o_proj and down_proj read their own inputs), or the
 * single `final-hidden` pair applied to the final hidden state (the original's placement).
 *
 * Quantisation: the protocols compute over the integers, so A is rounded to A_int = round(A 2^aShift)
 * with |A_int| <= 2^INT_BITS and the scaled B' = scaling B to B_int = round(B' 2^bShift). The delta the
 * client reads is B_int A_int x_int / 2^(xShift + aShift + bShift), i.e. the exact output of the
 * quantised adapter (relative quantisation error about 2^-INT_BITS of the largest entry).
 *
 * What the server publishes about a site (SitePublic) is part of the privacy argument
 * (src/server/PROTOCOL.md): the shape (modules, ranks, dims: public in any PEFT deployment), the two
 * shifts (the binary orders of magnitude of max|A| and max|scaling B|) and the powers of two that
 * bound the rows' L1 norms of A_int and B_int (the client needs them to choose a scale that cannot
 * overflow the modulus, the server to size the noise flooding). No entry of A or B is published.
 */
import type { LoraPair, PeftAdapter, ProjectionName } from '../pipeline/adapter';
import type { SiteModule, SiteShape } from './layout';

/** Bits of the largest quantised entry (|A_int|, |B_int| <= 2^INT_BITS). */
export const INT_BITS = 20;

/** Modules that read the same input (one site per group and layer). */
export const INPUT_GROUPS: ProjectionName[][] = [['q_proj', 'k_proj', 'v_proj'], ['o_proj'], ['gate_proj', 'up_proj'], ['down_proj']];

export type PlacementName = 'final-hidden' | 'layers';

/** What both parties know of a site. */
export interface SitePublic {
  id: number;
  /** Layer of the hooked modules; null for the final hidden state. */
  layer: number | null;
  shape: SiteShape;
  aShift: number;
  bShift: number;
  /** log2 bound of max_i sum_j |A_int[i][j]| (a power of two at or above it). */
  aRowL1Bits: number;
  /** log2 bound of max_k sum_i |B_int[k][i]|. */
  bRowL1Bits: number;
}

/** The server's private part of a site: the quantised stacked matrices. */
export interface SitePrivate extends SitePublic {
  /** Stacked A_int [rank, inDim] (integers as doubles, exact below 2^53). */
  aInt: Float64Array;
  /** Stacked block-diagonal B_int [outDim, rank]. */
  bInt: Float64Array;
}

function shiftFor(maxAbs: number): number {
  if (!(maxAbs > 0) || !Number.isFinite(maxAbs)) return INT_BITS;
  // 2^shift * maxAbs <= 2^INT_BITS.
  return INT_BITS - Math.ceil(Math.log2(maxAbs));
}

function l1Bits(rows: number, cols: number, m: Float64Array): number {
  let best = 0;
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.abs(m[i * cols + j]);
    if (s > best) best = s;
  }
  return best <= 1 ? 0 : Math.ceil(Math.log2(best));
}

/** Stacks and quantises the pairs of one site (they must share inDim). */
export function makeSite(id: number, layer: number | null, pairs: LoraPair[], scaling: number): SitePrivate {
  if (pairs.length === 0) throw new RangeError(`site ${id}: no pairs`);
  const inDim = pairs[0].inDim;
  for (const p of pairs) {
    if (p.inDim !== inDim) throw new RangeError(`site ${id}: ${p.module} reads ${p.inDim} values, ${pairs[0].module} ${inDim}: a site's modules must share their input`);
  }
  const rank = pairs.reduce((s, p) => s + p.rank, 0);
  const outDim = pairs.reduce((s, p) => s + p.outDim, 0);
  const modules: SiteModule[] = [];
  let maxA = 0;
  let maxB = 0;
  for (const p of pairs) {
    for (const v of p.a) maxA = Math.max(maxA, Math.abs(v));
    for (const v of p.b) maxB = Math.max(maxB, Math.abs(v * scaling));
  }
  const aShift = shiftFor(maxA);
  const bShift = shiftFor(maxB);
  const aInt = new Float64Array(rank * inDim);
  const bInt = new Float64Array(outDim * rank);
  let row = 0;
  let out = 0;
  for (const p of pairs) {
    modules.push({ module: p.module, rank: p.rank, outDim: p.outDim, rowOffset: row, outOffset: out });
    for (let i = 0; i < p.rank; i++) {
      for (let j = 0; j < inDim; j++) aInt[(row + i) * inDim + j] = Math.round(p.a[i * inDim + j] * 2 ** aShift);
    }
    for (let k = 0; k < p.outDim; k++) {
      for (let i = 0; i < p.rank; i++) bInt[(out + k) * rank + row + i] = Math.round(p.b[k * p.rank + i] * scaling * 2 ** bShift);
    }
    row += p.rank;
    out += p.outDim;
  }
  const shape: SiteShape = { inDim, rank, outDim, modules };
  return { id, layer, shape, aShift, bShift, aRowL1Bits: l1Bits(rank, inDim, aInt), bRowL1Bits: l1Bits(outDim, rank, bInt), aInt, bInt };
}

/**
 * The sites of an adapter for a placement: `final-hidden` is the adapter's final-hidden pair
 * (PeftAdapter.finalHiddenPair), `layers` every layer's input groups, in forward order.
 */
export function adapterSites(adapter: PeftAdapter, placement: PlacementName, hiddenSize: number): SitePrivate[] {
  if (placement === 'final-hidden') return [makeSite(0, null, [adapter.finalHiddenPair(hiddenSize)], adapter.scaling)];
  const layers = [...new Set(adapter.pairs.map((p) => p.layer))].sort((a, b) => a - b);
  const sites: SitePrivate[] = [];
  for (const layer of layers) {
    for (const group of INPUT_GROUPS) {
      const pairs = group.map((m) => adapter.pair(layer, m)).filter((p): p is LoraPair => p !== undefined);
      if (pairs.length) sites.push(makeSite(sites.length, layer, pairs, adapter.scaling));
    }
  }
  if (sites.length === 0) throw new RangeError(`adapter '${adapter.name}' has no pairs`);
  return sites;
}

/** The public part of a site (what the server sends at session setup). */
export function sitePublic(s: SitePrivate): SitePublic {
  const { aInt: _a, bInt: _b, ...pub } = s;
  return pub;
}

/** The float64 delta of the quantised adapter at a site (the exact result the protocols compute). */
export function quantisedDelta(site: SitePrivate, x: ArrayLike<number>, xShift: number): Float64Array {
  const { inDim, rank, outDim } = site.shape;
  const xi = new Float64Array(inDim);
  for (let j = 0; j < inDim; j++) xi[j] = Math.round(x[j] * 2 ** xShift);
  const v = new Float64Array(rank);
  for (let i = 0; i < rank; i++) {
    let s = 0;
    for (let j = 0; j < inDim; j++) s += site.aInt[i * inDim + j] * xi[j];
    v[i] = s;
  }
  const y = new Float64Array(outDim);
  const scale = 2 ** -(xShift + site.aShift + site.bShift);
  for (let k = 0; k < outDim; k++) {
    let s = 0;
    for (let i = 0; i < rank; i++) s += site.bInt[k * rank + i] * v[i];
    y[k] = s * scale;
  }
  return y;
}
