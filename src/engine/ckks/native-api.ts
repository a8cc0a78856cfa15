/**
 * THE NATIVE API CONTRACT of the CKKS backends.
 *
 * Both native classes, `CkksContextCpu` and `CkksContextCuda`, are one C++ template
 * (native/addon/ckks_context_wrap.h) over the two engines, constructed with
 * `CkksContextOptions`: they implement `NativeCkksContext` exactly, with the same option
 * reading, checks, errors and info() fields. The TypeScript API (src/engine/ckks/*.ts) sits
 * over this interface only.
 *
 * Conventions shared by both backends (they must produce the same words in seeded mode):
 *  - Moduli: `primeBits` gives the ciphertext primes q_0..q_{L-1} (q_0 first, the one that stays
 *    last); each size draws from generateNttPrimes(polyN, bits, .) in order (largest first below
 *    2^bits), skipping primes already taken; the special prime (when `specialPrimeBits` is set)
 *    is drawn last, after all ciphertext primes, the same way.
 *  - A ciphertext / plaintext at `limbs` = l holds the primes q_0..q_{l-1}; every polynomial is
 *    stored in the NTT domain (native/src/ckks/ntt_tables.h), limb-major, n words per limb.
 *    A ciphertext is (c0, c1) with c0 + c1*s = m + e (mod q_i).
 *  - Slot encoding: slot j of a vector z (j < N/2) sits at the evaluation point
 *    zeta^(5^j mod 2N), zeta = exp(i*pi/N); coefficients are round(scale * IFFT(z)).
 *  - Randomness: ChaCha20 keyed with a 256-bit key (OS entropy, or `seed` in the insecure test
 *    mode), one stream id (nonce) per sampling call from a per-context counter, fixed word
 *    offsets per sample: the layout is documented in native/src/ckks/sampling.h.
 *  - Errors: bad arguments throw TypeError/RangeError naming the argument; handles from another
 *    context, mismatched levels or scales throw RangeError; disposed handles throw with code
 *    ERR_TENSAFE_DISPOSED; corrupt bytes throw with code ERR_TENSAFE_FORMAT; an insecure
 *    parameter set without `allowInsecure: true` throws with code ERR_TENSAFE_INSECURE.
 *  - Operations are synchronous (each is milliseconds at most); key generation for rotations, the
 *    fused operations of the private protocols (sanitizeProducts, traceRotations,
 *    decryptReplies) and the benchmarks return Promises (run off the JS thread).
 */

/** Options of `new CkksContextCpu(options)` / `new CkksContextCuda(options)`. */
export interface CkksContextOptions {
  /** Ring dimension N: a power of two in [4096, 65536]. N/2 slots. */
  polyN: number;
  /** Bit sizes of the ciphertext primes, q_0 first (each 20..60). Default [60, 40]. */
  primeBits?: number[];
  /** Bit size of the special prime P for hybrid key switching (rotation keys); omitted = none. */
  specialPrimeBits?: number;
  /** Default scale as a power of two (scale = 2^scaleBits). Default 40. */
  scaleBits?: number;
  /** Accept a parameter set above the 128-bit security bound (research sweeps only). */
  allowInsecure?: boolean;
  /** Seeded, INSECURE test mode: the ChaCha20 key is this value (0 <= seed < 2^256, little-endian). */
  seed?: bigint;
}

/** Facts of a context, reported in every result. */
export interface CkksContextInfo {
  backend: 'cpu' | 'cuda';
  polyN: number;
  slots: number;
  /** Ciphertext primes q_0..q_{L-1}. */
  moduli: bigint[];
  /** Bit sizes of the ciphertext primes, as asked (q_i < 2^primeBits[i]). */
  primeBits: number[];
  /** The special prime, or null. */
  specialModulus: bigint | null;
  /** Bit size of the special prime, or null. */
  specialPrimeBits: number | null;
  /** log2(Q * P), the quantity the security table bounds. */
  logQP: number;
  /** The 128-bit classical bound on log2(Q * P) for this N (field-notes section 3). */
  maxLogQP128: number;
  /** True when the parameters exceed the bound (then allowInsecure was given) or in seeded mode. */
  insecure: boolean;
  /** True when log2(Q*P) exceeds the 128-bit bound (allowed only with allowInsecure). */
  belowSecurityBound: boolean;
  /** True in the seeded test mode (never secure). */
  seeded: boolean;
  scale: number;
  /** 64-bit fingerprint of (polyN, moduli, special prime) carried by serialized objects, hex. */
  fingerprint: string;
}

