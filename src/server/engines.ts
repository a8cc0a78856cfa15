/**
 * Opens what the server drives: the HE-LoRA pipeline (GenerationService) and the split engine
 * over the same loaded model (one copy of the weights: the split sessions are contexts of the
 * pipeline's model), with the same experts and HE parameters, so split mode and HE mode answer
 * with the same model.
 */
import { modelPresets } from '../engine/model';
import { Pipeline, type PipelineOpenOptions } from '../pipeline/pipeline';
import { resolveOptions } from '../pipeline/options';
import type { GenerationService } from '../pipeline/types';
import { ModelSplitEngine } from './model-split-engine';
import type { SplitEngine } from './split-engine';

export interface EngineOptions {
  backend?: 'auto' | 'cpu' | 'cuda';
  model?: string;
  adapters?: string;
  polyN?: number;
  /** Open the split engine too (default true). */
  split?: boolean;
  /** CUDA device index of the model (and its CKKS work). */
  device?: number;
  /** Extra Pipeline.open options (numLayers, modelSeed, contextLength, packing, ...). */
  pipeline?: PipelineOpenOptions;
}

export interface Engines {
  service: GenerationService;
  split?: SplitEngine;
  /** Why split mode is off, when it is. */
  splitUnavailable?: string;
}

export async function openEngines(options: EngineOptions = {}): Promise<Engines> {
  const open: PipelineOpenOptions = {
    ...(options.pipeline ?? {}),
    ...(options.backend ? { backend: options.backend } : {}),
    ...(options.model ? { model: options.model } : {}),
    ...(options.polyN ? { polyN: options.polyN } : {}),
    ...(options.adapters ? { adapters: options.adapters } : {}),
    ...(options.device !== undefined ? { device: options.device } : {}),
  };
  const pipeline = await Pipeline.open(open);
  if (options.split === false) return { service: pipeline };
  try {
    const cfg = pipeline.modelConfig;
    const requested = open.model ?? 'default';
    const source = requested === 'default' ? 'qwen2.5-1.5b-shape' : requested;
    const preset = modelPresets().find((p) => p.preset === source);
    // A pipeline that truncated a preset's layers (the CPU default keeps 4 of 28) gets a split
    // twin with the same layers and seed, hence the same weights.
    const numLayers = preset && preset.config.numHiddenLayers !== cfg.numHiddenLayers ? cfg.numHiddenLayers : undefined;
    const he = resolveOptions({}, { polyN: open.polyN, packing: open.packing, decrypt: open.decrypt, allowInsecure: open.allowInsecure });
    const split = await ModelSplitEngine.open({
      model: pipeline.model,
      source,
      seed: open.modelSeed ?? 0,
      numLayers,
      experts: pipeline.expertSet,
      he: { polyN: he.polyN, packing: he.packing, decrypt: he.decrypt, allowInsecure: he.allowInsecure },
      dp: open.dp,
    });
    return { service: pipeline, split };
  } catch (err) {
    // HE mode does not depend on split mode: serve without it and say why.
    return { service: pipeline, splitUnavailable: `the split engine failed to open: ${(err as Error).message}` };
  }
}
