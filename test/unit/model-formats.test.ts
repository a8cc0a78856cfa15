/**
 * Loading Hugging Face folders: every refusal the loader promises (other architectures, shapes
 * or dtypes that do not fit the config, truncated or inconsistent safetensors, broken shard
 * indexes) and the plaintext per-layer LoRA adapters, checked against a checkpoint whose weights
 * were merged (W + s B A) and saved with the small safetensors writer below.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { Model, modelConfig, readSafetensors } from '../../src/engine/model';
import { packageRoot } from '../../src/engine/native';

const fixtures = path.join(packageRoot(), 'datasets', 'fixtures');
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-model-formats-'));
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

let counter = 0;
function copyFixture(name: string): string {
  const dst = path.join(tmpRoot, `${name}-${counter++}`);
  fs.cpSync(path.join(fixtures, name), dst, { recursive: true });
  return dst;
}

function editConfig(dir: string, edit: (c: Record<string, unknown>) => void): void {
  const file = path.join(dir, 'config.json');
  const c = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(c);
  fs.writeFileSync(file, JSON.stringify(c));
}

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Raw access to a safetensors file: header entries and the data section. */
function readRaw(file: string): { header: Record<string, Entry>; data: Buffer } {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  return { header: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')), data: buf.subarray(8 + n) };
}

/** Writes float32 tensors as a safetensors file (header padded to 8 bytes, as the format asks). */
function writeSafetensors(file: string, tensors: Record<string, { shape: number[]; data: Float32Array }>): void {
  const header: Record<string, Entry> = {};
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8) json += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const parts = [len, Buffer.from(json, 'utf8'), ...Object.values(tensors).map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))];
  fs.writeFileSync(file, Buffer.concat(parts));
}

function writeRaw(file: string, header: Record<string, unknown>, data: Buffer): void {
  const json = JSON.stringify(header);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(json, 'utf8'), data]));
}

async function loadFails(dir: string, pattern: RegExp, code = 'ERR_TENSAFE_FORMAT'): Promise<void> {
  const err = await Model.load(dir, { backend: 'cpu', contextLength: 8 }).then(
    (m) => {
      m.dispose();
      return undefined;
    },
    (e: unknown) => e as Error & { code?: string },
  );
  expect(err, `loading ${dir} should fail with ${pattern}`).toBeInstanceOf(Error);
  expect(err!.message).toMatch(pattern);
  expect(err!.code).toBe(code);
}

describe('config.json', () => {
  it('reads rope_theta at the top level (Qwen2.5) and under rope_parameters (transformers 5)', () => {
    expect(modelConfig(path.join(fixtures, 'qwen2-small-tied-f32')).ropeTheta).toBe(1e6);
    expect(modelConfig(path.join(fixtures, 'qwen2-tiny-f32')).ropeTheta).toBe(1e4);
    const dir = copyFixture('qwen2-tiny-f32');
    editConfig(dir, (c) => {
      c.rope_theta = 123;
      c.rope_parameters = { rope_type: 'default', rope_theta: 5e5 };
    });
    expect(modelConfig(dir).ropeTheta).toBe(5e5);
  });

  it.each([
    ['model_type llama', (c: Record<string, unknown>) => (c.model_type = 'llama'), /only Qwen2/],
    ['a Llama architecture', (c: Record<string, unknown>) => (c.architectures = ['LlamaForCausalLM']), /LlamaForCausalLM.*not supported/],
    ['another activation', (c: Record<string, unknown>) => (c.hidden_act = 'gelu'), /hidden_act "gelu"/],
    ['sliding-window attention', (c: Record<string, unknown>) => (c.use_sliding_window = true), /sliding-window/],
    ['sliding layers', (c: Record<string, unknown>) => (c.layer_types = ['sliding_attention', 'full_attention']), /full_attention/],
    ['scaled RoPE', (c: Record<string, unknown>) => (c.rope_parameters = { rope_type: 'yarn', rope_theta: 1e4, factor: 4 }), /RoPE type "yarn"/],
    ['heads that do not group', (c: Record<string, unknown>) => (c.num_key_value_heads = 3), /must divide num_attention_heads/],
    ['a missing field', (c: Record<string, unknown>) => delete c.vocab_size, /missing required field "vocab_size"/],
    ['a string where a number belongs', (c: Record<string, unknown>) => (c.hidden_size = '64'), /"hidden_size" must be an integer/],
  ])('refuses %s', async (_what, edit, pattern) => {
    const dir = copyFixture('qwen2-tiny-f32');
    editConfig(dir, edit);
    await loadFails(dir, pattern);
  });

  it('refuses invalid JSON and a folder without config.json', async () => {
    const dir = copyFixture('qwen2-tiny-f32');
    fs.writeFileSync(path.join(dir, 'config.json'), '{"model_type": "qwen2",');
    await loadFails(dir, /invalid JSON/);
    fs.rmSync(path.join(dir, 'config.json'));
    await loadFails(dir, /no readable config.json/, 'ERR_TENSAFE_ARG_RANGE');
  });
});

