/**
 * Per-token stage records: medians for the summary and an arquero table for notebooks.
 */
import * as aq from 'arquero';
import type { ColumnTable } from 'arquero';
import { STAGES, type StageName, type StageTimes, type TokenEvent } from './types';

/** Median of each stage over the tokens where it ran. */
export function stageMedians(events: Array<Pick<TokenEvent, 'stages'>>): StageTimes {
  const out: StageTimes = {};
  for (const s of STAGES) {
    const v = events.map((e) => e.stages[s]).filter((x): x is number => typeof x === 'number').sort((a, b) => a - b);
    if (v.length === 0) continue;
    const m = v.length >> 1;
    out[s] = v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  }
  return out;
}

/** Sum of the HE stages (what the HE costs per token). */
export const HE_STAGES: StageName[] = ['dp_noise', 'encode', 'encrypt', 'ct_pt_multiply', 'decrypt', 'transfer', 'extract_sum'];

export function heMs(stages: StageTimes): number {
  return HE_STAGES.reduce((a, s) => a + (stages[s] ?? 0), 0);
}

/**
 * One row per token: index, id, text, totalMs and one column per stage (null where a stage did
 * not run), in pipeline order.
 */
export function recordsTable(events: TokenEvent[]): ColumnTable {
  const present = STAGES.filter((s) => events.some((e) => e.stages[s] !== undefined));
  const cols: Record<string, unknown[]> = {
    index: events.map((e) => e.index),
    id: events.map((e) => e.id),
    text: events.map((e) => e.text),
    totalMs: events.map((e) => e.totalMs),
  };
  for (const s of present) cols[s] = events.map((e) => e.stages[s] ?? null);
  return aq.table(cols);
}
