/**
 * tensafe: encrypted LoRA inference research kernel.
 * `import { engine } from 'tensafe'` for the engine; `Lab` (src/lab) for notebooks.
 */
export * as engine from './engine';
export { Ckks, Plaintext, Ciphertext, SecretKey, PublicKey, GaloisKeys, NttPlan, generateNttPrimes, isPrime } from './engine/ckks';
export * as pipeline from './pipeline';
export * as server from './server';
export { Lab, lab } from './lab';
export { Model, ModelContext, Tokenizer, modelPresets, modelConfig } from './engine/model';
