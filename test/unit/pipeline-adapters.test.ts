import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loraDeltaReference, loraScaling, PeftAdapter, peftKey } from '../../src/pipeline/adapter';
import { ExpertSet, makeSyntheticExpert, projectionDims, writeSyntheticExperts, type ModelShape } from '../../src/pipeline/experts';
import { KeywordRouter, ORIGINAL_ROUTER_CONFIG } from '../../src/pipeline/router';
import {
  bf16ToFloat,
  f16ToFloat,
  floatToBf16,
  floatToF16,
  parseSafetensors,
  roundTo,
  serializeSafetensors,
} from '../../src/pipeline/safetensors';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-adapters-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SMALL: ModelShape = { hiddenSize: 64, numLayers: 3, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 96 };

function rand(n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (Math.random() * 2 - 1) * scale);
}

describe('half-precision conversions', () => {
  it('f16 round trip of representable values and rounding of others', () => {
    for (const v of [0, 1, -2, 0.5, 65504, -65504, 2 ** -24, 6.103515625e-5, 0.333251953125]) expect(f16ToFloat(floatToF16(v))).toBe(v);
    expect(floatToF16(1e6)).toBe(0x7c00); // overflow -> +inf
    expect(Number.isNaN(f16ToFloat(floatToF16(NaN)))).toBe(true);
    // relative error of f16 rounding <= 2^-11 for normal values
    for (const v of rand(1000, 100)) if (Math.abs(v) > 1e-4) expect(Math.abs(roundTo('F16', v) / v - 1)).toBeLessThanOrEqual(2 ** -11);
  });
  it('bf16 keeps the top 16 bits with round-to-nearest-even', () => {
    for (const v of [0, 1, -2, 0.5, 3.140625]) expect(bf16ToFloat(floatToBf16(v))).toBe(v);
    expect(floatToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(floatToBf16(1 + 3 * 2 ** -9)).toBe(0x3f81); // 0.75 ulp up
    expect(floatToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie 1.5 ulp -> even
    for (const v of rand(1000, 100)) expect(Math.abs(roundTo('BF16', v) / v - 1)).toBeLessThanOrEqual(2 ** -8);
  });
});

describe('safetensors', () => {
  it('round-trips F32, F16 and BF16 tensors and metadata', () => {
    const a = rand(6 * 5);
    const b = rand(7);
    const c = rand(4 * 4);
    const bytes = serializeSafetensors(
      { a: { dtype: 'F32', shape: [6, 5], data: a }, b: { dtype: 'F16', shape: [7], data: b }, c: { dtype: 'BF16', shape: [4, 4], data: c } },
      { format: 'pt' },
    );
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const f = parseSafetensors(bytes);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect([...f.tensors.get('a')!.data]).toEqual([...a]);
    expect(f.tensors.get('b')!.shape).toEqual([7]);
    expect([...f.tensors.get('b')!.data]).toEqual([...b].map((x) => roundTo('F16', x)));
    expect([...f.tensors.get('c')!.data]).toEqual([...c].map((x) => roundTo('BF16', x)));
  });

  it('reads a file written by hand in the reference layout', () => {
    // header {"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} + [1.5, -2]
    const header = Buffer.from(JSON.stringify({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }));
    const buf = Buffer.alloc(8 + header.length + 8);
    buf.writeBigUInt64LE(BigInt(header.length), 0);
    header.copy(buf, 8);
    buf.writeFloatLE(1.5, 8 + header.length);
    buf.writeFloatLE(-2, 12 + header.length);
    expect([...parseSafetensors(buf).tensors.get('w')!.data]).toEqual([1.5, -2]);
  });

  it('refuses malformed files with ERR_TENSAFE_FORMAT', () => {
    const good = serializeSafetensors({ w: { dtype: 'F32', shape: [2, 2], data: rand(4) } });
    const bad = (bytes: Uint8Array, re: RegExp) => {
      let err: unknown;
      try {
        parseSafetensors(bytes);
      } catch (e) {
        err = e;
      }
      expect((err as NodeJS.ErrnoException)?.code).toBe('ERR_TENSAFE_FORMAT');
      expect(String(err)).toMatch(re);
    };
    bad(good.subarray(0, 5), /shorter/);
    bad(good.subarray(0, good.length - 4), /past the data block/);
    const huge = Uint8Array.from(good);
    new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
    bad(huge, /header length/);
    const mk = (h: object, dataLen: number) => {
      const j = Buffer.from(JSON.stringify(h));
      const out = Buffer.alloc(8 + j.length + dataLen);
      out.writeBigUInt64LE(BigInt(j.length), 0);
      j.copy(out, 8);
      return out;
    };
    bad(mk({ w: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, 8), /dtype/);
    bad(mk({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), /needs 12 bytes/);
    bad(mk({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, v: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12), /overlap/);
  });
});

describe('PEFT adapters', () => {
  it('scaling is alpha/r, or alpha/sqrt(r) with rsLoRA', () => {
    expect(loraScaling({ r: 32, lora_alpha: 64, use_rslora: false })).toBe(2);
    expect(loraScaling({ r: 16, lora_alpha: 32, use_rslora: true })).toBe(8);
  });

  it('synthetic experts are PEFT folders with the expected keys, shapes and config', () => {
    const root = path.join(tmp, 'experts');
    const names = writeSyntheticExperts(root, SMALL, { seed: 7 });
    expect(names).toEqual(['banking_expert', 'investment_expert', 'shared_attention']);
    const cfg = JSON.parse(fs.readFileSync(path.join(root, 'banking_expert', 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 32, lora_alpha: 64, target_modules: ['q_proj', 'v_proj'], use_rslora: false });
    const st = parseSafetensors(fs.readFileSync(path.join(root, 'banking_expert', 'adapter_model.safetensors')));
    const kv = SMALL.numKvHeads * SMALL.headDim;
    expect(st.tensors.get('base_model.model.model.layers.2.self_attn.v_proj.lora_A.weight')!.shape).toEqual([32, 64]);
    expect(st.tensors.get('base_model.model.model.layers.2.self_attn.v_proj.lora_B.weight')!.shape).toEqual([kv, 32]);
    expect(st.tensors.size).toBe(SMALL.numLayers * 2 * 2);
    const set = new ExpertSet(root);
    expect(set.names()).toEqual(names);
    const shared = set.get('shared_attention');
    expect(shared.config.use_rslora).toBe(true);
    expect(shared.pair(1, 'o_proj')!.inDim).toBe(SMALL.numHeads * SMALL.headDim);
    // deterministic in the seed, different across experts
    const again = makeSyntheticExpert(SMALL, { name: 'banking_expert', r: 32, alpha: 64, targetModules: ['q_proj', 'v_proj'] }, 7);
    expect([...again.pair(0, 'q_proj')!.a]).toEqual([...set.get('banking_expert').pair(0, 'q_proj')!.a]);
    expect(set.get('investment_expert').pair(0, 'q_proj')!.a[0]).not.toBe(set.get('banking_expert').pair(0, 'q_proj')!.a[0]);
  });

  it('save/load round trip keeps values (F32) and honours layers_to_transform', () => {
    const ad = makeSyntheticExpert(SMALL, { name: 'x', r: 4, alpha: 8, targetModules: ['q_proj', 'down_proj'], layers: [0, 2] }, 3);
    const dir = path.join(tmp, 'x');
    ad.save(dir);
    const back = PeftAdapter.load(dir);
    expect(back.config.layers_to_transform).toEqual([0, 2]);
    expect(back.pairs.map((p) => `${p.layer}.${p.module}`)).toEqual(['0.q_proj', '0.down_proj', '2.q_proj', '2.down_proj']);
    const p = back.pair(2, 'down_proj')!;
    expect(p.inDim).toBe(SMALL.intermediateSize);
    expect([...p.b]).toEqual([...ad.pair(2, 'down_proj')!.b]);
    expect(peftKey(2, 'down_proj', 'A')).toBe('base_model.model.model.layers.2.mlp.down_proj.lora_A.weight');
  });

  it('the synthetic delta is visible but smaller than its input', () => {
    const ad = makeSyntheticExpert(SMALL, { name: 'banking_expert', r: 32, alpha: 64, targetModules: ['q_proj'] }, 1);
    const pair = ad.finalHiddenPair(SMALL.hiddenSize);
    const x = Float64Array.from({ length: 64 }, () => Math.random() * 2 - 1);
    const y = loraDeltaReference(pair, ad.scaling, x);
    const rms = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((a, b) => a + b * b, 0) / v.length);
    const ratio = rms(y) / rms(x);
    expect(ratio).toBeGreaterThan(0.01); // the stated 5% target is checked on model hidden states in pipeline-experts-delta.test.ts
    expect(ratio).toBeLessThan(1.5);
  });

  it('refuses broken folders', () => {
    const dir = path.join(tmp, 'broken');
    makeSyntheticExpert(SMALL, { name: 'b', r: 2, alpha: 2, targetModules: ['q_proj'], layers: [0] }, 1).save(dir);
    const cfgFile = path.join(dir, 'adapter_config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, r: 3 }));
    expect(() => PeftAdapter.load(dir)).toThrow(/ranks 2\/2 differ from r = 3/);
    fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, target_modules: ['k_proj'] }));
    expect(() => PeftAdapter.load(dir)).toThrow(/not in target_modules/);
    fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, peft_type: 'IA3' }));
    expect(() => PeftAdapter.load(dir)).toThrow(/peft_type/);
    fs.rmSync(path.join(dir, 'adapter_model.safetensors'));
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    expect(() => PeftAdapter.load(dir)).toThrow(/adapter_model\.safetensors/);
  });

  it('projection dims follow the Qwen2 shape', () => {
    expect(projectionDims(SMALL, 'k_proj')).toEqual({ inDim: 64, outDim: 32 });
    expect(projectionDims(SMALL, 'down_proj')).toEqual({ inDim: 96, outDim: 64 });
  });
});

