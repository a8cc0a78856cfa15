import { describe, expect, it } from 'vitest';
import { parseServeArgs } from '../../src/cli/serve';

describe('tensafe serve arguments', () => {
  it('has the defaults of the original and reads every flag', () => {
    expect(parseServeArgs([])).toEqual({ host: '127.0.0.1', port: 8095, backend: 'auto', maxConcurrent: 2, rateLimit: 600, maxSessions: 32, sessionIdleS: 300, split: true });
    const a = parseServeArgs(['--host', '0.0.0.0', '--port', '0', '--model', 'tiny', '--adapters', '/tmp/a', '--poly_n', '32768', '--backend', 'cpu', '--max-concurrent', '3', '--rate-limit', '60', '--max-sessions', '4', '--session-idle-s', '10', '--no-split']);
    expect(a).toEqual({ host: '0.0.0.0', port: 0, model: 'tiny', adapters: '/tmp/a', polyN: 32768, backend: 'cpu', maxConcurrent: 3, rateLimit: 60, maxSessions: 4, sessionIdleS: 10, split: false });
    expect(parseServeArgs(['--poly-n', '16384']).polyN).toBe(16384);
    expect(parseServeArgs(['--device', '1']).device).toBe(1);
    expect(parseServeArgs(['--dp', 'analytic', '--epsilon', '2', '--delta', '1e-6']).dp).toEqual({ mechanism: 'analytic', epsilon: 2, delta: 1e-6 });
    expect(parseServeArgs(['--epsilon', '0.5']).dp).toEqual({ mechanism: 'analytic', epsilon: 0.5 });
    expect(parseServeArgs(['--dp', 'original', '--dp', 'off']).dp).toBeUndefined();
  });

  it('refuses bad flags naming them', () => {
    expect(() => parseServeArgs(['--port', '70000'])).toThrow(/--port must be an integer in \[0, 65535\], got '70000'/);
    expect(() => parseServeArgs(['--backend', 'tpu'])).toThrow(/--backend must be auto, cpu or cuda/);
    expect(() => parseServeArgs(['--device', '-1'])).toThrow(/--device must be an integer in \[0, 1023\], got '-1'/);
    expect(() => parseServeArgs(['--device', 'gpu1'])).toThrow(/--device must be an integer/);
    expect(() => parseServeArgs(['--colour', 'red'])).toThrow(/unknown option --colour/);
    expect(() => parseServeArgs(['--port'])).toThrow(/--port needs a value/);
    expect(() => parseServeArgs(['8080'])).toThrow(/unexpected argument '8080'/);
    expect(() => parseServeArgs(['--max-concurrent', '0'])).toThrow(/--max-concurrent must be an integer in \[1, 64\]/);
    expect(() => parseServeArgs(['--dp', 'laplace'])).toThrow(/--dp must be off, classic, analytic or original/);
    expect(() => parseServeArgs(['--delta', '2'])).toThrow(/--delta must be a number > 0 and < 1/);
  });
});
