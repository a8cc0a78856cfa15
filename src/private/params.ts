/**
 * Parameters of a private session, agreed at setup: the protocol, the placement, the client's CKKS
 * parameters (the server checks them against the native 128-bit table by creating its context) and
 * the flooding parameter lambda. Both parties derive every layout and noise budget from these and
 * the sites' public facts, so nothing else needs to be negotiated.
 */
import type { Ckks } from '../engine/ckks/ckks';
import type { ModulusFacts } from './budget';
import { siteBudget, type SiteBudget } from './budget';
import { oneRoundLayout, twoRoundLayout, type SiteLayout } from './layout';
import type { PlacementName, SitePublic } from './sites';

export type ProtocolName = 'two-round' | 'one-round';
export const PROTOCOLS: readonly ProtocolName[] = ['two-round', 'one-round'];
export const PLACEMENTS: readonly PlacementName[] = ['final-hidden', 'layers'];

/** Statistical parameter of the noise flooding, bits (2^-lambda per read coefficient). */
export const DEFAULT_FLOOD_BITS = 40;

export interface PrivateCkksParams {
  polyN: number;
  primeBits: number[];
  specialPrimeBits?: number;
  /** Accept parameters above the 128-bit bound (the server must allow it too; results are marked). */
  allowInsecure?: boolean;
}

export interface PrivateParams {
  protocol: ProtocolName;
  placement: PlacementName;
  expert: string;
  /** lambda; 0 turns flooding off (needs allowInsecure: a curious client then learns more than the deltas). */
  floodBits: number;
  ckks: PrivateCkksParams;
}

function nextPow2(x: number): number {
  let p = 1;
  while (p < x) p *= 2;
  return p;
}

/** The smallest ring and the primes each protocol needs for these sites (the bench sweeps others). */
export function defaultCkksParams(protocol: ProtocolName, sites: SitePublic[]): PrivateCkksParams {
  const maxIn = Math.max(...sites.map((s) => s.shape.inDim));
  if (protocol === 'two-round') {
    return { polyN: Math.max(8192, nextPow2(maxIn)), primeBits: [60, 60, 60] };
  }
  const need = Math.max(...sites.map((s) => s.shape.rank * nextPow2(s.shape.inDim)));
  // 3 x 60 + 60 special = 240 bits: 128-bit secure from N = 16384 (438) up.
  return { polyN: Math.max(16384, nextPow2(need)), primeBits: [60, 60, 60], specialPrimeBits: 60 };
}

export function layoutFor(protocol: ProtocolName, site: SitePublic, polyN: number): SiteLayout {
  return protocol === 'two-round' ? twoRoundLayout(site.shape, polyN) : oneRoundLayout(site.shape, polyN);
}

/** Modulus facts of a context (log2 of its primes). */
export function modulusFacts(ckks: Ckks): ModulusFacts {
  const info = ckks.info();
  return {
    polyN: info.polyN,
    primeLog2: info.moduli.map((q) => Math.log2(Number(q))),
    specialLog2: info.specialModulus === null ? null : Math.log2(Number(info.specialModulus)),
  };
}

export interface SitePlan {
  site: SitePublic;
  layout: SiteLayout;
  budget: SiteBudget;
}

/** Layouts and budgets of every site (RangeError naming the site when one does not fit). */
export function planSites(params: PrivateParams, sites: SitePublic[], modulus: ModulusFacts): SitePlan[] {
  return sites.map((site) => {
    try {
      const layout = layoutFor(params.protocol, site, modulus.polyN);
      return { site, layout, budget: siteBudget(site, layout, modulus, params.floodBits) };
    } catch (err) {
      const where = site.layer === null ? 'the final hidden state' : `layer ${site.layer} (${site.shape.modules.map((m) => m.module).join('+')})`;
      throw new RangeError(`site ${site.id} at ${where}: ${(err as Error).message}`);
    }
  });
}

/** Checks a params object from the wire or from options (TypeError/RangeError naming the field). */
export function checkParams(v: unknown, where = 'params'): PrivateParams {
  if (typeof v !== 'object' || v === null) throw new TypeError(`${where} must be an object`);
  const o = v as Record<string, unknown>;
  if (!PROTOCOLS.includes(o.protocol as ProtocolName)) throw new RangeError(`${where}.protocol must be one of ${PROTOCOLS.join(', ')}, got ${JSON.stringify(o.protocol)}`);
  if (!PLACEMENTS.includes(o.placement as PlacementName)) throw new RangeError(`${where}.placement must be one of ${PLACEMENTS.join(', ')}, got ${JSON.stringify(o.placement)}`);
  if (typeof o.expert !== 'string' || o.expert.length === 0 || o.expert.length > 200) throw new TypeError(`${where}.expert must be a non-empty string`);
  if (typeof o.floodBits !== 'number' || !Number.isInteger(o.floodBits) || o.floodBits < 0 || o.floodBits > 128) {
    throw new RangeError(`${where}.floodBits must be an integer in [0, 128], got ${JSON.stringify(o.floodBits)}`);
  }
  const c = o.ckks as Record<string, unknown> | undefined;
  if (typeof c !== 'object' || c === null) throw new TypeError(`${where}.ckks must be an object`);
  if (typeof c.polyN !== 'number' || !Number.isInteger(c.polyN)) throw new TypeError(`${where}.ckks.polyN must be an integer`);
  if (!Array.isArray(c.primeBits) || c.primeBits.length < 1 || c.primeBits.length > 8 || !c.primeBits.every((b) => Number.isInteger(b))) {
    throw new TypeError(`${where}.ckks.primeBits must list 1..8 integers`);
  }
  if (c.specialPrimeBits !== undefined && !Number.isInteger(c.specialPrimeBits)) throw new TypeError(`${where}.ckks.specialPrimeBits must be an integer`);
  if (c.allowInsecure !== undefined && typeof c.allowInsecure !== 'boolean') throw new TypeError(`${where}.ckks.allowInsecure must be a boolean`);
  if (o.floodBits === 0 && c.allowInsecure !== true) {
    throw new RangeError(`${where}.floodBits 0 turns noise flooding off, which lets a curious client learn more than the deltas: it needs ckks.allowInsecure`);
  }
  return {
    protocol: o.protocol as ProtocolName,
    placement: o.placement as PlacementName,
    expert: o.expert,
    floodBits: o.floodBits,
    ckks: {
      polyN: c.polyN,
      primeBits: c.primeBits as number[],
      ...(c.specialPrimeBits !== undefined ? { specialPrimeBits: c.specialPrimeBits as number } : {}),
      ...(c.allowInsecure ? { allowInsecure: true } : {}),
    },
  };
}
