/** The HTTP/WebSocket server, the split client and their protocol helpers. */
export { TensafeServer, startServer, type ServerOptions } from './server';
export { RequestError } from './errors';
export * from './split-engine';
export * as codec from './hidden-codec';
export { LIMITS } from './validate';