export interface NativeDisposable {
  dispose(): void;
  readonly disposed: boolean;
}

/**
 * A handle of a CKKS object. Both backends share the handle classes (CkksPlaintext,
 * CkksCiphertext, CkksSecretKey, CkksPublicKey, CkksGaloisKeys); a handle knows its backend, and
 * passing one to a context of the other backend is a TypeError. Disposing the context that made
 * a handle disposes the handle too.
 */
export interface NativeHandle extends NativeDisposable {
  readonly backend: 'cpu' | 'cuda';
}

export interface NativePlaintext extends NativeHandle {
  readonly limbs: number;
  readonly scale: number;
  /** 'slots' | 'coefficients' (how it was encoded / should be decoded by default). */
  readonly encoding: 'slots' | 'coefficients';
}

export interface NativeCiphertext extends NativeHandle {
  readonly limbs: number;
  readonly scale: number;
  /** Number of polynomials (2). */
  readonly size: number;
  /** True when c1 is the expansion of a stored seed (compact encryption): serialize() writes the seed. */
  readonly compact: boolean;
}

export type NativeSecretKey = NativeHandle;
export type NativePublicKey = NativeHandle;
export interface NativeGaloisKeys extends NativeHandle {
  /** The rotation steps covered (left rotations by k slots; negative = right). */
  readonly steps: number[];
}

export interface EncodeOptions {
  /** Number of primes of the plaintext (default: all ciphertext primes). */
  limbs?: number;
  /** Scale (default: the context scale). Must keep |value * scale| < Q/2. */
  scale?: number;
}

/** Options of `plaintextFromWords`. */
export interface WordsOptions {
  /** Primes the words cover (words.length = limbs * polyN). */
  limbs: number;
  /** Scale the plaintext carries (default 1: the words are the integer polynomial itself). */
  scale?: number;
  /** How decode() should read it (default 'coefficients'). */
  encoding?: 'coefficients' | 'slots';
}

/**
 * Options of `sampleWords`: `limbs * count` residues, limb-major, from a fresh stream of the
 * context's ChaCha20 key (seeded contexts: deterministic). Layouts: native/src/ckks/sampling.h.
 *  - 'uniform': independent residues exactly uniform mod each prime (rejection sampling, no
 *    modulo bias): masks.
 *  - 'centered': one integer e exactly uniform on [-2^bits, 2^bits] per position, written as
 *    e mod q_i in every limb (2^(bits+1) must be below the product of the limbs' primes):
 *    flooding noise.
 */
export interface SampleOptions {
  limbs: number;
  /** Residues per limb (1 .. 2^22; limbs * count <= 2^24). */
  count: number;
  distribution: 'uniform' | 'centered';
  /** 'centered' only: e in [-2^bits, 2^bits], bits in [0, 126]. */
  bits?: number;
}

export interface EncryptSymmetricOptions {
  /**
   * c1 is expanded from a fresh 32-byte seed drawn from the context's CSPRNG, and the ciphertext
   * keeps the seed: serialize() then writes the seed instead of c1 (format version 2, about half
   * the bytes) and deserializeCiphertext expands it back to the same words. Operations that
   * change c1 drop the seed (addPlain and modSwitch keep it: c1 unchanged or a prefix).
   */
  compact?: boolean;
}

/**
 * Options of `sanitizeProducts(ct, plaintexts, publicKey, options)`: for each plaintext p, the
 * composition c = ct * p; c += M_p; c = rerandomize(c, publicKey); rescale `rescale` times;
 * serialise. M_p is a coefficient-form plaintext (scale ct.scale * p.scale) of residues exactly
 * uniform mod each prime (as sampleWords 'uniform') at every coefficient except `read[p]`; at
 * `read[p]` it holds a centred integer uniform on [-2^floodBits, 2^floodBits] (as sampleWords
 * 'centered') when floodBits > 0, else 0. Position lists are Uint32Arrays, strictly increasing,
 * below polyN, one per plaintext. In seeded mode the result equals the composed operations word
 * for word (stream ids per product: mask, flood, rerandomisation).
 */
