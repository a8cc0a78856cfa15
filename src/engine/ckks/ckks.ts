/**
 * The CKKS context of the TypeScript API. `Ckks.create({ polyN, backend })` picks the native
 * class (CkksContextCpu or CkksContextCuda, both implementing native-api.ts) and wraps every
 * operation; native errors are rethrown with the caller's stack.
 *
 * ```ts
 * const ckks = Ckks.create({ polyN: 16384, backend: 'cpu' });
 * const { secretKey, publicKey } = ckks.generateKeys();
 * const ct = ckks.encrypt(ckks.encode([1, 2, 3]), publicKey);
 * ckks.decode(ckks.decrypt(ct, secretKey)); // ~[1, 2, 3, 0, ...]
 * ```
 */
import { type Backend, type BackendChoice, resolveDevice } from '../info';
import { callAsync, callSync, native } from '../native';
import { Ciphertext, GaloisKeys, Plaintext, PublicKey, SecretKey } from './handles';
import type {
  CkksContextInfo,
  CkksContextOptions,
  CkksOpName,
  DecryptedReply,
  EncodeOptions,
  EncryptSymmetricOptions,
  HeLoraBenchOptions,
  HeLoraTiming,
  NativeCkksContext,
  NativeCkksContextClass,
  NativeCkksRules,
  OpTiming,
  PhaseTimings,
  ReencryptOptions,
  ReencryptResult,
  SampleOptions,
  SanitizeOptions,
  SanitizeResult,
  WordsOptions,
} from './native-api';

export interface CkksOptions extends CkksContextOptions {
  backend?: BackendChoice;
  /** CUDA device index (CUDA_VISIBLE_DEVICES applies; default 0); implies backend 'cuda' under 'auto'. */
  device?: number;
}

function toFloat64(values: Float64Array | readonly number[], name: string): Float64Array {
  if (values instanceof Float64Array) return values;
  if (Array.isArray(values)) return Float64Array.from(values);
  throw new TypeError(`${name} must be a Float64Array or an array of numbers`);
}

export class Ckks {
  private constructor(
    private readonly ctx: NativeCkksContext,
    readonly backend: Backend,
  ) {}

  static create(options: CkksOptions): Ckks {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const { backend, device } = resolveDevice(options.backend ?? 'auto', options.device);
    const cls = (backend === 'cuda' ? native().CkksContextCuda : native().CkksContextCpu) as NativeCkksContextClass | undefined;
    if (typeof cls !== 'function') {
      const err = new Error(`Ckks: the ${backend} CKKS backend is not built into this addon`);
      (err as NodeJS.ErrnoException).code = 'ERR_TENSAFE_BACKEND';
      throw err;
    }
    const { backend: _ignored, ...nativeOptions } = options;
    // The CUDA context lives on the JS thread's current device: select it first.
    if (device !== undefined) callSync(() => native().useCudaDevice(device, "option 'device'"));
    return new Ckks(callSync(() => new cls(nativeOptions)), backend);
  }

  /** The native 128-bit security table: polyN -> largest log2(Q*P) (the one copy of it). */
  static securityTable(): Record<number, number> {
    const table = (native().ckksRules as NativeCkksRules).securityTable128;
    return Object.fromEntries(Object.entries(table).map(([n, bits]) => [Number(n), bits]));
  }
  /** Native bounds of a parameter set (polyN, prime sizes, scale bits). */
  static limits(): NativeCkksRules['limits'] {
    return { ...(native().ckksRules as NativeCkksRules).limits };
  }
  /** The ring dimensions a context accepts: the powers of two within limits(). */
  static polyNs(): number[] {
    const { minPolyN, maxPolyN } = Ckks.limits();
    const out: number[] = [];
    for (let n = minPolyN; n <= maxPolyN; n *= 2) out.push(n);
    return out;
  }
  /**
   * Checks a parameter set as Ckks.create would, without making a context: the same errors
   * (ERR_TENSAFE_INSECURE above the 128-bit bound unless allowInsecure), and log2(Q*P) with
   * its bound.
   */
  static checkParameters(options: CkksContextOptions): { logQP: number; maxLogQP128: number; belowSecurityBound: boolean } {
    return callSync(() => (native().ckksRules as NativeCkksRules).checkParameters(options));
  }

