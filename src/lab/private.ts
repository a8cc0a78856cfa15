/**
 * The private (client-key) mode in a notebook: `lab.generate(prompt, { keyOwner: 'client', server, ... })`.
 * The client part runs in this process on the session's model (the pipeline's Model: the base model
 * is public, the client runs it) with its own CKKS key; the server holds the adapters:
 *   server: 'local'  a private endpoint started in this process on the pipeline's experts, reached through a
 *                    real WebSocket on loopback (what notebooks and tests use);
 *   server: url      any `tensafe serve` / `tensafe serve-private`.
 */
import * as aq from 'arquero';
import type { ColumnTable } from 'arquero';
import type { Model } from '../engine/model/model';
import type { PipelineOptions } from '../pipeline/types';
import { PrivateClient, PRIVATE_STAGES, type PrivateClientOptions, type PrivateGenerateOptions, type PrivateSummary, type PrivateTokenEvent } from '../private/client';
import type { ProtocolName } from '../private/params';
import type { PlacementName } from '../private/sites';
import type { NetworkModel } from '../private/transport';
import type { PrivateBarRow } from './plots/private';
import { type MeasuredProvenance, provenanceText } from './provenance';

/** What lab.generate takes for the private mode (keyOwner 'client'). */
export interface PrivateLabOptions extends Omit<PipelineOptions, 'keyOwner' | 'placement'>, PrivateGenerateOptions {
  keyOwner: 'client';
  /** 'local' (default): an in-process private endpoint on this session's experts; or a server URL. */
  server?: string;
  placement?: PlacementName;
  protocol?: ProtocolName;
  floodBits?: number;
  network?: NetworkModel;
  ckks?: PrivateClientOptions['ckks'];
  /** Bearer token for a remote server. */
  token?: string;
}

export class PrivateRun {
  constructor(
    readonly prompt: string,
    readonly tokens: PrivateTokenEvent[],
    readonly summary: PrivateSummary,
    readonly provenance: MeasuredProvenance,
  ) {}

  get text(): string {
    return this.summary.text;
  }

  source(): string {
    return provenanceText(this.provenance);
  }

  /** Median ms per stage over the tokens after the first (whose prefill carries the prompt's sites). */
  breakdown(): ColumnTable {
    return aq.from(PRIVATE_STAGES.map((stage) => ({ stage, median_ms: this.summary.stageMedians[stage] })));
  }

  /** One row per token: stages, bytes, rounds. */
  records(): ColumnTable {
    return aq.from(this.tokens.map((t) => ({ index: t.index, id: t.id, text: t.text, total_ms: t.totalMs, bytes_up: t.bytesUp, bytes_down: t.bytesDown, rounds: t.rounds, sites: t.siteCalls, ...t.stages })));
  }

  /** A row for lab.plot.privateStageBars / privateBytes. */
  barRow(label = `client key, ${this.summary.placement}, ${this.summary.protocol} (this session)`): PrivateBarRow {
    return {
      label,
      provenance: this.provenance,
      stages: { ...this.summary.stageMedians },
      bytesUp: this.summary.bytesPerToken.up,
      bytesDown: this.summary.bytesPerToken.down,
      roundsPerToken: this.summary.roundsPerToken,
    };
  }
}

/** One private generation with a client opened for it (keys and session setup included in `summary.setup`). */
export async function generatePrivate(model: Model, url: string, prompt: string, o: PrivateLabOptions, provenance: MeasuredProvenance, defaultExpert: string): Promise<PrivateRun> {
  const client = await PrivateClient.open(model, {
    url,
    expert: o.expert && o.expert !== 'auto' ? o.expert : defaultExpert,
    placement: o.placement ?? 'final-hidden',
    protocol: o.protocol ?? 'two-round',
    ...(o.floodBits !== undefined ? { floodBits: o.floodBits } : {}),
    ...(o.ckks ? { ckks: o.ckks } : {}),
    ...(o.network ? { network: o.network } : {}),
    ...(o.token ? { headers: { authorization: `Bearer ${o.token}` } } : {}),
  });
  try {
    const { events, summary } = await client.run(prompt, {
      maxTokens: o.maxTokens ?? 16,
      temperature: o.temperature ?? 0,
      topK: o.topK,
      topP: o.topP,
      seed: o.seed,
      stopAtEos: o.stopAtEos,
      chat: o.chat,
    });
    return new PrivateRun(prompt, events, summary, provenance);
  } finally {
    await client.dispose();
  }
}
