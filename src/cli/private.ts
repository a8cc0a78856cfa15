/**
 * The private (client-key) mode from the command line.
 *
 *   tensafe serve-private [--host 127.0.0.1] [--port 8096] [--adapters DIR | --model <preset|dir>]
 *                         [--backend cpu|cuda] [--device N] [--max-sessions 8] [--idle-s 120] [--allow-insecure]
 *     serves WS /api/v1/private/stream alone (the server holds the adapters; no base model needed).
 *     Prints one JSON line {"listening": url} when ready.
 *
 *   tensafe private --server URL [--expert common_r16] [--placement final-hidden|layers]
 *                   [--protocol two-round|one-round] [--model default|<preset>|<dir>] [--backend cpu|cuda]
 *                   [--prompt TEXT] [--max-tokens 16] [--rtt-ms 0] [--bandwidth-mbps 0] [--flood-bits 40]
 *                   [--poly-n N]
 *     runs the base model here, holds the key, and prints each token's stages, bytes and rounds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { modelConfig } from '../engine/model';
import { Model } from '../engine/model/model';
import { packageRoot } from '../engine/native';
import { DEFAULT_EXPERT_SPECS, ExpertSet, writeSyntheticExperts, type ModelShape, type SyntheticExpertSpec } from '../pipeline/experts';
import { PrivateClient, PRIVATE_STAGES } from '../private/client';
import type { ProtocolName } from '../private/params';
import type { PlacementName } from '../private/sites';
import { startPrivateServer } from '../server/private-server';

/** The adapter shape of the literature's private-LoRA setting (issue 12's benchmark). */
export const COMMON_PRIVATE_EXPERT: SyntheticExpertSpec = { name: 'common_r16', r: 16, alpha: 32, targetModules: ['q_proj', 'v_proj'] };

export function shapeOfModel(source: string): ModelShape & { name: string } {
  const c = modelConfig(source);
  return { name: c.name, hiddenSize: c.hiddenSize, numLayers: c.numHiddenLayers, numHeads: c.numAttentionHeads, numKvHeads: c.numKeyValueHeads, headDim: c.headDim, intermediateSize: c.intermediateSize };
}

/** Synthetic experts (the original's three + common_r16) for a model's shape, written once under datasets/cache. */
export function privateExpertsFor(source: string, seed = 0, numLayers?: number): ExpertSet {
  const s = shapeOfModel(source);
  if (numLayers !== undefined) s.numLayers = Math.min(s.numLayers, numLayers);
  const root = path.join(packageRoot(), 'datasets', 'cache', 'experts-private', `d${s.hiddenSize}-l${s.numLayers}-h${s.numHeads}-kv${s.numKvHeads}-i${s.intermediateSize}-seed${seed}`);
  if (!fs.existsSync(path.join(root, 'router.json'))) writeSyntheticExperts(root, s, { seed, baseModel: s.name, specs: [...DEFAULT_EXPERT_SPECS, COMMON_PRIVATE_EXPERT] });
  return new ExpertSet(root);
}

function flags(argv: string[], allowed: string[], booleans: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new RangeError(`unexpected argument '${a}'`);
    const name = a.slice(2);
    if (booleans.includes(name)) {
      out[name] = 'true';
      continue;
    }
    if (!allowed.includes(name)) throw new RangeError(`unknown flag --${name} (known: ${[...allowed, ...booleans].map((f) => '--' + f).join(' ')})`);
    const v = argv[++i];
    if (v === undefined) throw new RangeError(`--${name} needs a value`);
    out[name] = v;
  }
  return out;
}

function int(f: Record<string, string>, name: string, def: number, min: number, max: number): number {
  if (f[name] === undefined) return def;
  const n = Number(f[name]);
  if (!Number.isInteger(n) || n < min || n > max) throw new RangeError(`--${name} must be an integer in [${min}, ${max}], got '${f[name]}'`);
  return n;
}

function num(f: Record<string, string>, name: string, def: number): number {
  if (f[name] === undefined) return def;
  const n = Number(f[name]);
  if (!Number.isFinite(n) || n < 0 || !/^[0-9.]+$/.test(f[name])) throw new RangeError(`--${name} must be a number >= 0, got '${f[name]}'`);
  return n;
}

function backendOf(v: string | undefined, def: 'cpu' | 'cuda'): 'cpu' | 'cuda' {
  if (v === undefined) return def;
  if (v !== 'cpu' && v !== 'cuda') throw new RangeError(`--backend must be cpu or cuda, got '${v}'`);
  return v;
}

