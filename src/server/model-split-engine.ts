/**
 * The split engine over the engine's model and the HE-LoRA pipeline. Filled in against the
 * model API (src/engine/model) once it exposes a forward from embedding rows; until then
 * openSplitEngine returns undefined and the split endpoints answer 503 saying so.
 */
import type { GenerationService } from '../pipeline/types';
import type { SplitEngine } from './split-engine';

export async function openSplitEngine(_service: GenerationService): Promise<SplitEngine | undefined> {
  return undefined;
}
