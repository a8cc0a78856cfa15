/**
 * One table of bad CKKS options and bad calls, run against both backends (the CPU half in
 * test/unit/ckks-backends.test.ts, the CUDA half in test/gpu/ckks-backends.test.ts): the same
 * mistake must give the same error class, code and message on CkksContextCpu and
 * CkksContextCuda, because both are one binding template over the two engines.
 */
import type { Ckks } from '../../src/engine/ckks';

export interface ExpectedError {
  type: 'TypeError' | 'RangeError' | 'Error';
  /** undefined for the checks the TypeScript layer makes before the native call */
  code: string | undefined;
  message: RegExp;
}

export interface OptionCase {
  name: string;
  options: unknown;
  error: ExpectedError;
}

const T = (message: RegExp): ExpectedError => ({ type: 'TypeError', code: 'ERR_TENSAFE_ARG_TYPE', message });
const R = (message: RegExp): ExpectedError => ({ type: 'RangeError', code: 'ERR_TENSAFE_ARG_RANGE', message });

export const OPTION_CASES: OptionCase[] = [
  { name: 'options missing', options: undefined, error: T(/options is required/) },
  { name: 'options not an object', options: 16384, error: T(/options must be an object/) },
  { name: 'polyN missing', options: {}, error: T(/options.polyN is required \(a power of two in \[4096, 65536\]\)/) },
  { name: 'polyN undefined', options: { polyN: undefined }, error: T(/options.polyN is required/) },
  { name: 'polyN a string', options: { polyN: '16384' }, error: T(/options.polyN must be an integer number/) },
  { name: 'polyN fractional', options: { polyN: 8192.5 }, error: R(/options.polyN must be an integer/) },
  { name: 'polyN too small', options: { polyN: 2048 }, error: R(/options.polyN must be a power of two in \[4096, 65536\], got 2048/) },
  { name: 'polyN not a power of two', options: { polyN: 10000 }, error: R(/options.polyN must be a power of two/) },
  { name: 'polyN huge', options: { polyN: 2 ** 21 }, error: R(/options.polyN must be in/) },
  { name: 'primeBits not an array', options: { polyN: 8192, primeBits: 60 }, error: T(/options.primeBits must be an array/) },
  { name: 'primeBits empty', options: { polyN: 8192, primeBits: [] }, error: R(/options.primeBits must list 1..30 prime sizes/) },
  { name: 'primeBits too many', options: { polyN: 8192, primeBits: new Array(31).fill(30) }, error: R(/options.primeBits must list 1..30/) },
  { name: 'primeBits entry too large', options: { polyN: 8192, primeBits: [61] }, error: R(/options.primeBits\[0\] must be in \[20, 60\], got 61/) },
  { name: 'primeBits entry a string', options: { polyN: 8192, primeBits: [60, 'x'] }, error: T(/options.primeBits\[1\] must be an integer number/) },
  { name: 'specialPrimeBits below a prime', options: { polyN: 8192, specialPrimeBits: 50 }, error: R(/options.specialPrimeBits \(50\) must be at least the largest of primeBits/) },
  { name: 'specialPrimeBits too large', options: { polyN: 8192, specialPrimeBits: 61 }, error: R(/options.specialPrimeBits must be in \[0, 60\]/) },
  { name: 'specialPrimeBits too small', options: { polyN: 8192, primeBits: [20], specialPrimeBits: 10 }, error: R(/options.specialPrimeBits must be in \[20, 60\], got 10/) },
  { name: 'scaleBits zero', options: { polyN: 8192, scaleBits: 0 }, error: R(/options.scaleBits must be in \[1, 60\]/) },
  { name: 'allowInsecure not a boolean', options: { polyN: 8192, allowInsecure: 'yes' }, error: T(/options.allowInsecure must be a boolean/) },
  { name: 'seed a number', options: { polyN: 8192, seed: 1 }, error: T(/options.seed must be a bigint/) },
  { name: 'seed negative', options: { polyN: 8192, seed: -1n }, error: R(/options.seed must be a bigint in \[0, 2\^256\)/) },
  { name: 'seed too wide', options: { polyN: 8192, seed: 1n << 256n }, error: R(/options.seed must be a bigint in \[0, 2\^256\)/) },
  {
    name: 'insecure without allowInsecure',
    options: { polyN: 4096, primeBits: [60, 40], specialPrimeBits: 60 },
    error: { type: 'Error', code: 'ERR_TENSAFE_INSECURE', message: /below 128-bit security: log2\(Q\*P\) = 160\.\d+ exceeds 109 for polyN = 4096/ },
  },
];

