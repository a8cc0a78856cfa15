#!/usr/bin/env node
/**
 * The `tensafe` command: demo, bench, figures, serve. Each subcommand lives in its own
 * module and is loaded on demand, so a missing optional part fails only its own command.
 */
import { runBench } from '../bench/index';

const usage = `usage: tensafe <command> [options]
  demo                        the demo (npm start)
  bench <name> [--backend cpu|cuda|auto] [--quick]  (bench split = the split client alone)
                              benchmarks: ntt, ckks, model, pipeline, server
  figures                     regenerate figures/ from datasets/
  serve [--host H] [--port P] start the HTTP/WebSocket server
  serve-private [...]         the private (client-key) endpoint alone: the server holds the adapters
  private --server URL [...]  a private generation: the base model and the key stay here
  info                        engine build and device facts`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'demo': {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      await require('./demo').runDemo(rest);
      return;
    }
    case 'bench':
      await runBench(rest);
      return;
    case 'figures': {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      await require('./figures').runFigures(rest);
      return;
    }
    case 'serve': {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      await require('./serve').runServe(rest);
      return;
    }
    case 'serve-private': {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      await require('./private').runServePrivate(rest);
      return;
    }
    case 'private': {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      await require('./private').runPrivate(rest);
      return;
    }
    case 'info': {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { info } = require('../engine/info');
      console.log(JSON.stringify(info(), null, 2));
      return;
    }
    case undefined:
    case 'help':
    case '--help':
      console.log(usage);
      return;
    default:
      throw new RangeError(`unknown command '${command}'\n${usage}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const e = err as Error & { code?: string };
  console.error(`tensafe: ${e.message}${e.code ? ` (${e.code})` : ''}`);
  if (process.env.TENSAFE_DEBUG) console.error(e.stack);
  process.exit(1);
});
