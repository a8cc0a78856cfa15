/** The HTTP/WebSocket server, the split client and their protocol helpers (see PROTOCOL.md). */
export { TensafeServer, startServer, WS_ENDPOINTS, type ServerOptions, type WsEndpoint } from './server';
export { tokenProtocols, isLoopbackHost } from './guards';
export { openEngines, type EngineOptions, type Engines } from './engines';
export { ModelSplitEngine, ModelHead, type ModelSplitOptions } from './model-split-engine';
export { SplitClient, type SplitClientOptions, type SplitGenerateOptions, type SplitTokenEvent } from './split-client';
export { RequestError } from './errors';
export * from './split-engine';
export * as codec from './hidden-codec';
export { LIMITS } from './validate';