export interface SanitizeOptions {
  /** The coefficients left unmasked (and flooded) in product p. Required unless maskAll. */
  read?: Uint32Array[];
  /** Flooding bound exponent (0..126; 0 or absent: nothing added at the read coefficients). */
  floodBits?: number;
  /** Mask every coefficient (no read set). */
  maskAll?: boolean;
  /** 'partial': serializeReply at keep[p] (default read[p]); 'full': serialize (the whole ciphertext). */
  format: 'partial' | 'full';
  keep?: Uint32Array[];
  /** Return the mask's residues at these positions (all the ciphertext's primes, limb-major, before rescaling). */
  returnMaskAt?: Uint32Array[];
  /** Rescales after the rerandomisation (0..limbs-1, default 0). */
  rescale?: number;
  /** Measure the call's phases (PhaseTimings in the result); off: nothing is measured. */
  timings?: boolean;
}

/**
 * Wall microseconds per phase of one fused call (native steady clock), in the order the phases
 * ran. On the CPU the phases of products (or replies) run in parallel are summed (thread time)
 * and `wall` is the call's own; on the GPU the phases are host time, and the phase that ends in
 * the one synchronisation (`device`) includes the device's work.
 */
export type PhaseTimings = Record<string, number>;

export interface SanitizeResult {
  replies: Uint8Array[];
  /** Present when returnMaskAt was given: per plaintext, limbs x count residues, limb-major. */
  masks?: BigUint64Array[];
  /** Present when options.timings was set. */
  timings?: PhaseTimings;
}

/** Options of `reencryptReplies(replies, secretKey, options)`. */
export interface ReencryptOptions {
  /** The positions reply p must carry (strictly increasing, below polyN), one list per reply. */
  expect: Uint32Array[];
  /** The prime count every reply must have (default: the first reply's). */
  limbs?: number;
  timings?: boolean;
}

/** What `reencryptReplies` returns: the serialised compact ciphertext of U. */
export interface ReencryptResult {
  request: Uint8Array;
  timings?: PhaseTimings;
}

/** The decryption of a partial reply at its positions only. */
export interface DecryptedReply {
  positions: Uint32Array;
  limbs: number;
  scale: number;
  /** limbs x count coefficient residues of the decryption, limb-major. */
  words: BigUint64Array;
  /** Centred CRT composition of each position's residues / scale (as decodeCoefficients). */
  values: Float64Array;
}

export type CkksOpName =
  | 'encode'
  | 'decode'
  | 'encode_coefficients'
  | 'encrypt'
  | 'encrypt_symmetric'
  | 'decrypt'
  | 'add'
  | 'sub'
  | 'multiply_plain'
  | 'rescale'
  | 'mod_switch'
  | 'rotate';

export interface OpTiming {
  op: CkksOpName;
  medianUs: number;
  minUs: number;
  maxUs: number;
  runs: number;
}

/** Per-token HE-LoRA workload: d-long h replicated floor(slots/d) times, r LoRA-A rows. */
export interface HeLoraBenchOptions {
  d: number;
  r: number;
  iterations: number;
  /** Replicas per ciphertext (default floor(slots / d), at most r). */
  replicas?: number;
  /**
   * 'staged' (default): all products, one batched decrypt, all decodes, as the original.
   * 'streamed': each worker takes whole products for cache locality; overlapping stages are
   * then reported as shares of the phase's wall time. Accepted by both backends; the CUDA one
   * runs its stages in order (as CUDA graphs) and says so in the result (`pipeline`, `note`).
   */
  pipeline?: 'staged' | 'streamed';
}

export interface HeLoraTiming {
  /** Median microseconds per token of each stage; `total` is the median of whole-token times. */
  medianUs: {
    encode: number;
    encrypt: number;
    ct_pt_multiply: number;
    decrypt: number;
    decode: number;
    extract_sum: number;
    total: number;
  };
  runs: number;
  replicas: number;
  /** Ciphertext x plaintext products per token: ceil(r / replicas). */
  products: number;
  /** max |(A h)_i - decrypted_i| over the last token, checked against float64. */
  maxAbsError: number;
  /** The stages were replayed as captured CUDA graphs (always false on the CPU). */
  graphs: boolean;
  /** How the stages actually ran, and what was asked. */
  pipeline: 'staged' | 'streamed';
  requestedPipeline: 'staged' | 'streamed';
  /** Why the run differs from what was asked, or null. */
  note: string | null;
}

