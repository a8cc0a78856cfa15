/**
 * The real engines for the server tests: the pipeline on the CPU ('tiny' preset, random
 * weights) and the split engine over the same model. The synthetic experts are written to a
 * folder of this process, so test files running in parallel never race on a shared cache.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model, modelPresets } from '../../src/engine/model';
import { writeSyntheticExperts } from '../../src/pipeline/experts';
import type { Pipeline } from '../../src/pipeline/pipeline';
import type { GenerationService } from '../../src/pipeline/types';
import { openEngines, type Engines } from '../../src/server/engines';
import { startServer, type ServerOptions, type TensafeServer } from '../../src/server/server';
import type { SplitEngine } from '../../src/server/split-engine';

export async function openTinyEngines(): Promise<Engines & { cleanup: () => void }> {
  const c = modelPresets().find((p) => p.preset === 'tiny')!.config;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-server-experts-'));
  writeSyntheticExperts(root, { hiddenSize: c.hiddenSize, numLayers: c.numHiddenLayers, numHeads: c.numAttentionHeads, numKvHeads: c.numKeyValueHeads, headDim: c.headDim, intermediateSize: c.intermediateSize }, { seed: 0, baseModel: c.name });
  const e = await openEngines({ backend: 'cpu', model: 'tiny', adapters: root });
  return { ...e, cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

/** The engine behind the page test. */
export async function pageService(): Promise<{ service: GenerationService; split?: SplitEngine; dispose: () => Promise<void> }> {
  const e = await openTinyEngines();
  return {
    service: e.service,
    split: e.split,
    dispose: async () => {
      await e.split?.dispose();
      await e.service.dispose();
      e.cleanup();
    },
  };
}

/** The tiny engines behind a loopback server, and a local model of the same weights to compare with. */
export interface TinyServer {
  engines: Engines & { cleanup: () => void };
  pipeline: Pipeline;
  server: TensafeServer;
  base: string;
  wsBase: string;
  local: Model;
  close(): Promise<void>;
}

export async function openTinyServer(options: { localContext?: number; server?: Partial<ServerOptions> } = {}): Promise<TinyServer> {
  const engines = await openTinyEngines();
  const s = await startServer({ service: engines.service, split: engines.split, port: 0, ownEngines: false, rateLimit: { perMinute: 1_000_000, burst: 100_000 }, ...options.server });
  const local = await Model.load('tiny', { backend: 'cpu', seed: 0, contextLength: options.localContext ?? 256 });
  return {
    engines,
    pipeline: engines.service as Pipeline,
    server: s.server,
    base: s.url,
    wsBase: s.url.replace('http', 'ws'),
    local,
    close: async () => {
      await s.server.close(1000);
      local.dispose();
      await engines.split?.dispose();
      await engines.service.dispose();
      engines.cleanup();
    },
  };
}