describe('weights against the config', () => {
  it('refuses tensors whose shape does not fit the config, naming the tensor', async () => {
    const dir = copyFixture('qwen2-tiny-f32');
    editConfig(dir, (c) => (c.intermediate_size = 96));
    await loadFails(dir, /model\.layers\.0\.mlp\.gate_proj\.weight" has shape \[128, 64\], the config needs \[96, 64\]/);
  });

  it('refuses missing layers and tensors the config does not know', async () => {
    const more = copyFixture('qwen2-tiny-f32');
    editConfig(more, (c) => {
      c.num_hidden_layers = 3;
      c.layer_types = ['full_attention', 'full_attention', 'full_attention'];
    });
    await loadFails(more, /missing tensor "model\.layers\.2\./);
    const fewer = copyFixture('qwen2-tiny-f32');
    editConfig(fewer, (c) => {
      c.num_hidden_layers = 1;
      c.layer_types = ['full_attention'];
    });
    await loadFails(fewer, /unexpected tensor "model\.layers\.1\./);
  });

  it('needs lm_head.weight unless the embeddings are tied', async () => {
    const dir = copyFixture('qwen2-tiny-f32');
    const file = path.join(dir, 'model.safetensors');
    const { header, data } = readRaw(file);
    delete header['lm_head.weight'];
    writeRaw(file, header, data);
    await loadFails(dir, /missing tensor "lm_head\.weight"/);
    editConfig(dir, (c) => (c.tie_word_embeddings = true));
    const m = await Model.load(dir, { backend: 'cpu', contextLength: 8 });
    expect(m.config.tieWordEmbeddings).toBe(true);
    m.dispose();
  });

  it('refuses non-float dtypes', async () => {
    const dir = copyFixture('qwen2-tiny-f32');
    const file = path.join(dir, 'model.safetensors');
    const { header, data } = readRaw(file);
    header['model.norm.weight'].dtype = 'I32'; // same byte size, so only the dtype check can refuse it
    writeRaw(file, header, data);
    await loadFails(dir, /"model\.norm\.weight" has dtype I32; weights must be F32, F16 or BF16/);
  });
});

describe('safetensors integrity', () => {
  it('refuses a truncated file', async () => {
    const dir = copyFixture('qwen2-tiny-f32');
    const file = path.join(dir, 'model.safetensors');
    const buf = fs.readFileSync(file);
    fs.writeFileSync(file, buf.subarray(0, buf.length - 100));
    await loadFails(dir, /truncated file/);
    fs.writeFileSync(file, buf.subarray(0, 5));
    await loadFails(dir, /too short/);
  });

  it('refuses a header length beyond the file, a garbled header, byte counts that disagree and overlaps', async () => {
    const dir = copyFixture('qwen2-tiny-f32');
    const file = path.join(dir, 'model.safetensors');
    const { header, data } = readRaw(file);
    const buf = fs.readFileSync(file);
    const big = Buffer.from(buf);
    big.writeBigUInt64LE(BigInt(buf.length));
    fs.writeFileSync(file, big);
    await loadFails(dir, /header length .* does not fit/);
    const garbled = Buffer.from(buf);
    garbled[9] = 0x7b; // '{' inside the JSON
    fs.writeFileSync(file, garbled);
    await loadFails(dir, /invalid JSON/);
    const h2 = structuredClone(header);
    h2['model.norm.weight'].shape = [65];
    writeRaw(file, h2, data);
    await loadFails(dir, /"model\.norm\.weight": holds 256 bytes, its shape and dtype need 260/);
    const h3 = structuredClone(header);
    h3['model.layers.0.input_layernorm.weight'].data_offsets = h3['model.norm.weight'].data_offsets; // same size
    writeRaw(file, h3, data);
    await loadFails(dir, /overlap/);
  });

  it('loads shards through the index and refuses broken indexes', async () => {
    const ok = await Model.load(path.join(fixtures, 'qwen2-tiny-bf16-sharded'), { backend: 'cpu', contextLength: 8 });
    expect(ok.dtype).toBe('bf16');
    ok.dispose();
    const dir = copyFixture('qwen2-tiny-bf16-sharded');
    const indexFile = path.join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
    const shard = index.weight_map['model.norm.weight'];
    fs.rmSync(path.join(dir, shard));
    await loadFails(dir, /lists shard ".*", which is missing/);
    const dir2 = copyFixture('qwen2-tiny-bf16-sharded');
    const i2 = structuredClone(index);
    i2.weight_map['model.norm.weight'] = '../model.safetensors';
    fs.writeFileSync(path.join(dir2, 'model.safetensors.index.json'), JSON.stringify(i2));
    await loadFails(dir2, /not a plain file name/);
    const dir3 = copyFixture('qwen2-tiny-bf16-sharded');
    const i3 = structuredClone(index);
    const other = Object.values(index.weight_map).find((s) => s !== shard) as string;
    i3.weight_map['model.norm.weight'] = other;
    fs.writeFileSync(path.join(dir3, 'model.safetensors.index.json'), JSON.stringify(i3));
    await loadFails(dir3, /places "model\.norm\.weight" in .*, which does not hold it/);
  });

  it('refuses pickle checkpoints and empty folders', async () => {
    const dir = path.join(tmpRoot, `pickle-${counter++}`);
    fs.mkdirSync(dir);
    fs.copyFileSync(path.join(fixtures, 'qwen2-tiny-f32', 'config.json'), path.join(dir, 'config.json'));
    await loadFails(dir, /neither model\.safetensors nor/, 'ERR_TENSAFE_ARG_RANGE');
    fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), 'not loaded');
    await loadFails(dir, /pickle files are never loaded/);
  });
});

describe('per-layer LoRA adapters (cpu)', () => {
  it('equal a checkpoint with the adapters merged into its weights', async () => {
    const src = path.join(fixtures, 'qwen2-tiny-f32');
    const tensors = readSafetensors(path.join(src, 'model.safetensors')).tensors;
    let s = 7;
    const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.4;
    const adapters = [
      { layer: 1, target: 'q_proj' as const, rank: 2, scaling: 2 },
      { layer: 0, target: 'down_proj' as const, rank: 3, scaling: 0.5 },
      { layer: 0, target: 'v_proj' as const, rank: 1, scaling: 1 },
    ].map((a) => {
      const w = tensors[`model.layers.${a.layer}.${a.target.startsWith('down') ? 'mlp' : 'self_attn'}.${a.target}.weight`];
      const [out, inp] = w.shape;
      return { ...a, out, inp, a: Float32Array.from({ length: a.rank * inp }, rnd), b: Float32Array.from({ length: out * a.rank }, rnd) };
    });
    // Merge W' = W + s B A into a copy of the checkpoint.
    const merged: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [name, t] of Object.entries(tensors)) merged[name] = { shape: t.shape, data: Float32Array.from(t.data!) };
    for (const a of adapters) {
      const key = `model.layers.${a.layer}.${a.target.startsWith('down') ? 'mlp' : 'self_attn'}.${a.target}.weight`;
      const w = merged[key].data;
      for (let o = 0; o < a.out; o++)
        for (let i = 0; i < a.inp; i++) {
          let acc = 0;
          for (let r = 0; r < a.rank; r++) acc += a.b[o * a.rank + r] * a.a[r * a.inp + i];
          w[o * a.inp + i] += a.scaling * acc;
        }
    }
    const dir = copyFixture('qwen2-tiny-f32');
    writeSafetensors(path.join(dir, 'model.safetensors'), merged);

    const prompt = [5, 17, 900, 3, 44, 1000, 7];
    const base = await Model.load(src, { backend: 'cpu', contextLength: 16 });
    const reference = await Model.load(dir, { backend: 'cpu', contextLength: 16 });
    try {
      const plain = await base.forward(prompt);
      base.setLayerAdapters(adapters.map(({ layer, target, rank, scaling, a, b }) => ({ layer, target, rank, scaling, a, b })));
      base.reset();
      const adapted = await base.forward(prompt);
      const expected = await reference.forward(prompt);
      let diff = 0;
      let moved = 0;
      for (let i = 0; i < adapted.length; i++) {
        diff = Math.max(diff, Math.abs(adapted[i] - expected[i]));
        moved = Math.max(moved, Math.abs(adapted[i] - plain[i]));
      }
      expect(moved).toBeGreaterThan(0.05); // the adapters matter
      expect(diff).toBeLessThan(1e-4);
      base.setLayerAdapters([]);
      base.reset();
      const cleared = await base.forward(prompt);
      expect(Array.from(cleared)).toEqual(Array.from(plain));
      // The projection-hook path (how an encrypted LoRA plugs in): same result, one call per
      // token and site, with the projection's input and output.
      base.context.native.setHookLora(adapters.map(({ layer, target, rank, scaling, a, b }) => ({ layer, target, rank, scaling, a, b })));
      base.reset();
      const hooked = await base.forward(prompt);
      let hookDiff = 0;
      for (let i = 0; i < hooked.length; i++) hookDiff = Math.max(hookDiff, Math.abs(hooked[i] - expected[i]));
      expect(hookDiff).toBeLessThan(1e-4);
      expect(base.context.native.hookCalls).toBe(prompt.length * adapters.length);
      await base.forward([3]);
      expect(base.context.native.hookCalls).toBe((prompt.length + 1) * adapters.length);
      base.context.native.setHookLora([]);
      base.reset();
      expect(Array.from(await base.forward(prompt))).toEqual(Array.from(plain));
      const bad = { layer: 0, target: 'q_proj' as const, rank: 2, a: new Float32Array(3), b: new Float32Array(128) };
      expect(() => base.setLayerAdapters([bad])).toThrow(/adapters\[0\]\.a must hold rank x 64 = 128 values, got 3/);
      expect(() => base.setLayerAdapters([{ ...bad, layer: 2, a: new Float32Array(128) }])).toThrow(/layer must be in \[0, 2\)/);
      expect(() => base.setLayerAdapters([{ ...bad, target: 'x_proj' as never }])).toThrow(/unknown projection/);
    } finally {
      base.dispose();
      reference.dispose();
    }
  });
});