export interface NativeCkksContext extends NativeDisposable {
  info(): CkksContextInfo;

  // keys
  generateSecretKey(): NativeSecretKey;
  generatePublicKey(secretKey: NativeSecretKey): NativePublicKey;
  /** Requires a special prime. */
  generateGaloisKeys(secretKey: NativeSecretKey, steps: number[]): Promise<NativeGaloisKeys>;

  // encoding
  encode(values: Float64Array, options?: EncodeOptions): NativePlaintext;
  /** values.length <= polyN, placed directly in coefficients (times scale). */
  encodeCoefficients(values: Float64Array, options?: EncodeOptions): NativePlaintext;
  /** Slots (N/2 values) of a slot-encoded plaintext. */
  decode(plaintext: NativePlaintext): Float64Array;
  /** Coefficients (N values) divided by the scale. */
  decodeCoefficients(plaintext: NativePlaintext): Float64Array;
  /**
   * A plaintext from COEFFICIENT-form residues, limb-major (limbs * N words; word j of limb i is
   * coefficient j mod q_i); the engine moves it to the NTT domain. A word not below its prime
   * is a RangeError naming its index.
   */
  plaintextFromWords(words: BigUint64Array, options: WordsOptions): NativePlaintext;
  /** The inverse of plaintextFromWords: coefficient-form residues, limb-major. */
  plaintextWords(plaintext: NativePlaintext): BigUint64Array;
  /** Random residues from the context's stream (see SampleOptions). */
  sampleWords(options: SampleOptions): BigUint64Array;

  // encryption
  encrypt(plaintext: NativePlaintext, publicKey: NativePublicKey): NativeCiphertext;
  encryptSymmetric(plaintext: NativePlaintext, secretKey: NativeSecretKey, options?: EncryptSymmetricOptions): NativeCiphertext;
  /** ct + Enc_pk(0) at ct's level (fresh u, e0, e1): the result's c1 is independent of ct's. */
  rerandomize(ciphertext: NativeCiphertext, publicKey: NativePublicKey): NativeCiphertext;
  decrypt(ciphertext: NativeCiphertext, secretKey: NativeSecretKey): NativePlaintext;
  /** Decrypts many ciphertexts at once (in parallel). */
  decryptBatch(ciphertexts: NativeCiphertext[], secretKey: NativeSecretKey): NativePlaintext[];

  // evaluator (results are new handles; inputs are untouched)
  add(a: NativeCiphertext, b: NativeCiphertext): NativeCiphertext;
  sub(a: NativeCiphertext, b: NativeCiphertext): NativeCiphertext;
  addPlain(a: NativeCiphertext, b: NativePlaintext): NativeCiphertext;
  multiplyPlain(a: NativeCiphertext, b: NativePlaintext): NativeCiphertext;
  /**
   * Precomputes what makes repeated products by this plaintext faster (Shoup companions on
   * the CPU; nothing on the GPU, where the cost is the same either way); results are unchanged.
   */
  prepareMultiplier(plaintext: NativePlaintext): void;
  /** Divides by the last prime (scale / q_last), dropping it. */
  rescale(a: NativeCiphertext): NativeCiphertext;
  /** Drops the last prime without dividing (scale unchanged). */
  modSwitch(a: NativeCiphertext): NativeCiphertext;
  /**
   * Rotates the slots left by `steps` (negative: right); needs keys for that step. On the
   * coefficient form this is the automorphism X -> X^g with g = galoisElement(steps) =
   * 5^(steps mod N/2) mod 2N: coefficient j moves to position j*g mod 2N, negated when that is
   * >= N (X^N = -1). Keys exist for every step in (-N/2, N/2); steps 0 is the identity.
   */
  rotate(a: NativeCiphertext, steps: number, galoisKeys: NativeGaloisKeys): NativeCiphertext;
  /** The Galois element rotate uses: 5^(steps mod N/2) mod 2N. */
  galoisElement(steps: number): number;
  /** The step j in [0, N/2) with 5^j = element (mod 2N); RangeError unless element = 1 (mod 4). */
  galoisStep(element: number): number;

