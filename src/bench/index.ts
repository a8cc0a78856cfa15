/**
 * `npm run bench -- <name> [--backend cpu|cuda|auto] [--quick] [--key value ...]`.
 * Each benchmark lives in src/bench/<name>.ts and exports `run(args)`.
 */
import type { BackendChoice } from '../engine/info';

export interface BenchArgs {
  /** Which backend the caller asked for ('auto' = CUDA when a GPU is usable). */
  backend: BackendChoice;
  /** Fewer sizes and iterations (CI smoke runs, the demo). */
  quick: boolean;
  /** Other --key value / --flag options, as strings (flags are 'true'). */
  options: Record<string, string>;
  /** The arguments as typed after `bench`, for the result's `command` field. */
  argv: string[];
}

export const benchNames = ['ntt', 'ckks', 'model', 'pipeline', 'server', 'private', 'private-site'] as const;

/** Parses `<name> --backend cuda --quick --sizes 8192,16384` into a name and BenchArgs. */
export function parseBenchArgs(argv: string[]): { name: string; args: BenchArgs } {
  const [name, ...rest] = argv;
  const options: Record<string, string> = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith('--')) throw new RangeError(`bench: unexpected argument '${a}' (options look like --key value)`);
    const key = a.slice(2);
    const next = rest[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      options[key] = next;
      i++;
    } else {
      options[key] = 'true';
    }
  }
  const backend = (options.backend ?? 'auto') as BackendChoice;
  if (!['auto', 'cpu', 'cuda'].includes(backend)) throw new RangeError(`--backend must be cpu, cuda or auto, got '${backend}'`);
  return { name: name ?? '', args: { backend, quick: options.quick === 'true', options, argv } };
}

export async function runBench(argv: string[]): Promise<void> {
  // `bench split` (the original's bench_split_ws.py) is the server benchmark's split client alone.
  if (argv[0] === 'split') argv = ['server', '--only', 'split', ...argv.slice(1)];
  const { name, args } = parseBenchArgs(argv);
  if (!(benchNames as readonly string[]).includes(name)) {
    throw new RangeError(`bench: unknown benchmark '${name}'; choose one of ${benchNames.join(', ')}`);
  }
  let mod: { run: (a: BenchArgs) => Promise<void> };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(`./${name}`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && String(err).includes(`./${name}`)) {
      throw new Error(`bench: the '${name}' benchmark is not implemented in this build`);
    }
    throw err;
  }
  await mod.run(args);
}
