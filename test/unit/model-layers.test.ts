import { afterAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/engine/model/model';
import { openEngines } from '../../src/server/engines';

describe('presets with fewer layers (numLayers)', () => {
  const open: Array<{ dispose(): unknown }> = [];
  afterAll(async () => {
    for (const m of open) await m.dispose();
  });

  it('loads the first layers of a preset, names it honestly, and computes something else than the whole model', async () => {
    const full = await Model.load('tiny', { backend: 'cpu', seed: 7 });
    open.push(full);
    const layers = full.config.numHiddenLayers;
    expect(layers).toBeGreaterThan(1);
    const cut = await Model.load('tiny', { backend: 'cpu', seed: 7, numLayers: layers - 1 });
    open.push(cut);
    expect(cut.config.numHiddenLayers).toBe(layers - 1);
    expect(cut.config.name).toContain(`${layers - 1} of ${layers} layers (random weights)`);
    const ids = [1, 5, 9, 2];
    const a = await full.forward(ids);
    const b = await cut.forward(ids);
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
    expect(diff).toBeGreaterThan(1e-3);
    // Same seed and layer count: the same model.
    const again = await Model.load('tiny', { backend: 'cpu', seed: 7, numLayers: layers - 1 });
    open.push(again);
    expect(Array.from(await again.forward(ids))).toEqual(Array.from(b));
  });

  it('refuses a layer count out of range, or with a folder', async () => {
    await expect(Model.load('tiny', { backend: 'cpu', numLayers: 0 })).rejects.toThrow(/numLayers/);
    await expect(Model.load('tiny', { backend: 'cpu', numLayers: 999 })).rejects.toThrow(/numLayers must be <=/);
    await expect(Model.load('datasets/fixtures/qwen2-tiny-f32', { backend: 'cpu', numLayers: 1 })).rejects.toThrow(/presets only/);
  });

  it('gives a server whose pipeline truncated a preset a split engine with the same layers', async () => {
    const engines = await openEngines({ backend: 'cpu', model: 'tiny', pipeline: { numLayers: 1 } });
    try {
      expect(engines.splitUnavailable).toBeUndefined();
      expect(engines.split).toBeDefined();
      expect(engines.split!.config().numLayers).toBe(1);
    } finally {
      await engines.split?.dispose?.();
      await engines.service.dispose();
    }
  });
});
