/**
 * `tensafe serve [--host H] [--port P] [--model M] [--adapters DIR] [--poly-n N]
 *                [--backend auto|cpu|cuda] [--device D] [--max-concurrent K] [--rate-limit RPM]
 *                [--max-sessions S] [--session-idle-s T] [--no-split]
 *                [--token T] [--allow-host NAME] [--allow-origin ORIGIN]`
 *
 * Starts the HTTP/WebSocket server (src/server) over the HE-LoRA pipeline; SIGINT/SIGTERM
 * shut it down gracefully (running streams get a few seconds to finish, sessions and engines
 * are freed). It binds to 127.0.0.1 unless told otherwise; another host needs a token
 * (`--token`, or better TENSAFE_TOKEN: a flag is visible to other users in `ps`).
 */
import { startServer } from '../server/server';
import { openEngines } from '../server/engines';
import { Pipeline } from '../pipeline/pipeline';
import { PrivateEngine } from '../server/private-engine';
import { privateEndpoint } from '../server/private-server';
import { isLoopbackHost } from '../server/guards';

export interface ServeArgs {
  host: string;
  port: number;
  model?: string;
  adapters?: string;
  polyN?: number;
  backend: 'auto' | 'cpu' | 'cuda';
  /** CUDA device index (among CUDA_VISIBLE_DEVICES); implies --backend cuda under auto. */
  device?: number;
  maxConcurrent: number;
  rateLimit: number;
  maxSessions: number;
  sessionIdleS: number;
  split: boolean;
  /** DP noise on the HE input (off by default). */
  dp?: { mechanism: 'classic' | 'analytic' | 'original'; epsilon?: number; delta?: number };
  /** Bearer token (else TENSAFE_TOKEN); required for a non-loopback host. */
  token?: string;
  /** Extra names accepted in Host (repeatable, or comma-separated). */
  allowHosts?: string[];
  /** Extra origins whose pages may use the server (repeatable, or comma-separated). */
  allowOrigins?: string[];
}

const usage = `usage: tensafe serve [--host 127.0.0.1] [--port 8095] [--model default|tiny|<dir>] [--adapters <dir>]
                     [--poly-n 16384] [--backend auto|cpu|cuda] [--device 0] [--max-concurrent 2] [--rate-limit 600]
                     [--max-sessions 32] [--session-idle-s 300] [--no-split]
                     [--dp off|classic|analytic|original] [--epsilon 1] [--delta 1e-5]
                     [--token T (or TENSAFE_TOKEN)] [--allow-host NAME] [--allow-origin ORIGIN]
A host other than a loopback one (127.0.0.1, ::1, localhost) needs a token.`;

function intArg(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new RangeError(`serve: --${name} must be an integer in [${min}, ${max}], got '${v}'`);
  return n;
}

/** Parses the serve flags (both --poly-n and --poly_n spellings); errors name the flag. */
export function parseServeArgs(argv: string[]): ServeArgs {
  const out: ServeArgs = { host: '127.0.0.1', port: 8095, backend: 'auto', maxConcurrent: 2, rateLimit: 600, maxSessions: 32, sessionIdleS: 300, split: true };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--help' || flag === '-h') throw Object.assign(new Error(usage), { code: 'HELP' });
    if (flag === '--no-split') {
      out.split = false;
      continue;
    }
    if (!flag.startsWith('--')) throw new RangeError(`serve: unexpected argument '${flag}'\n${usage}`);
    const name = flag.slice(2).replace(/_/g, '-');
    const v = argv[++i];
    if (v === undefined) throw new RangeError(`serve: --${name} needs a value`);
    switch (name) {
      case 'host':
        out.host = v;
        break;
      case 'port':
        out.port = intArg(name, v, 0, 65535);
        break;
      case 'model':
        out.model = v;
        break;
      case 'adapters':
        out.adapters = v;
        break;
      case 'poly-n':
        out.polyN = intArg(name, v, 1024, 65536);
        break;
      case 'backend':
        if (v !== 'auto' && v !== 'cpu' && v !== 'cuda') throw new RangeError(`serve: --backend must be auto, cpu or cuda, got '${v}'`);
        out.backend = v;
        break;
      case 'device':
        out.device = intArg(name, v, 0, 1023);
        break;
      case 'max-concurrent':
        out.maxConcurrent = intArg(name, v, 1, 64);
        break;
      case 'rate-limit':
        out.rateLimit = intArg(name, v, 1, 1_000_000);
        break;
      case 'max-sessions':
        out.maxSessions = intArg(name, v, 1, 4096);
        break;
      case 'session-idle-s':
        out.sessionIdleS = intArg(name, v, 1, 86_400);
        break;
      case 'dp':
        if (v === 'off') {
          out.dp = undefined;
          break;
        }
        if (v !== 'classic' && v !== 'analytic' && v !== 'original') throw new RangeError(`serve: --dp must be off, classic, analytic or original, got '${v}'`);
        out.dp = { ...(out.dp ?? {}), mechanism: v };
        break;
      case 'epsilon':
      case 'delta': {
        const x = Number(v);
        if (!Number.isFinite(x) || x <= 0 || (name === 'delta' && x >= 1)) throw new RangeError(`serve: --${name} must be a number > 0${name === 'delta' ? ' and < 1' : ''}, got '${v}'`);
        out.dp = { mechanism: out.dp?.mechanism ?? 'analytic', ...(out.dp ?? {}), [name]: x };
        break;
      }
      case 'token':
        if (v.length < 16) throw new RangeError('serve: --token must be at least 16 characters (a random one: `openssl rand -hex 24`)');
        out.token = v;
        break;
      case 'allow-host':
      case 'allow-origin': {
        const items = v.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
        if (items.length === 0) throw new RangeError(`serve: --${name} needs a value`);
        if (name === 'allow-origin') {
          for (const o of items) {
            if (!/^https?:\/\/[^/\s]+$/i.test(o)) throw new RangeError(`serve: --allow-origin must be scheme://host[:port] (no path), got '${o}'`);
          }
          out.allowOrigins = [...(out.allowOrigins ?? []), ...items];
        } else {
          out.allowHosts = [...(out.allowHosts ?? []), ...items];
        }
        break;
      }
      default:
        throw new RangeError(`serve: unknown option --${name}\n${usage}`);
    }
  }
  return out;
}

