/**
 * Gaussian noise from the operating system's CSPRNG (node:crypto randomBytes), for the
 * TypeScript side (reference paths, tests, the split client). The native per-token step draws
 * its own noise from the engine's ChaCha20 stream.
 *
 * Method: Box-Muller on two 53-bit uniforms u1 in (0, 1], u2 in [0, 1):
 *   z0 = sqrt(-2 ln u1) cos(2 pi u2), z1 = sqrt(-2 ln u1) sin(2 pi u2).
 * u1 excludes 0 so the logarithm is finite. The tail is cut at sqrt(-2 ln 2^-53) ~ 8.57 sigma,
 * a probability of 2^-53 per pair, far below anything the accounting resolves.
 */
import { randomBytes } from 'node:crypto';

const TWO_POW_53 = 2 ** 53;

export class CsprngGaussian {
  private pool = Buffer.alloc(0);
  private pos = 0;

  private refill(bytes: number): void {
    this.pool = randomBytes(Math.max(bytes, 8192));
    this.pos = 0;
  }

  /** 53-bit uniform integer from 7 random bytes. */
  private u53(): number {
    if (this.pos + 8 > this.pool.length) this.refill(8192);
    const hi = this.pool.readUInt32LE(this.pos) >>> 11; // 21 bits
    const lo = this.pool.readUInt32LE(this.pos + 4); // 32 bits
    this.pos += 8;
    return hi * 2 ** 32 + lo;
  }

  /** Fills `out` with N(0, sigma^2) samples. */
  fill(out: Float64Array | Float32Array, sigma = 1): void {
    if (!(sigma >= 0) || !Number.isFinite(sigma)) throw new RangeError(`sigma must be a finite number >= 0, got ${sigma}`);
    for (let i = 0; i < out.length; i += 2) {
      const u1 = (this.u53() + 1) / TWO_POW_53; // (0, 1]
      const u2 = this.u53() / TWO_POW_53; // [0, 1)
      const rad = Math.sqrt(-2 * Math.log(u1)) * sigma;
      out[i] = rad * Math.cos(2 * Math.PI * u2);
      if (i + 1 < out.length) out[i + 1] = rad * Math.sin(2 * Math.PI * u2);
    }
  }

  sample(n: number, sigma = 1): Float64Array {
    const out = new Float64Array(n);
    this.fill(out, sigma);
    return out;
  }
}