export async function runServePrivate(argv: string[]): Promise<void> {
  const f = flags(argv, ['host', 'port', 'adapters', 'model', 'num-layers', 'backend', 'device', 'max-sessions', 'idle-s', 'token'], ['allow-insecure']);
  const model = f.model ?? 'qwen2.5-1.5b-shape';
  const experts = f.adapters ? new ExpertSet(f.adapters) : privateExpertsFor(model, 0, f['num-layers'] !== undefined ? int(f, 'num-layers', 0, 1, 1000) : undefined);
  // the final-hidden pair is d x d for the model's hidden size d (--model names the shape the adapters are for)
  const hiddenSize = shapeOfModel(model).hiddenSize;
  const { server, url } = await startPrivateServer({
    experts,
    hiddenSize,
    backend: backendOf(f.backend, 'cpu'),
    ...(f.device !== undefined ? { device: int(f, 'device', 0, 0, 63) } : {}),
    host: f.host ?? '127.0.0.1',
    port: int(f, 'port', 8096, 0, 65535),
    maxSessions: int(f, 'max-sessions', 8, 1, 1024),
    idleMs: int(f, 'idle-s', 120, 1, 86400) * 1000,
    allowInsecure: f['allow-insecure'] === 'true',
    token: f.token ?? (process.env.TENSAFE_TOKEN || undefined),
  });
  console.log(JSON.stringify({ listening: url, experts: experts.names(), backend: f.backend ?? 'cpu' }));
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

export async function runPrivate(argv: string[]): Promise<void> {
  const f = flags(argv, ['token', 'server', 'expert', 'placement', 'protocol', 'model', 'backend', 'prompt', 'max-tokens', 'rtt-ms', 'bandwidth-mbps', 'flood-bits', 'poly-n', 'num-layers']);
  if (!f.server) throw new RangeError('private: --server URL is required (a tensafe serve or serve-private)');
  const placement = (f.placement ?? 'final-hidden') as PlacementName;
  const protocol = (f.protocol ?? 'two-round') as ProtocolName;
  const backend = backendOf(f.backend, 'cpu');
  const source = f.model === undefined || f.model === 'default' ? 'qwen2.5-1.5b-shape' : f.model;
  const numLayers = f['num-layers'] !== undefined ? int(f, 'num-layers', 0, 1, 1000) : backend === 'cpu' && f.model === undefined ? 4 : undefined;
  const model = await Model.load(source, { backend, contextLength: 1024, ...(numLayers ? { numLayers } : {}) });
  const client = await PrivateClient.open(model, {
    url: f.server,
    expert: f.expert ?? COMMON_PRIVATE_EXPERT.name,
    placement,
    protocol,
    floodBits: int(f, 'flood-bits', 40, 0, 128),
    ...(f['poly-n'] ? { ckks: { polyN: int(f, 'poly-n', 8192, 4096, 65536) } } : {}),
    network: { rttMs: num(f, 'rtt-ms', 0), bandwidthMbps: num(f, 'bandwidth-mbps', 0) || undefined },
    ...((f.token ?? process.env.TENSAFE_TOKEN) ? { headers: { authorization: `Bearer ${f.token ?? process.env.TENSAFE_TOKEN}` } } : {}),
  });
  try {
    console.log(`private session: ${protocol}, ${placement}, ${client.sites.length} site(s), polyN ${client.params.ckks.polyN}, flooding 2^-${client.params.floodBits}; setup ${client.setup.ms.toFixed(0)} ms, ${(client.setup.bytesUp / 1e6).toFixed(1)} MB up`);
    const it = client.generate(f.prompt ?? 'What is a savings account?', { maxTokens: int(f, 'max-tokens', 16, 1, 4096), stopAtEos: false });
    let r = await it.next();
    while (!r.done) {
      const e = r.value;
      const stages = PRIVATE_STAGES.map((s) => `${s} ${e.stages[s].toFixed(2)}`).join(' | ');
      console.log(`#${e.index} id ${e.id} ${JSON.stringify(e.text)}: ${e.totalMs.toFixed(1)} ms (${stages}) up ${(e.bytesUp / 1e3).toFixed(0)} kB down ${(e.bytesDown / 1e3).toFixed(0)} kB, ${e.rounds} rounds`);
      r = await it.next();
    }
    const s = r.value;
    console.log(`${s.tokens} tokens, ${s.tokPerS.toFixed(2)} tok/s; per token ${(s.bytesPerToken.up / 1e6).toFixed(2)} MB up, ${(s.bytesPerToken.down / 1e6).toFixed(2)} MB down, ${s.roundsPerToken} rounds`);
  } finally {
    await client.dispose();
    model.dispose();
  }
}
