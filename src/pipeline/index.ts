/** HE-LoRA generation: the Pipeline (GenerationService), options, experts and routing, DP. */
export * from './types';
export { Pipeline, CPU_DEFAULT_LAYERS, type PipelineOpenOptions } from './pipeline';
export { validatePipelineOptions, resolveOptions, SEED_PRESETS, DEFAULT_OPTIONS, type ResolvedOptions, type SeedPreset } from './options';
export { recordsTable, stageMedians, heMs, HE_STAGES } from './records';
export { PeftAdapter, loraScaling, loraDeltaReference, type AdapterConfig, type LoraPair, type ProjectionName } from './adapter';
export { ExpertSet, writeSyntheticExperts, makeSyntheticExpert, DEFAULT_EXPERT_SPECS, QWEN25_1P5B_SHAPE, type ModelShape } from './experts';
export { KeywordRouter, ORIGINAL_ROUTER_CONFIG, type RouterConfig } from './router';
export { readSafetensors, writeSafetensors, parseSafetensors, serializeSafetensors } from './safetensors';
export * as dp from './dp';
export { packingLayout, simulatePacking, heLinear, type PackingLayoutInfo } from './native';
