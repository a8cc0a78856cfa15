/** CKKS over the native backends (CPU always, CUDA when built): context, handles, NTT. */
export { Ckks, type CkksOptions } from './ckks';
export { Ciphertext, GaloisKeys, Plaintext, PublicKey, SecretKey } from './handles';
export type * from './native-api';
export { NttPlan, generateNttPrimes, isPrime, type NttPlanOptions, type NttTiming } from '../ntt';
