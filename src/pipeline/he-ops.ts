/**
 * Ciphertext operation counts of the HE-LoRA step, from the packing layouts the native
 * generator reports (`info().layouts`, native/src/helora/packing.h). One HE application of a
 * layout (one input vector through A under CKKS) runs:
 *   encryptions = chunks                      (one ciphertext per chunk of the input)
 *   products    = chunks x products_per_chunk (ciphertext x plaintext)
 *   decryptions = products                    (every product is decrypted, batched or not)
 *   rotations   = products x rotation steps   (the rotations packing's rotate-and-sum)
 * A ciphertext is 2 polynomials x N coefficients x limbs x 8 bytes; HE-LoRA ciphertexts stay at
 * the two primes [60, 40] (no rescale; the rotations packing's special prime is in the keys only).
 */
import type { PackingLayoutInfo } from './native';
import type { HeOperations } from './types';

/** RNS limbs of a HE-LoRA ciphertext (primes [60, 40]). */
export const HE_LORA_CIPHERTEXT_LIMBS = 2;

export function ciphertextBytes(polyN: number, limbs = HE_LORA_CIPHERTEXT_LIMBS): number {
  return 2 * polyN * limbs * 8;
}

export function zeroHeOperations(): HeOperations {
  return { encryptions: 0, products: 0, decryptions: 0, rotations: 0, ciphertextBytes: 0 };
}

/** The work of `applications` HE applications of one layout. */
export function layoutOperations(layout: PackingLayoutInfo, applications = 1): HeOperations {
  const encryptions = layout.chunks * applications;
  const products = layout.products * applications;
  return {
    encryptions,
    products,
    decryptions: products,
    rotations: products * layout.rotationsPerProduct,
    ciphertextBytes: encryptions * ciphertextBytes(layout.polyN),
  };
}

export function addHeOperations(a: HeOperations, b: HeOperations): HeOperations {
  return {
    encryptions: a.encryptions + b.encryptions,
    products: a.products + b.products,
    decryptions: a.decryptions + b.decryptions,
    rotations: a.rotations + b.rotations,
    ciphertextBytes: a.ciphertextBytes + b.ciphertextBytes,
  };
}

/** The original's single `he_operations` number: every ciphertext operation of the token. */
export function totalHeOperations(ops: HeOperations): number {
  return ops.encryptions + ops.products + ops.decryptions + ops.rotations;
}

/**
 * The work of `releases` HE applications spread evenly over a generator's HE sites (each
 * position of a step visits every site once: one site for final-hidden, one per adapted
 * projection under HE for layers). `layouts` holds null for pairs not under HE.
 */
export function heOperationsOf(info: { heSites: number; layouts: Array<PackingLayoutInfo | null> }, releases: number): HeOperations {
  if (info.heSites <= 0 || releases <= 0) return zeroHeOperations();
  const positions = releases / info.heSites;
  let ops = zeroHeOperations();
  for (const layout of info.layouts) if (layout) ops = addHeOperations(ops, layoutOperations(layout, positions));
  return ops;
}
