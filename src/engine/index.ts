/** Typed TypeScript over the native addon. */
export * from './info';
export { ErrorCodes, packageRoot } from './native';
export * from './profiler';
