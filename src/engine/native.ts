/**
 * Loads the native addon and holds the boundary conventions on the TypeScript side.
 *
 * Native errors carry the right class and a `code`, but their stack ends inside the addon
 * (or, for async work, nowhere at all). `callSync` and `callAsync` rethrow them with the
 * caller's JavaScript stack appended, as sharp does, so a failing notebook cell points at
 * the line that made the call.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The raw addon: every binding file adds its functions and classes here. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NativeAddon = Record<string, any>;

let cached: NativeAddon | undefined;

/** Repository (package) root: works from src/ (vitest) and from dist/ (compiled). */
export function packageRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'native'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`tensafe: cannot find the package root above ${__dirname}`);
}

/** Candidate locations of the built addon, most specific first. */
function addonCandidates(): string[] {
  const root = packageRoot();
  const fromEnv = process.env.TENSAFE_ADDON;
  return [
    ...(fromEnv ? [path.resolve(fromEnv)] : []),
    path.join(root, 'build', 'native', 'Release', 'tensafe.node'),
    path.join(root, 'build', 'native', 'Debug', 'tensafe.node'),
  ];
}

/** The addon, loaded once. Throws an error that says how to build it when it is missing. */
export function native(): NativeAddon {
  if (cached) return cached;
  const candidates = addonCandidates();
  for (const file of candidates) {
    if (fs.existsSync(file)) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      cached = require(file) as NativeAddon;
      return cached;
    }
  }
  const err = new Error(
    `tensafe: the native engine is not built (looked for ${candidates.join(', ')}). ` +
      'Run `npm run build:native` (or `npm install`).',
  );
  (err as NodeJS.ErrnoException).code = 'ERR_TENSAFE_NOT_BUILT';
  throw err;
}

/** Appends the caller's stack (captured before the native call) to a native error. */
export function withCallerStack<E>(err: E, callerStack: string | undefined): E {
  if (err instanceof Error && callerStack) {
    const frames = callerStack.split('\n').slice(1).join('\n');
    err.stack = `${err.name}: ${err.message}\n${frames}`;
  }
  return err;
}

/** Runs a synchronous native call; a native error is rethrown with this call's JS stack. */
export function callSync<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw withCallerStack(err, new Error().stack);
  }
}

/** Awaits an async native call; a rejection carries the JS stack of the call site. */
export async function callAsync<T>(fn: () => Promise<T>): Promise<T> {
  const callerStack = new Error().stack;
  try {
    return await fn();
  } catch (err) {
    throw withCallerStack(err, callerStack);
  }
}

/** Error codes the engine uses (`err.code`). */
export const ErrorCodes = {
  argType: 'ERR_TENSAFE_ARG_TYPE',
  argRange: 'ERR_TENSAFE_ARG_RANGE',
  disposed: 'ERR_TENSAFE_DISPOSED',
  insecure: 'ERR_TENSAFE_INSECURE',
  format: 'ERR_TENSAFE_FORMAT',
  backend: 'ERR_TENSAFE_BACKEND',
  cuda: 'ERR_TENSAFE_CUDA',
  outOfMemory: 'ERR_TENSAFE_OUT_OF_MEMORY',
  busy: 'ERR_TENSAFE_BUSY',
  site: 'ERR_TENSAFE_SITE',
  notBuilt: 'ERR_TENSAFE_NOT_BUILT',
} as const;
