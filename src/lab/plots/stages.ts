/**
 * Stage names of the per-token records (shared/design/architecture.md) with display labels
 * and fixed colours, shared by every breakdown figure and table.
 */
import { PALETTE } from '../figure';

export const STAGE_ORDER = [
  'forward', 'dp_noise', 'encode', 'encrypt', 'ct_pt_multiply', 'decrypt', 'decode', 'transfer',
  'extract_sum', 'lora_b', 'lm_head', 'sampling', 'network', 'server', 'other',
] as const;

export const STAGE_LABELS: Record<string, string> = {
  forward: 'Transformer forward',
  dp_noise: 'DP noise',
  encode: 'CKKS encode',
  encrypt: 'CKKS encrypt',
  ct_pt_multiply: 'ct x pt multiply',
  decrypt: 'Decrypt',
  decode: 'Decode',
  transfer: 'Device -> host transfer',
  extract_sum: 'Extract + segment sums',
  lora_b: 'LoRA-B (plaintext)',
  lm_head: 'LM head',
  sampling: 'Sampling',
  network: 'Network / framing',
  server: 'Server forward (incl. HE)',
  other: 'Other',
  unaccounted: 'Not itemised (printed total minus parts)',
};

/** Stages that run under (or around) CKKS: the HE-LoRA part of a token. */
export const HE_STAGES = new Set(['encode', 'encrypt', 'ct_pt_multiply', 'decrypt', 'decode', 'transfer', 'extract_sum']);

export function stageLabel(stage: string): string {
  return STAGE_LABELS[stage] ?? stage;
}

export function stageColor(stage: string): string {
  if (stage === 'unaccounted') return '#C8C8C8';
  const i = (STAGE_ORDER as readonly string[]).indexOf(stage);
  return PALETTE[(i >= 0 ? i : STAGE_ORDER.length) % PALETTE.length];
}

/** Known stages first in pipeline order, then unknown ones alphabetically. */
export function orderStages(stages: Iterable<string>): string[] {
  const all = [...new Set(stages)];
  const known = (STAGE_ORDER as readonly string[]).filter((s) => all.includes(s));
  const rest = all.filter((s) => !(STAGE_ORDER as readonly string[]).includes(s) && s !== 'unaccounted').sort();
  return [...known, ...rest, ...(all.includes('unaccounted') ? ['unaccounted'] : [])];
}
