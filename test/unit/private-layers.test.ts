/**
 * The `layers` placement of the private mode on the CPU: every adapted module of every layer of a
 * PEFT adapter with several modules (q, k, v, o, gate, up: four sites per layer, two layers) runs
 * through the encrypted round trips while the client's forward pauses at each site
 * (ModelContext.runWithSites); 64 greedy tokens equal those of the same adapter in plaintext
 * inside the model (setLayerAdapters), for both protocols.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/engine/model';
import { ExpertSet, writeSyntheticExperts } from '../../src/pipeline/experts';
import { PrivateClient } from '../../src/private/client';
import { startPrivateServer, type PrivateServer } from '../../src/server/private-server';

const SHAPE = { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 128 };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-private-layers-'));
let experts: ExpertSet;
let server: PrivateServer;
let url: string;
let model: Model;

beforeAll(async () => {
  writeSyntheticExperts(path.join(tmp, 'e'), SHAPE, {
    seed: 21,
    specs: [{ name: 'mixed_r4', r: 4, alpha: 8, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj'] }],
  });
  experts = new ExpertSet(path.join(tmp, 'e'));
  ({ server, url } = await startPrivateServer({ experts, hiddenSize: 64, backend: 'cpu' }));
  model = await Model.load('tiny', { backend: 'cpu', contextLength: 256, seed: 3 });
});
afterAll(async () => {
  await server?.close();
  model?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const PROMPT = [5, 17, 99, 3, 42, 7];

async function plaintextLayers(steps: number): Promise<number[]> {
  const adapter = experts.get('mixed_r4');
  model.setLayerAdapters(adapter.pairs.map((p) => ({ layer: p.layer, target: p.module, rank: p.rank, scaling: adapter.scaling, a: p.a, b: p.b })));
  try {
    model.reset();
    model.setSamplingSeed(1);
    const ids: number[] = [];
    await model.prefill(PROMPT);
    for (let i = 0; i < steps; i++) {
      await model.lmHead();
      const id = model.sample({ temperature: 0 });
      ids.push(id);
      await model.decodeStep(id);
    }
    return ids;
  } finally {
    model.setLayerAdapters([]);
  }
}

describe('private generation, layers placement (CPU, tiny model)', () => {
  for (const protocol of ['two-round', 'one-round'] as const) {
    it(`${protocol}: 64 greedy tokens equal plaintext LoRA in the layers`, async () => {
      const want = await plaintextLayers(64);
      const client = await PrivateClient.open(model, { url, expert: 'mixed_r4', placement: 'layers', protocol });
      try {
        expect(client.sites.length).toBe(6); // 2 layers x (q+k+v, o, gate+up)
        const { events, summary } = await client.run(PROMPT, { maxTokens: 64, stopAtEos: false });
        expect(summary.ids).toEqual(want);
        // the first token's forward covers the prompt: a site per prompt position and site
        expect(events[0].siteCalls).toBe(PROMPT.length * client.sites.length);
        for (const e of events.slice(1)) {
          expect(e.siteCalls).toBe(client.sites.length);
          expect(e.rounds).toBe(client.sites.length * (protocol === 'two-round' ? 2 : 1));
        }
      } finally {
        await client.dispose();
      }
    });
  }
});