/** Valid option sets whose info() must agree between the backends (everything but `backend`). */
export const GOOD_OPTIONS: Record<string, unknown>[] = [
  { polyN: 8192 },
  { polyN: 8192, seed: undefined, specialPrimeBits: undefined, scaleBits: undefined },
  { polyN: 16384, primeBits: [60, 40, 60], specialPrimeBits: 60, scaleBits: 30 },
  { polyN: 4096, primeBits: [60, 40], specialPrimeBits: 60, allowInsecure: true },
  { polyN: 8192, seed: 12345n },
];

export interface CallCase {
  name: string;
  call: (c: Ckks) => unknown | Promise<unknown>;
  error: ExpectedError;
}

/** Bad calls on a context made with CALL_CASE_OPTIONS (wrong types, sizes, levels, keys, words). */
export const CALL_CASE_OPTIONS = { polyN: 8192, primeBits: [50, 40], specialPrimeBits: 50 };

export const CALL_CASES: CallCase[] = [
  { name: 'encode: too many values', call: (c) => c.encode(new Float64Array(4097)), error: R(/values must hold at most polyN\/2 = 4096 numbers, got 4097/) },
  { name: 'encode: not numbers', call: (c) => c.encode('x' as never), error: { type: 'TypeError', code: undefined, message: /values must be a Float64Array or an array of numbers/ } },
  { name: 'encode: NaN', call: (c) => c.encode([1, NaN]), error: R(/values/) },
  { name: 'encode: limbs 3', call: (c) => c.encode([1], { limbs: 3 }), error: R(/options.limbs must be in \[1, 2\], got 3/) },
  { name: 'encode: scale below 1', call: (c) => c.encode([1], { scale: 0.5 }), error: R(/options.scale must be in \[1, 1e300\]/) },
  { name: 'encode: scale overflow', call: (c) => c.encode([1], { scale: 2 ** 120 }), error: R(/scale overflow: \|value \* scale\| may reach 2\^/) },
  { name: 'encodeCoefficients: too many', call: (c) => c.encodeCoefficients(new Float64Array(8193)), error: R(/at most polyN = 8192 numbers/) },
  { name: 'decode: a ciphertext', call: (c) => c.decode(c.encrypt(c.encode([1]), c.generateKeys().publicKey) as never), error: T(/plaintext must be a Plaintext of this (cpu|cuda) context/) },
  { name: 'plaintextFromWords: a word too large', call: (c) => { const w = new BigUint64Array(2 * 8192); w[8192 + 7] = c.info().moduli[1]; return c.plaintextFromWords(w, { limbs: 2 }); }, error: R(/words\[8199\] = \d+ is not below its prime q_1/) },
  { name: 'plaintextFromWords: wrong length', call: (c) => c.plaintextFromWords(new BigUint64Array(100), { limbs: 1 }), error: R(/words must hold limbs \* polyN = 8192 residues, got 100/) },
  { name: 'plaintextFromWords: limbs missing', call: (c) => c.plaintextFromWords(new BigUint64Array(8192), {} as never), error: T(/options.limbs is required/) },
  { name: 'sampleWords: bits for uniform', call: (c) => c.sampleWords({ limbs: 1, count: 4, distribution: 'uniform', bits: 2 }), error: R(/options.bits applies to distribution 'centered' only/) },
  { name: 'sampleWords: bits too large', call: (c) => c.sampleWords({ limbs: 1, count: 4, distribution: 'centered', bits: 50 }), error: R(/options.bits must be in \[0, 126\] with 2\^\(bits\+1\) below/) },
  { name: 'sampleWords: unknown distribution', call: (c) => c.sampleWords({ limbs: 1, count: 4, distribution: 'normal' as never }), error: R(/options.distribution must be one of/) },
  { name: 'encryptSymmetric: compact not a boolean', call: (c) => c.encryptSymmetric(c.encode([1]), c.generateSecretKey(), { compact: 'yes' as never }), error: T(/options.compact must be a boolean/) },
  { name: 'add: different levels', call: (c) => { const { publicKey } = c.generateKeys(); const ct = c.encrypt(c.encode([1]), publicKey); return c.add(ct, c.modSwitch(ct)); }, error: R(/ciphertexts are at different levels \(2 vs 1 primes\)/) },
  { name: 'addPlain: scales differ', call: (c) => { const { publicKey } = c.generateKeys(); return c.addPlain(c.encrypt(c.encode([1]), publicKey), c.encode([1], { scale: 2 ** 20 })); }, error: R(/plaintext and ciphertext scales differ/) },
  { name: 'multiplyPlain: plaintext with fewer primes', call: (c) => { const { publicKey } = c.generateKeys(); return c.multiplyPlain(c.encrypt(c.encode([1]), publicKey), c.encode([1], { limbs: 1 })); }, error: R(/plaintext has fewer primes \(1\) than the ciphertext \(2\)/) },
  { name: 'multiplyPlain: scale overflow', call: (c) => { const { publicKey } = c.generateKeys(); return c.multiplyPlain(c.encrypt(c.encode([1], { scale: 2 ** 60 }), publicKey), c.encode([1], { scale: 2 ** 40 })); }, error: R(/scale overflow in multiplyPlain/) },
  { name: 'rescale: one prime left', call: (c) => { const { publicKey } = c.generateKeys(); return c.rescale(c.modSwitch(c.encrypt(c.encode([1]), publicKey))); }, error: R(/ciphertext has one prime left: it cannot be rescaled/) },
  { name: 'rotate: no key for the step', call: async (c) => { const sk = c.generateSecretKey(); const gk = await c.generateGaloisKeys(sk, [1]); return c.rotate(c.encryptSymmetric(c.encode([1]), sk), 2, gk); }, error: R(/no rotation key for steps = 2/) },
  { name: 'rotate: step out of range', call: async (c) => { const sk = c.generateSecretKey(); const gk = await c.generateGaloisKeys(sk, [1]); return c.rotate(c.encryptSymmetric(c.encode([1]), sk), 4096, gk); }, error: R(/steps must be in \[-4095, 4095\]/) },
  { name: 'generateGaloisKeys: no steps', call: (c) => c.generateGaloisKeys(c.generateSecretKey(), []), error: R(/steps must list 1..256 rotation steps/) },
  { name: 'galoisStep: not a power of 5', call: (c) => c.galoisStep(3), error: R(/element 3 is not a power of 5 mod 2N/) },
  { name: 'deserializeCiphertext: garbage', call: (c) => c.deserializeCiphertext(new Uint8Array(40)), error: { type: 'Error', code: 'ERR_TENSAFE_FORMAT', message: /bad magic/ } },
  { name: 'serialize: a secret key', call: (c) => c.serialize(c.generateSecretKey() as never), error: { type: 'TypeError', code: undefined, message: /secret keys serialise only through exportSecretKey/ } },
  { name: 'serialize: a raw secret-key handle', call: (c) => c.serialize({ native: c.generateSecretKey().native } as never), error: T(/obj is a secret key: secret keys serialise only through exportSecretKey/) },
  { name: 'benchmarkHeLora: d too large', call: (c) => c.benchmarkHeLora({ d: 5000, r: 4, iterations: 1 }), error: R(/options.d must be in \[1, 4096\], got 5000/) },
  { name: 'benchmarkHeLora: bad pipeline', call: (c) => c.benchmarkHeLora({ d: 16, r: 4, iterations: 1, pipeline: 'fast' as never }), error: R(/options.pipeline must be one of/) },
  { name: 'benchmarkOp: unknown op', call: (c) => c.benchmarkOp('fft' as never, 1), error: R(/options.op must be one of/) },
];

/** What a thrown error looks like, for comparing backends. */
export function describeError(e: unknown): { type: string; code: string | undefined; message: string } {
  const err = e as NodeJS.ErrnoException;
  return { type: err?.constructor?.name ?? typeof e, code: err?.code, message: String(err?.message) };
}

/** Runs fn and returns the error it throws (or rejects with); fails when it succeeds. */
export async function errorOf(fn: () => unknown): Promise<ReturnType<typeof describeError>> {
  try {
    await fn();
  } catch (e) {
    return describeError(e);
  }
  throw new Error('expected an error, none was thrown');
}

export function expectError(got: ReturnType<typeof describeError>, want: ExpectedError, expectFn: (v: unknown) => { toBe(x: unknown): void; toMatch(x: RegExp): void }): void {
  expectFn(got.type).toBe(want.type);
  expectFn(got.code).toBe(want.code);
  expectFn(got.message).toMatch(want.message);
}