describe('keyword router', () => {
  const router = new KeywordRouter(ORIGINAL_ROUTER_CONFIG);
  it('picks the expert with the most matching keywords', () => {
    expect(router.route('What is a savings account?').expert).toBe('banking_expert');
    expect(router.route('Should I refinance my MORTGAGE?')).toEqual({ expert: 'banking_expert', matched: ['mortgage', 'refinance'], fallback: false });
    expect(router.route('How do I build a diversified portfolio of stocks and bonds?').expert).toBe('investment_expert');
    expect(router.route('Investing in ETFs').matched).toEqual(['invest', 'etf']);
  });
  it('falls back to the default expert and matches at word starts only', () => {
    expect(router.route('Tell me a story about dragons')).toEqual({ expert: 'shared_attention', matched: [], fallback: true });
    // "riskless" starts with "risk"; "embankment" does not start with "bank"
    expect(router.route('an embankment').expert).toBe('shared_attention');
    expect(router.route('riskless').expert).toBe('investment_expert');
    expect(router.route('what interest rate applies?').matched).toEqual(['interest rate']);
  });
  it('ties go to the first expert; config errors are named', () => {
    expect(router.route('bank stock').expert).toBe('banking_expert');
    expect(() => new KeywordRouter({ experts: {} })).toThrow(/empty/);
    expect(() => new KeywordRouter({ experts: { a: { gate_keywords: [''] } } })).toThrow(/gate_keywords/);
    expect(() => new KeywordRouter({ experts: { a: {} }, default: 'b' })).toThrow(/default 'b'/);
    expect(new KeywordRouter({ experts: { a: {}, b: { always_active: true } } }).defaultExpert).toBe('b');
  });
  it('reads the router.json written beside synthetic experts', () => {
    const root = path.join(tmp, 'r');
    writeSyntheticExperts(root, SMALL, { seed: 1 });
    const set = new ExpertSet(root);
    expect(set.resolve('auto', 'Is a bond market risky?').name).toBe('investment_expert');
    expect(set.resolve('banking_expert', 'anything').routed).toBe(false);
    expect(() => set.get('nope')).toThrow(/not found/);
  });
});
