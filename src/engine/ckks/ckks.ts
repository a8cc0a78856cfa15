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
  EncodeOptions,
  HeLoraBenchOptions,
  HeLoraTiming,
  NativeCkksContext,
  NativeCkksContextClass,
  OpTiming,
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

  // ---- encryption ----
  encrypt(plaintext: Plaintext, publicKey: PublicKey): Ciphertext {
    return new Ciphertext(callSync(() => this.ctx.encrypt(plaintext?.native, publicKey?.native)));
  }
  encryptSymmetric(plaintext: Plaintext, secretKey: SecretKey): Ciphertext {
    return new Ciphertext(callSync(() => this.ctx.encryptSymmetric(plaintext?.native, secretKey?.native)));
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
  /** Speeds up later multiplyPlain calls by this plaintext (same results); a no-op where unsupported. */
  prepareMultiplier(plaintext: Plaintext): void {
    const fn = this.ctx.prepareMultiplier;
    if (typeof fn === 'function') callSync(() => fn.call(this.ctx, plaintext?.native));
  }
  rescale(a: Ciphertext): Ciphertext {
    return new Ciphertext(callSync(() => this.ctx.rescale(a?.native)));
  }
  modSwitch(a: Ciphertext): Ciphertext {
    return new Ciphertext(callSync(() => this.ctx.modSwitch(a?.native)));
  }
  rotate(a: Ciphertext, steps: number, galoisKeys: GaloisKeys): Ciphertext {
    return new Ciphertext(callSync(() => this.ctx.rotate(a?.native, steps, galoisKeys?.native)));
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

  // ---- native benchmarks ----
  benchmarkOp(op: CkksOpName, iterations = 20): Promise<OpTiming> {
    return callAsync(() => this.ctx.benchmarkOp({ op, iterations }));
  }
  benchmarkHeLora(options: HeLoraBenchOptions): Promise<HeLoraTiming> {
    return callAsync(() => this.ctx.benchmarkHeLora(options));
  }

  dispose(): void {
    this.ctx.dispose();
  }
  get disposed(): boolean {
    return this.ctx.disposed;
  }
}
