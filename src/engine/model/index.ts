/** The Qwen2 decoder (CPU and CUDA backends), its tokenizer and formats. */
export { Model, ModelContext, modelConfig, modelPresets, readSafetensors, sampleToken, samplingUniform } from './model';
export type { NativeContext, NativeModel } from './model';
export * from './types';
export { Tokenizer, TextStream, QWEN25_DEFAULT_SYSTEM_PROMPT } from '../tokenizer';
export type { ChatMessage, ChatTemplateOptions } from '../tokenizer';
