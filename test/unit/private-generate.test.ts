/**
 * Private generation end to end on the CPU: a PrivateClient (tiny model, its own CKKS key) against
 * a private server on loopback (real WebSocket), 64 greedy steps equal to plaintext LoRA's tokens,
 * for both protocols and placements; the per-token records carry the private stages and bytes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/engine/model';
import { loraDeltaReference, type LoraPair } from '../../src/pipeline/adapter';
import { ExpertSet, writeSyntheticExperts } from '../../src/pipeline/experts';
import { PrivateClient } from '../../src/private/client';
import { startPrivateServer, type PrivateServer } from '../../src/server/private-server';

const SHAPE = { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 128 };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-private-'));
let experts: ExpertSet;
let server: PrivateServer;
let url: string;
let model: Model;

beforeAll(async () => {
  const root = path.join(tmp, 'experts');
  writeSyntheticExperts(root, SHAPE, {
    seed: 11,
    specs: [
      { name: 'qv_r8', r: 8, alpha: 16, targetModules: ['q_proj', 'v_proj'] },
      { name: 'mixed_r4', r: 4, alpha: 8, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj'] },
    ],
  });
  experts = new ExpertSet(root);
  ({ server, url } = await startPrivateServer({ experts, hiddenSize: 64, backend: 'cpu' }));
  model = await Model.load('tiny', { backend: 'cpu', contextLength: 256, seed: 3 });
});
afterAll(async () => {
  await server?.close();
  model?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Greedy tokens with the final-hidden pair in float64 plaintext: h + scaling B A h before the LM head. */
async function plaintextFinalHidden(pair: LoraPair, scaling: number, prompt: number[], steps: number): Promise<number[]> {
  model.reset();
  const ids: number[] = [];
  await model.prefill(prompt);
  for (let i = 0; i < steps; i++) {
    const h = model.hidden();
    model.addToHidden(Float32Array.from(loraDeltaReference(pair, scaling, h)));
    await model.lmHead();
    const id = model.sample({ temperature: 0 });
    ids.push(id);
    await model.decodeStep(id);
  }
  return ids;
}

const PROMPT = [5, 17, 99, 3, 42, 7];

describe('private generation over the WebSocket (CPU, tiny model)', () => {
  for (const protocol of ['two-round', 'one-round'] as const) {
    it(`final-hidden, ${protocol}: 64 greedy tokens equal plaintext LoRA's`, async () => {
      const adapter = experts.get('qv_r8');
      const want = await plaintextFinalHidden(adapter.finalHiddenPair(64), adapter.scaling, PROMPT, 64);
      const client = await PrivateClient.open(model, { url, expert: 'qv_r8', placement: 'final-hidden', protocol });
      try {
        const { events, summary } = await client.run(PROMPT, { maxTokens: 64, stopAtEos: false });
        expect(summary.ids).toEqual(want);
        expect(summary.roundsPerToken).toBe(protocol === 'two-round' ? 2 : 1);
        for (const e of events) {
          expect(e.siteCalls).toBe(1);
          expect(e.bytesUp).toBeGreaterThan(1000);
          expect(e.bytesDown).toBeGreaterThan(1000);
          for (const s of ['forward', 'client_encrypt', 'network', 'server_he', 'client_decrypt', 'lm_head', 'sampling'] as const) {
            expect(e.stages[s], s).toBeGreaterThanOrEqual(0);
          }
          expect(e.stages.server_he).toBeGreaterThan(0);
        }
        expect(summary.insecure).toBe(false);
        expect(summary.setup.bytesUp).toBeGreaterThan(0);
      } finally {
        await client.dispose();
      }
    });
  }
});
