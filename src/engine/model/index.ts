/** The Qwen2 decoder (CPU and CUDA backends), its tokenizer and formats. */
export { Model, modelConfig, modelPresets, readSafetensors, sampleToken, samplingUniform } from './model';
export type { NativeModel } from './model';
export * from './types';
export { Tokenizer, TextStream, QWEN25_DEFAULT_SYSTEM_PROMPT } from '../tokenizer';
export type { ChatMessage, ChatTemplateOptions } from '../tokenizer';