  info(): CkksContextInfo {
    return callSync(() => this.ctx.info());
  }
  get polyN(): number {
    return this.info().polyN;
  }
  get slots(): number {
    return this.info().slots;
  }

  // ---- keys ----
  generateSecretKey(): SecretKey {
    return new SecretKey(callSync(() => this.ctx.generateSecretKey()));
  }
  generatePublicKey(secretKey: SecretKey): PublicKey {
    return new PublicKey(callSync(() => this.ctx.generatePublicKey(secretKey?.native)));
  }
  /** A fresh secret key and its public key. */
  generateKeys(): { secretKey: SecretKey; publicKey: PublicKey } {
    const secretKey = this.generateSecretKey();
    return { secretKey, publicKey: this.generatePublicKey(secretKey) };
  }
  /** Rotation keys for the given steps (left rotations; negative = right). Needs specialPrimeBits. */
  async generateGaloisKeys(secretKey: SecretKey, steps: number[]): Promise<GaloisKeys> {
    return new GaloisKeys(await callAsync(() => this.ctx.generateGaloisKeys(secretKey?.native, steps)));
  }

  // ---- encoding ----
  encode(values: Float64Array | readonly number[], options?: EncodeOptions): Plaintext {
    const v = toFloat64(values, 'values');
    return new Plaintext(callSync(() => this.ctx.encode(v, options)));
  }
  encodeCoefficients(values: Float64Array | readonly number[], options?: EncodeOptions): Plaintext {
    const v = toFloat64(values, 'values');
    return new Plaintext(callSync(() => this.ctx.encodeCoefficients(v, options)));
  }
  decode(plaintext: Plaintext): Float64Array {
    return callSync(() => this.ctx.decode(plaintext?.native));
  }
  decodeCoefficients(plaintext: Plaintext): Float64Array {
    return callSync(() => this.ctx.decodeCoefficients(plaintext?.native));
  }
  /**
   * A plaintext from coefficient-form residues, limb-major (`limbs * polyN` words; word j of
   * limb i is coefficient j mod q_i), e.g. masks, flooding noise, monomials or integer
   * plaintexts mod q. The engine moves it to the NTT domain. scale defaults to 1.
   */
  plaintextFromWords(words: BigUint64Array, options: WordsOptions): Plaintext {
    return new Plaintext(callSync(() => this.ctx.plaintextFromWords(words, options)));
  }
  /** Coefficient-form residues of a plaintext, limb-major (the inverse of plaintextFromWords). */
  plaintextWords(plaintext: Plaintext): BigUint64Array {
    return callSync(() => this.ctx.plaintextWords(plaintext?.native));
  }
  /** `limbs * count` residues from a fresh stream of the context's CSPRNG (see SampleOptions). */
  sampleWords(options: SampleOptions): BigUint64Array {
    return callSync(() => this.ctx.sampleWords(options));
  }

  // ---- encryption ----
  encrypt(plaintext: Plaintext, publicKey: PublicKey): Ciphertext {
    return new Ciphertext(callSync(() => this.ctx.encrypt(plaintext?.native, publicKey?.native)));
  }
  /** `{ compact: true }`: c1 from a fresh seed that serialisation writes instead of c1 (half the bytes). */
  encryptSymmetric(plaintext: Plaintext, secretKey: SecretKey, options?: EncryptSymmetricOptions): Ciphertext {
    return new Ciphertext(callSync(() => this.ctx.encryptSymmetric(plaintext?.native, secretKey?.native, options)));
  }
  /**
   * ct + Enc_pk(0) at ct's level with fresh u, e0, e1: the result's c1 is independent of ct's,
   * so a decryptor cannot relate it to the evaluator's inputs. (It does not hide ct's noise:
   * that is what flooding with sampleWords({ distribution: 'centered' }) is for.)
   */
  rerandomize(ciphertext: Ciphertext, publicKey: PublicKey): Ciphertext {
    return new Ciphertext(callSync(() => this.ctx.rerandomize(ciphertext?.native, publicKey?.native)));
  }
  decrypt(ciphertext: Ciphertext, secretKey: SecretKey): Plaintext {
    return new Plaintext(callSync(() => this.ctx.decrypt(ciphertext?.native, secretKey?.native)));
  }
  decryptBatch(ciphertexts: Ciphertext[], secretKey: SecretKey): Plaintext[] {
    if (!Array.isArray(ciphertexts)) throw new TypeError('ciphertexts must be an array of Ciphertext');
    const natives = ciphertexts.map((c) => c?.native);
    return callSync(() => this.ctx.decryptBatch(natives, secretKey?.native)).map((p) => new Plaintext(p));
  }

