/**
 * TypeScript handles of CKKS objects. Each wraps a native handle of one backend, made by one
 * context; dispose() (or `using`, through Symbol.dispose) frees the native memory at once, and
 * so does disposing the context that made it. Later use throws ERR_TENSAFE_DISPOSED. Secret
 * keys never serialise except through Ckks.exportSecretKey().
 */
import type {
  NativeCiphertext,
  NativeGaloisKeys,
  NativeHandle,
  NativePlaintext,
  NativePublicKey,
  NativeSecretKey,
} from './native-api';

abstract class NativeBacked<N extends NativeHandle> {
  /** @internal */
  constructor(readonly native: N) {}
  dispose(): void {
    this.native.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
  get disposed(): boolean {
    return this.native.disposed;
  }
  /** The backend whose engine holds the object ('cpu' | 'cuda'). */
  get backend(): 'cpu' | 'cuda' {
    return this.native.backend;
  }
}

export class Plaintext extends NativeBacked<NativePlaintext> {
  /** Number of RNS primes. */
  get limbs(): number {
    return this.native.limbs;
  }
  get scale(): number {
    return this.native.scale;
  }
  get encoding(): 'slots' | 'coefficients' {
    return this.native.encoding;
  }
}

export class Ciphertext extends NativeBacked<NativeCiphertext> {
  get limbs(): number {
    return this.native.limbs;
  }
  get scale(): number {
    return this.native.scale;
  }
  get size(): number {
    return this.native.size;
  }
  /** c1 is stored as a seed (compact symmetric encryption): serialisation is about half the size. */
  get compact(): boolean {
    return this.native.compact;
  }
}

export class SecretKey extends NativeBacked<NativeSecretKey> {}
export class PublicKey extends NativeBacked<NativePublicKey> {}
export class GaloisKeys extends NativeBacked<NativeGaloisKeys> {
  get steps(): number[] {
    return this.native.steps;
  }
}
