import { describe, expect, it } from 'vitest';
import { formatBreakdown } from '../../src/cli/demo';

describe('demo breakdown format', () => {
  it("prints the original's tree: a total line, then one branch per stage that ran, in pipeline order", () => {
    const text = formatBreakdown({ lm_head: 5, forward: 25.04, encrypt: 0.24, sampling: 1 }, 31.28, { encrypt: 'secret-key' });
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^Total:\s+~31\.3 ms\/token$/);
    expect(lines.slice(1).map((l) => l.replace(/\s+/g, ' ').trim())).toEqual([
      '├── Transformer forward: 25.0 ms',
      '├── CKKS encrypt: 0.240 ms (secret-key)',
      '├── LM head projection: 5.00 ms',
      '└── Sampling: 1.00 ms',
    ]);
  });
});
