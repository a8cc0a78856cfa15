/**
 * Opens what the server drives: the HE-LoRA pipeline (GenerationService) and, when the model
 * API allows it, the split engine. The pipeline module is loaded on demand so the server's
 * protocol code does not depend on it at import time.
 */
import type { GenerationService, PipelineOptions } from '../pipeline/types';
import type { SplitEngine } from './split-engine';

export interface EngineOptions {
  backend?: 'auto' | 'cpu' | 'cuda';
  model?: string;
  adapters?: string;
  polyN?: number;
  /** Open the split engine too (default true). */
  split?: boolean;
  /** Extra pipeline options. */
  pipeline?: PipelineOptions;
}

export interface Engines {
  service: GenerationService;
  split?: SplitEngine;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function load(modulePath: string): any {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(modulePath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && String(err).includes(modulePath.replace('./', '').replace('../', ''))) {
      return undefined;
    }
    throw err;
  }
}

export async function openEngines(options: EngineOptions = {}): Promise<Engines> {
  const mod = load('../pipeline/pipeline');
  if (!mod?.Pipeline?.open) throw new Error('tensafe serve: the HE-LoRA pipeline (src/pipeline/pipeline.ts) is not in this build');
  const service: GenerationService = await mod.Pipeline.open({
    ...(options.pipeline ?? {}),
    ...(options.backend ? { backend: options.backend } : {}),
    ...(options.model ? { model: options.model } : {}),
    ...(options.polyN ? { polyN: options.polyN } : {}),
    ...(options.adapters ? { adapters: options.adapters } : {}),
  });
  let split: SplitEngine | undefined;
  if (options.split ?? true) {
    const { openSplitEngine } = await import('./model-split-engine');
    split = await openSplitEngine(service);
  }
  return { service, split };
}