  // ---- evaluator ----
  add(a: Ciphertext, b: Ciphertext): Ciphertext {
    return new Ciphertext(callSync(() => this.ctx.add(a?.native, b?.native)));
  }
  sub(a: Ciphertext, b: Ciphertext): Ciphertext {
    return new Ciphertext(callSync(() => this.ctx.sub(a?.native, b?.native)));
  }
  addPlain(a: Ciphertext, b: Plaintext): Ciphertext {
    return new Ciphertext(callSync(() => this.ctx.addPlain(a?.native, b?.native)));
  }
  multiplyPlain(a: Ciphertext, b: Plaintext): Ciphertext {
    return new Ciphertext(callSync(() => this.ctx.multiplyPlain(a?.native, b?.native)));
  }
  /** Speeds up later multiplyPlain calls by this plaintext (same results; a no-op on the GPU). */
  prepareMultiplier(plaintext: Plaintext): void {
    callSync(() => this.ctx.prepareMultiplier(plaintext?.native));
  }
  rescale(a: Ciphertext): Ciphertext {
    return new Ciphertext(callSync(() => this.ctx.rescale(a?.native)));
  }
  modSwitch(a: Ciphertext): Ciphertext {
    return new Ciphertext(callSync(() => this.ctx.modSwitch(a?.native)));
  }
  /**
   * Left slot rotation by `steps` (negative: right). On coefficients: X -> X^g with
   * g = galoisElement(steps) = 5^steps mod 2N (coefficient j goes to j*g mod 2N, negated when
   * that is >= N). Any automorphism X -> X^g with g = 1 (mod 4), e.g. g = 2^k + 1, is a rotation
   * by galoisStep(g).
   */
  rotate(a: Ciphertext, steps: number, galoisKeys: GaloisKeys): Ciphertext {
    return new Ciphertext(callSync(() => this.ctx.rotate(a?.native, steps, galoisKeys?.native)));
  }
  /** 5^(steps mod N/2) mod 2N: the automorphism X -> X^g that rotate(., steps) applies. */
  galoisElement(steps: number): number {
    return callSync(() => this.ctx.galoisElement(steps));
  }
  /** The rotation step j in [0, N/2) with galoisElement(j) = element; RangeError unless element = 1 mod 4. */
  galoisStep(element: number): number {
    return callSync(() => this.ctx.galoisStep(element));
  }

  // ---- serialisation ----
  serialize(obj: Ciphertext | Plaintext | PublicKey | GaloisKeys): Uint8Array {
    if (obj instanceof SecretKey) throw new TypeError('secret keys serialise only through exportSecretKey()');
    return callSync(() => this.ctx.serialize(obj?.native as never));
  }
  deserializeCiphertext(bytes: Uint8Array): Ciphertext {
    return new Ciphertext(callSync(() => this.ctx.deserializeCiphertext(bytes)));
  }
  deserializePlaintext(bytes: Uint8Array): Plaintext {
    return new Plaintext(callSync(() => this.ctx.deserializePlaintext(bytes)));
  }
  deserializePublicKey(bytes: Uint8Array): PublicKey {
    return new PublicKey(callSync(() => this.ctx.deserializePublicKey(bytes)));
  }
  deserializeGaloisKeys(bytes: Uint8Array): GaloisKeys {
    return new GaloisKeys(callSync(() => this.ctx.deserializeGaloisKeys(bytes)));
  }
  /** The only way a secret key leaves the engine: handle the bytes as the secret they are. */
  exportSecretKey(secretKey: SecretKey): Uint8Array {
    return callSync(() => this.ctx.exportSecretKey(secretKey?.native));
  }
  importSecretKey(bytes: Uint8Array): SecretKey {
    return new SecretKey(callSync(() => this.ctx.importSecretKey(bytes)));
  }
  /** Raw NTT-domain words (c0 then c1), for comparing backends in seeded mode. */
  ciphertextWords(ciphertext: Ciphertext): BigUint64Array {
    return callSync(() => this.ctx.ciphertextWords(ciphertext?.native));
  }

