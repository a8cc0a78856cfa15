/**
 * The CPU decoder against transformers 5.17: small random Qwen2 models made on the GPU machine
 * (scripts/fixtures/make_qwen2_fixtures.py) with float32 reference logits, final hidden states and
 * 32-token greedy continuations. Tolerance 1e-3 absolute on logits (the engine lands near 1e-5).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Model, readSafetensors } from '../../src/engine/model';
import { packageRoot } from '../../src/engine/native';

const fixtures = path.join(packageRoot(), 'datasets', 'fixtures');
const TOL = 1e-3;

interface Reference {
  prompts: number[][];
  long_prompt: number[];
  greedy: number[][];
  weights_dtype: string;
  model: { d: number; vocab: number; tied: boolean; theta: number };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, offset = 0): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[offset + i]));
  return m;
}

const cases = [
  { name: 'qwen2-tiny-f32', dtype: 'f32' },
  { name: 'qwen2-small-tied-f32', dtype: 'f32' },
  { name: 'qwen2-odd-f32', dtype: 'f32' },
  { name: 'qwen2-tiny-bf16-sharded', dtype: 'bf16' },
];

describe.each(cases)('fixture $name (cpu)', ({ name, dtype }) => {
  const dir = path.join(fixtures, name);
  const ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8')) as Reference;
  const tensors = readSafetensors(path.join(dir, 'reference.safetensors')).tensors;
  const t = (key: string) => {
    const x = tensors[key]?.data;
    if (!x) throw new Error(`reference tensor ${key} missing`);
    return x;
  };
  let model: Model;

  beforeAll(async () => {
    model = await Model.load(dir, { backend: 'cpu', contextLength: 512 });
  });
  afterAll(() => model?.dispose());

  it('loads with the checkpoint dtype and shape', () => {
    expect(model.dtype).toBe(dtype);
    expect(model.backend).toBe('cpu');
    expect(model.config.hiddenSize).toBe(ref.model.d);
    expect(model.config.vocabSize).toBe(ref.model.vocab);
    expect(model.config.tieWordEmbeddings).toBe(ref.model.tied);
    expect(model.config.ropeTheta).toBe(ref.model.theta);
  });

  it('matches the reference logits and hidden state at every prompt position (one token per step)', async () => {
    const V = ref.model.vocab;
    const d = ref.model.d;
    for (const [p, ids] of ref.prompts.entries()) {
      model.reset();
      const logits = t(`prompt${p}.logits`);
      const hidden = t(`prompt${p}.hidden`);
      for (let i = 0; i < ids.length; i++) {
        const lg = await model.forward([ids[i]]);
        expect(lg.length).toBe(V);
        expect(maxAbsDiff(lg, logits, i * V)).toBeLessThan(TOL);
        expect(maxAbsDiff(model.hidden(), hidden, i * d)).toBeLessThan(TOL);
      }
    }
  });

  it('matches the reference logits after a whole-prompt prefill and on a 200-token prompt', async () => {
    const V = ref.model.vocab;
    for (const [p, ids] of ref.prompts.entries()) {
      model.reset();
      const lg = await model.forward(ids);
      expect(maxAbsDiff(lg, t(`prompt${p}.logits`), (ids.length - 1) * V)).toBeLessThan(TOL);
    }
    model.reset();
    const long = await model.forward(ref.long_prompt);
    expect(maxAbsDiff(long, t('long.logits'))).toBeLessThan(TOL);
  });

  it('continues each prompt greedily with the same 32 tokens (native loop and async iterator)', async () => {
    for (const [p, ids] of ref.prompts.entries()) {
      const native = await model.generateIds(ids, { maxNewTokens: 32, stopAtEos: false });
      expect(Array.from(native.tokens)).toEqual(ref.greedy[p]);
      const viaIterator: number[] = [];
      for await (const tok of model.generate(ids, { maxNewTokens: 32, stopAtEos: false })) viaIterator.push(tok.id);
      expect(viaIterator).toEqual(ref.greedy[p]);
      // The logits that chose the 32nd token, deep into the cache.
      model.reset();
      await model.prefill(ids);
      for (const id of ref.greedy[p].slice(0, 31)) await model.decodeStep(id);
      await model.lmHead();
      expect(maxAbsDiff(model.logits(), t(`prompt${p}.last_logits`))).toBeLessThan(TOL);
    }
  });
});
