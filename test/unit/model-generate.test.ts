/**
 * Text generation end to end: a small random Qwen2 with the real Qwen vocabulary (written here as
 * a Hugging Face folder), prompts as text, chats and ids, streamed text pieces that add up to the
 * tokenizer's decode of the ids, stop tokens and finish reasons.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Model, Tokenizer } from '../../src/engine/model';

const V = 151936;
const d = 16;
const ffn = 32;
let dir: string;
let model: Model;

function writeModel(folder: string): void {
  let s = 1;
  const rnd = (scale: number) => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 2 * scale;
  const t: Record<string, { shape: number[]; data: Float32Array }> = {};
  const add = (name: string, shape: number[], f: () => number) => {
    t[name] = { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, f) };
  };
  add('model.embed_tokens.weight', [V, d], () => rnd(1));
  const p = 'model.layers.0.';
  add(p + 'self_attn.q_proj.weight', [d, d], () => rnd(0.4));
  add(p + 'self_attn.q_proj.bias', [d], () => rnd(0.1));
  add(p + 'self_attn.k_proj.weight', [8, d], () => rnd(0.4));
  add(p + 'self_attn.k_proj.bias', [8], () => rnd(0.1));
  add(p + 'self_attn.v_proj.weight', [8, d], () => rnd(0.4));
  add(p + 'self_attn.v_proj.bias', [8], () => rnd(0.1));
  add(p + 'self_attn.o_proj.weight', [d, d], () => rnd(0.4));
  add(p + 'mlp.gate_proj.weight', [ffn, d], () => rnd(0.4));
  add(p + 'mlp.up_proj.weight', [ffn, d], () => rnd(0.4));
  add(p + 'mlp.down_proj.weight', [d, ffn], () => rnd(0.3));
  add(p + 'input_layernorm.weight', [d], () => 1);
  add(p + 'post_attention_layernorm.weight', [d], () => 1);
  add('model.norm.weight', [d], () => 1);
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const [name, x] of Object.entries(t)) {
    header[name] = { dtype: 'F32', shape: x.shape, data_offsets: [off, off + x.data.byteLength] };
    off += x.data.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.mkdirSync(folder, { recursive: true });
  fs.writeFileSync(
    path.join(folder, 'model.safetensors'),
    Buffer.concat([len, json, ...Object.values(t).map((x) => Buffer.from(x.data.buffer))]),
  );
  fs.writeFileSync(
    path.join(folder, 'config.json'),
    JSON.stringify({
      architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: d, intermediate_size: ffn,
      num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: V, rms_norm_eps: 1e-6,
      rope_theta: 1000000.0, tie_word_embeddings: true, hidden_act: 'silu', max_position_embeddings: 32768,
      eos_token_id: 151645, bos_token_id: 151643, torch_dtype: 'float32',
    }),
  );
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-model-generate-'));
  writeModel(path.join(dir, 'qwen2-real-vocab'));
  model = await Model.load(path.join(dir, 'qwen2-real-vocab'), { backend: 'cpu', contextLength: 256 });
});
afterAll(() => {
  model?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('text generation (cpu, real vocabulary)', () => {
  const tok = Tokenizer.qwen();

  it('streams pieces that add up to the decode of the generated ids', async () => {
    const pieces: string[] = [];
    const ids: number[] = [];
    let last;
    for await (const t of model.generate('What is a savings account?', { maxNewTokens: 20, temperature: 1.2, seed: 3, stopAtEos: false })) {
      expect(t.index).toBe(ids.length);
      expect(t.ms).toBeGreaterThan(0);
      ids.push(t.id);
      pieces.push(t.text);
      last = t;
    }
    expect(ids.length).toBe(20);
    expect(last?.finishReason).toBe('length');
    expect(pieces.join('')).toBe(tok.decode(ids));
  });

  it('takes the same prompt as text, ids or chat, and greedy runs are deterministic', async () => {
    const text = 'Hello there';
    const a = await model.generateText(text, { maxNewTokens: 8, stopAtEos: false });
    const b = await model.generateText(tok.encode(text), { maxNewTokens: 8, stopAtEos: false });
    expect(b.ids).toEqual(a.ids);
    const chat = await model.generateText([{ role: 'user', content: text }], { maxNewTokens: 8, stopAtEos: false });
    const chatFlag = await model.generateText(text, { maxNewTokens: 8, stopAtEos: false, chat: true });
    expect(chatFlag.ids).toEqual(chat.ids);
    const native = await model.generateIds(tok.encodeChat([{ role: 'user', content: text }]), { maxNewTokens: 8, stopAtEos: false });
    expect(Array.from(native.tokens)).toEqual(chat.ids);
  });

  it('stops at a stop token and says why', async () => {
    const free = await model.generateText('abc', { maxNewTokens: 12, stopAtEos: false });
    const stopAt = free.ids[4];
    const stopped = await model.generateText('abc', { maxNewTokens: 12, stopAtEos: false, stopTokens: [stopAt] });
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.ids).toEqual(free.ids.slice(0, free.ids.indexOf(stopAt) + 1));
    const native = await model.generateIds(model.encodePrompt('abc'), { maxNewTokens: 12, stopAtEos: false, stopTokens: [stopAt] });
    expect(Array.from(native.tokens)).toEqual(stopped.ids);
    expect(model.stopIds()).toEqual(expect.arrayContaining([151643, 151645]));
  });

  it('refuses text prompts for a model without the Qwen vocabulary', async () => {
    const tiny = await Model.load('tiny', { backend: 'cpu', contextLength: 16 });
    try {
      await expect(tiny.generateText('hello')).rejects.toThrow(/give prompts as token ids/);
      await expect(tiny.generateText([1, 2.5])).rejects.toThrow(RangeError);
    } finally {
      tiny.dispose();
    }
  });
});