  // ---- fused operations of the private protocols ----
  /**
   * The reply a key holder needs at `positions` only: c0 in coefficient form there, c1 whole
   * (about half the bytes of serialize). Positions: strictly increasing, below polyN.
   */
  serializeReply(ciphertext: Ciphertext, positions: Uint32Array): Uint8Array {
    return callSync(() => this.ctx.serializeReply(ciphertext?.native, positions));
  }
  /** The decryption of a partial reply at its positions (residues and values / scale). */
  decryptReply(bytes: Uint8Array, secretKey: SecretKey): DecryptedReply {
    return callSync(() => this.ctx.decryptReply(bytes, secretKey?.native));
  }
  /** decryptReply of several replies, off the JS thread; `timings` adds the array's `timings` (PhaseTimings). */
  decryptReplies(bytes: Uint8Array[], secretKey: SecretKey, options?: { timings?: boolean }): Promise<DecryptedReply[] & { timings?: PhaseTimings }> {
    return callAsync(() => this.ctx.decryptReplies(bytes, secretKey?.native, options));
  }
  /**
   * Round 2 of the two-round client in one native call, off the JS thread: decrypt the replies,
   * check their positions, build U from the read words and encrypt it (compact); see
   * NativeCkksContext.reencryptReplies.
   */
  reencryptReplies(bytes: Uint8Array[], secretKey: SecretKey, options: ReencryptOptions): Promise<ReencryptResult> {
    return callAsync(() => this.ctx.reencryptReplies(bytes, secretKey?.native, options));
  }
  /**
   * Masked, flooded, rerandomised and rescaled products ct * p, serialised, off the JS thread:
   * the last step of the private protocols (SanitizeOptions says exactly what it computes).
   */
  sanitizeProducts(ciphertext: Ciphertext, plaintexts: Plaintext[], publicKey: PublicKey, options: SanitizeOptions): Promise<SanitizeResult> {
    if (!Array.isArray(plaintexts)) return Promise.reject(new TypeError('plaintexts must be an array of Plaintext'));
    const natives = plaintexts.map((p) => p?.native);
    return callAsync(() => this.ctx.sanitizeProducts(ciphertext?.native, natives, publicKey?.native, options));
  }
  /** c = prod_j (1 + sigma_{steps_j})(c): c += rotate(c, step) for each step in order, off the JS thread. */
  async traceRotations(ciphertext: Ciphertext, steps: number[], galoisKeys: GaloisKeys): Promise<Ciphertext> {
    return new Ciphertext(await callAsync(() => this.ctx.traceRotations(ciphertext?.native, steps, galoisKeys?.native)));
  }

  // ---- native benchmarks ----
  benchmarkOp(op: CkksOpName, iterations = 20): Promise<OpTiming> {
    return callAsync(() => this.ctx.benchmarkOp({ op, iterations }));
  }
  benchmarkHeLora(options: HeLoraBenchOptions): Promise<HeLoraTiming> {
    return callAsync(() => this.ctx.benchmarkHeLora(options));
  }

  /**
   * Releases the context and every object it created (plaintexts, ciphertexts, keys, whether
   * or not they were disposed already): host and device memory are freed at once, and later
   * use of any of them throws ERR_TENSAFE_DISPOSED. Bytes it serialised stay valid.
   */
  dispose(): void {
    this.ctx.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
  get disposed(): boolean {
    return this.ctx.disposed;
  }
}