  // serialisation: versioned header, parameter fingerprint, length checks
  serialize(obj: NativeCiphertext | NativePlaintext | NativePublicKey | NativeGaloisKeys): Uint8Array;
  deserializeCiphertext(bytes: Uint8Array): NativeCiphertext;
  deserializePlaintext(bytes: Uint8Array): NativePlaintext;
  deserializePublicKey(bytes: Uint8Array): NativePublicKey;
  deserializeGaloisKeys(bytes: Uint8Array): NativeGaloisKeys;
  /** The only way a secret key leaves the engine. */
  exportSecretKey(secretKey: NativeSecretKey): Uint8Array;
  importSecretKey(bytes: Uint8Array): NativeSecretKey;

  /** Raw words of a ciphertext (2 * limbs * N, NTT domain, c0 then c1): for CPU/CUDA comparison. */
  ciphertextWords(ciphertext: NativeCiphertext): BigUint64Array;

  // fused operations of the private protocols (native/src/ckks/private_ops.h)
  /**
   * A partial reply (format kind "Reply"): c0 in coefficient form at `positions` only (limbs x
   * count residues), c1 whole (NTT domain); about half the bytes of serialize(ct).
   */
  serializeReply(ciphertext: NativeCiphertext, positions: Uint32Array): Uint8Array;
  /** Decrypts a partial reply at its positions (c1*s, inverse NTT, pick, add c0). Bad bytes: ERR_TENSAFE_FORMAT. */
  decryptReply(bytes: Uint8Array, secretKey: NativeSecretKey): DecryptedReply;
  /** decryptReply of each, off the JS thread (one upload and one synchronisation on the GPU). */
  decryptReplies(bytes: Uint8Array[], secretKey: NativeSecretKey, options?: { timings?: boolean }): Promise<DecryptedReply[] & { timings?: PhaseTimings }>;
  /**
   * The two-round client's round 2 in one call (native/src/ckks/private_ops.h): the replies
   * decrypted at their positions (each must carry exactly expect[p]), the k-th word over all of
   * them put at coefficient k of U, U encrypted compact under the secret key and serialised: the
   * words of decryptReplies + plaintextFromWords + encryptSymmetric({compact}) + serialize.
   */
  reencryptReplies(bytes: Uint8Array[], secretKey: NativeSecretKey, options: ReencryptOptions): Promise<ReencryptResult>;
  /** See SanitizeOptions; off the JS thread (every argument checked before the work is queued). */
  sanitizeProducts(ciphertext: NativeCiphertext, plaintexts: NativePlaintext[], publicKey: NativePublicKey, options: SanitizeOptions): Promise<SanitizeResult>;
  /** c = prod_j (1 + sigma_{steps_j})(c) (c += rotate(c, step), steps in order), off the JS thread. */
  traceRotations(ciphertext: NativeCiphertext, steps: number[], galoisKeys: NativeGaloisKeys): Promise<NativeCiphertext>;

  // native benchmarks (steady clock on the CPU, CUDA events on the GPU), at the top level
  benchmarkOp(options: { op: CkksOpName; iterations: number }): Promise<OpTiming>;
  benchmarkHeLora(options: HeLoraBenchOptions): Promise<HeLoraTiming>;

  /** Disposes the context and every handle it made (their host and device memory at once). */
  dispose(): void;
}

/** CkksContextCuda's extras (tests and stage timers). */
export interface NativeCkksContextCuda extends NativeCkksContext {
  /** Fill every new device allocation with junk (catches unwritten output words). */
  setPoison(on: boolean): void;
  /** Record CUDA events around every operation. */
  setTiming(on: boolean): void;
  /** The recorded operations' times (synchronises once). */
  drainTimings(): { op: string; us: number }[];
}

/** The addon's `ckksRules`: facts native code owns (TypeScript reads, never restates, them). */
export interface NativeCkksRules {
  /** HomomorphicEncryption.org 128-bit classical bound on log2(Q*P), by polyN. */
  securityTable128: Record<string, number>;
  limits: {
    minPolyN: number;
    maxPolyN: number;
    minPrimeBits: number;
    maxPrimeBits: number;
    maxPrimes: number;
    minScaleBits: number;
    maxScaleBits: number;
  };
  /**
   * The checks of `new CkksContext*(options)` without making a context: the same errors
   * (ERR_TENSAFE_INSECURE above the bound unless allowInsecure) and the facts they rest on.
   */
  checkParameters(options: CkksContextOptions): { logQP: number; maxLogQP128: number; belowSecurityBound: boolean };
}

/** Constructor shape of both native classes. */
export type NativeCkksContextClass = new (options: CkksContextOptions) => NativeCkksContext;