export async function runServe(argv: string[]): Promise<void> {
  let args: ServeArgs;
  try {
    args = parseServeArgs(argv);
  } catch (err) {
    if ((err as { code?: string }).code === 'HELP') {
      console.log(usage);
      return;
    }
    throw err;
  }
  const token = args.token ?? (process.env.TENSAFE_TOKEN || undefined);
  // Refused before the engines load (the server refuses it too): a public bind needs a token.
  if (!isLoopbackHost(args.host) && !token) {
    throw new RangeError(`serve: --host ${args.host} is not a loopback address: set TENSAFE_TOKEN (or --token) so that only clients with the token can use the engine`);
  }
  const engines = await openEngines({
    backend: args.backend,
    model: args.model,
    adapters: args.adapters,
    polyN: args.polyN,
    ...(args.device !== undefined ? { device: args.device } : {}),
    split: args.split,
    ...(args.dp ? { pipeline: { dp: args.dp } } : {}),
  });
  // The private (client-key) endpoint over the same experts: the clients run the base model.
  const pipe = engines.service instanceof Pipeline ? engines.service : undefined;
  const privateEngine = pipe ? new PrivateEngine({ experts: pipe.expertSet, hiddenSize: pipe.modelConfig.hiddenSize, backend: pipe.backend }) : undefined;
  const { server, url } = await startServer({
    endpoints: privateEngine ? [privateEndpoint(privateEngine)] : [],
    service: engines.service,
    split: engines.split,
    splitUnavailable: engines.splitUnavailable ?? (args.split ? undefined : 'started with --no-split'),
    host: args.host,
    port: args.port,
    maxConcurrent: args.maxConcurrent,
    rateLimit: { perMinute: args.rateLimit },
    sessions: { max: args.maxSessions, idleMs: args.sessionIdleS * 1000 },
    token,
    allowedHosts: args.allowHosts,
    allowedOrigins: args.allowOrigins,
    facts: () => ({ split_available: !!engines.split, ...(engines.splitUnavailable ? { split_unavailable: engines.splitUnavailable } : {}) }),
  });
  if (engines.splitUnavailable) console.log(`tensafe serve: split mode off: ${engines.splitUnavailable}`);
  const d = engines.service.describe();
  if (token) console.log(`tensafe serve: a bearer token is required (from ${args.token ? '--token' : 'TENSAFE_TOKEN'}; open the page as ${url}/#token=...)`);
  console.log(
    `tensafe serve: ${url}  (model ${d.model}, ${d.backend}, poly_n ${d.polyN}, experts ${engines.service.experts().join(', ') || 'none'}` +
      `${engines.split ? ', split on' : ''}, DP ${args.dp ? `${args.dp.mechanism} eps ${args.dp.epsilon ?? 1} delta ${args.dp.delta ?? 1e-5}` : 'off'}, ` +
      `generation slots ${server.stats().gate.limit}${server.stats().gate.limit < args.maxConcurrent ? ` (what the pipeline runs at once; others queue)` : ''})`,
  );
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) {
        console.log(`tensafe serve: ${sig} again, exiting now`);
        process.exit(1);
      }
      stopping = true;
      console.log(`tensafe serve: ${sig}, shutting down (streams get 5 s to finish)`);
      void server.close(5000).then(() => {
        privateEngine?.dispose();
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
