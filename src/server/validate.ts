/**
 * Request validation. The original clamped out-of-range values silently (max_tokens 5000
 * became 2048); here a value outside the original's ranges is refused with a 400 / error
 * frame that names the field and the allowed range, so a client learns what it did wrong.
 * Unknown fields are ignored (the original's clients send only known ones); known fields
 * must have the right type: no string-to-number coercion.
 */
import { RequestError } from './errors';
import { decodeBase64, decodeValues, HiddenDtype, parseDtype } from './hidden-codec';
import type { SplitInput } from './split-engine';

/** The original's limits (field-notes section 1), plus our split-mode bounds. */
export const LIMITS = {
  queryMaxChars: 10_000,
  maxTokens: { min: 1, max: 2048 },
  temperature: { min: 0, max: 2 },
  topP: { min: 0, max: 1 },
  topK: { min: 0, max: 200 },
  sessionIdMaxChars: 128,
  expertMaxChars: 128,
  seqLen: { min: 1, max: 4096 },
  tokenizeMaxChars: 10_000,
} as const;

export type Json = Record<string, unknown>;

/** Parses a text body/frame as a JSON object; malformed JSON is a 400 saying where. */
export function parseJsonObject(raw: string | Buffer, what = 'body'): Json {
  let value: unknown;
  try {
    value = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch (err) {
    throw new RequestError(`malformed JSON in ${what}: ${(err as Error).message}`, { field: what, code: 'malformed_json' });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new RequestError(`${what} must be a JSON object`, { field: what, code: 'malformed_json' });
  }
  return value as Json;
}

function isMissing(v: unknown): boolean {
  return v === undefined || v === null;
}

export function numberField(obj: Json, name: string, range: { min: number; max: number }, def: number): number {
  const v = obj[name];
  if (isMissing(v)) return def;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new RequestError(`${name} must be a finite number, got ${JSON.stringify(v)}`, { field: name });
  }
  if (v < range.min || v > range.max) {
    throw new RequestError(`${name} must be in [${range.min}, ${range.max}], got ${v}`, { field: name });
  }
  return v;
}

export function intField(obj: Json, name: string, range: { min: number; max: number }, def: number): number {
  const v = numberField(obj, name, range, def);
  if (!Number.isInteger(v)) throw new RequestError(`${name} must be an integer, got ${v}`, { field: name });
  return v;
}

export function boolField(obj: Json, name: string, def: boolean): boolean {
  const v = obj[name];
  if (isMissing(v)) return def;
  if (typeof v !== 'boolean') throw new RequestError(`${name} must be true or false, got ${JSON.stringify(v)}`, { field: name });
  return v;
}

export function stringField(obj: Json, name: string, maxChars: number, def: string | undefined, opts: { nonEmpty?: boolean } = {}): string {
  const v = obj[name];
  if (isMissing(v)) {
    if (def === undefined) throw new RequestError(`${name} is required`, { field: name });
    return def;
  }
  if (typeof v !== 'string') throw new RequestError(`${name} must be a string, got ${typeof v}`, { field: name });
  if (v.length > maxChars) throw new RequestError(`${name} is ${v.length} characters; at most ${maxChars} are allowed`, { field: name });
  if (opts.nonEmpty && v.trim().length === 0) throw new RequestError(`${name} must not be empty`, { field: name });
  return v;
}

/** An expert name: one of `known`, or 'auto' (the keyword router). */
export function expertField(obj: Json, names: string[], known: string[], def: string): string {
  let value: string | undefined;
  let field = names[0];
  for (const n of names) {
    if (!isMissing(obj[n])) {
      value = stringField(obj, n, LIMITS.expertMaxChars, undefined);
      field = n;
      break;
    }
  }
  const expert = value ?? def;
  if (expert !== 'auto' && !known.includes(expert)) {
    throw new RequestError(
      `unknown expert ${JSON.stringify(expert)}; available: ${known.length ? known.join(', ') : '(none)'}, or "auto"`,
      { field, code: 'unknown_expert' },
    );
  }
  return expert;
}

export interface SamplingRequest {
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
}

/** Sampling fields with the original's defaults (256 / 0.7 / 0.9 / 50 for chat). */
export function samplingFields(obj: Json, defaults: SamplingRequest): SamplingRequest {
  return {
    maxTokens: intField(obj, 'max_tokens', LIMITS.maxTokens, defaults.maxTokens),
    temperature: numberField(obj, 'temperature', LIMITS.temperature, defaults.temperature),
    topP: numberField(obj, 'top_p', LIMITS.topP, defaults.topP),
    topK: intField(obj, 'top_k', LIMITS.topK, defaults.topK),
  };
}

export interface ChatRequest extends SamplingRequest {
  query: string;
  useHe: boolean;
  /** Generation mode: from `mode` when given (ours), else use_he ? 'he-lora' : 'base'. */
  mode: 'base' | 'lora' | 'he-lora';
  sessionId: string;
  expert: string;
  seed?: number;
}

export const CHAT_DEFAULTS: SamplingRequest = { maxTokens: 256, temperature: 0.7, topP: 0.9, topK: 50 };
export const COMPARE_DEFAULTS: SamplingRequest = { maxTokens: 128, temperature: 0.7, topP: 0.9, topK: 50 };

function seedField(obj: Json): number | undefined {
  if (isMissing(obj.seed)) return undefined;
  return intField(obj, 'seed', { min: 0, max: Number.MAX_SAFE_INTEGER }, 0);
}

/** `WS /api/v1/chat/stream` request: the original's fields (+ `expert`, `seed`). */
export function parseChatRequest(obj: Json, experts: string[]): ChatRequest {
  const useHe = boolField(obj, 'use_he', true);
  let mode: ChatRequest['mode'] = useHe ? 'he-lora' : 'base';
  if (!isMissing(obj.mode)) {
    if (obj.mode !== 'base' && obj.mode !== 'lora' && obj.mode !== 'he-lora') {
      throw new RequestError(`mode must be "base", "lora" or "he-lora", got ${JSON.stringify(obj.mode)}`, { field: 'mode' });
    }
    mode = obj.mode;
  }
  return {
    query: stringField(obj, 'query', LIMITS.queryMaxChars, undefined, { nonEmpty: true }),
    ...samplingFields(obj, CHAT_DEFAULTS),
    useHe: mode === 'he-lora',
    mode,
    sessionId: stringField(obj, 'session_id', LIMITS.sessionIdMaxChars, 'default'),
    expert: expertField(obj, ['expert', 'expert_name'], experts, 'auto'),
    seed: seedField(obj),
  };
}

/** `POST /api/v1/chat/compare`: query, max_tokens (128), temperature (0.7) (+ top_p, top_k, expert, seed). */
export function parseCompareRequest(obj: Json, experts: string[]): Omit<ChatRequest, 'useHe' | 'sessionId' | 'mode'> {
  return {
    query: stringField(obj, 'query', LIMITS.queryMaxChars, undefined, { nonEmpty: true }),
    ...samplingFields(obj, COMPARE_DEFAULTS),
    expert: expertField(obj, ['expert', 'expert_name'], experts, 'auto'),
    seed: seedField(obj),
  };
}

export interface SplitForwardRequest {
  input: SplitInput;
  seqLen: number;
  hiddenDim: number;
  dtype: HiddenDtype;
  expert: string;
  useHe: boolean;
  sessionId: string;
  incremental: boolean;
  /** Answer with binary frames / base64 in this dtype (defaults to the request's). */
  responseDtype: HiddenDtype;
}

/**
 * A split forward, from the original's JSON (`hidden_states_b64`), from a binary frame
 * (header fields + payload), or (ours) with `token_ids` instead of embedding rows. The hidden
 * size must be the model's; the payload must hold exactly seq_len x hidden_dim finite values;
 * token ids must be integers in [0, vocab_size).
 */
export function parseSplitForward(
  obj: Json,
  payload: Uint8Array | undefined,
  model: { hiddenSize: number; vocabSize: number; experts: string[]; defaultExpert: string; maxSeqLen: number; inputs: Array<'hidden_states' | 'token_ids'> },
): SplitForwardRequest {
  const maxSeq = Math.min(LIMITS.seqLen.max, model.maxSeqLen);
  const dtype = parseDtype(obj.dtype);
  const responseDtype = parseDtype(obj.response_dtype ?? dtype, 'response_dtype');
  let input: SplitInput;
  let seqLen: number;
  let hiddenDim = model.hiddenSize;
  if (!isMissing(obj.token_ids)) {
    if (payload || !isMissing(obj.hidden_states_b64)) {
      throw new RequestError('send either token_ids or hidden states, not both', { field: 'token_ids' });
    }
    const ids = obj.token_ids;
    if (!Array.isArray(ids) || ids.length < 1 || ids.length > maxSeq) {
      throw new RequestError(`token_ids must be an array of 1 to ${maxSeq} token ids`, { field: 'token_ids' });
    }
    ids.forEach((t, i) => {
      if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t >= model.vocabSize) {
        throw new RequestError(`token_ids[${i}] must be an integer in [0, ${model.vocabSize}), got ${JSON.stringify(t)}`, { field: 'token_ids' });
      }
    });
    if (!model.inputs.includes('token_ids')) throw new RequestError('this server does not accept token_ids', { field: 'token_ids' });
    seqLen = ids.length;
    input = { kind: 'tokens', ids: ids as number[] };
  } else {
    seqLen = intField(obj, 'seq_len', { min: LIMITS.seqLen.min, max: maxSeq }, 1);
    hiddenDim = intField(obj, 'hidden_dim', { min: 1, max: 65536 }, model.hiddenSize);
    if (hiddenDim !== model.hiddenSize) {
      throw new RequestError(`hidden_dim ${hiddenDim} does not match the model's hidden size ${model.hiddenSize}`, { field: 'hidden_dim' });
    }
    let bytes: Uint8Array;
    let field: string;
    if (payload) {
      bytes = payload;
      field = 'payload';
    } else {
      if (isMissing(obj.hidden_states_b64)) throw new RequestError('hidden_states_b64 (or token_ids) is required', { field: 'hidden_states_b64' });
      bytes = decodeBase64(obj.hidden_states_b64, 'hidden_states_b64');
      field = 'hidden_states_b64';
    }
    const hidden = decodeValues(bytes, dtype, seqLen * hiddenDim, field);
    if (!model.inputs.includes('hidden_states')) {
      throw new RequestError(
        'this engine cannot run its decoder from embedding rows (its model API has no forward from embeddings); send token_ids instead',
        { status: 501, field, code: 'hidden_states_unsupported' },
      );
    }
    input = { kind: 'embeddings', data: hidden, seqLen };
  }
  return {
    input,
    seqLen,
    hiddenDim,
    dtype,
    responseDtype,
    expert: expertField(obj, ['expert_name', 'expert'], model.experts, model.defaultExpert),
    useHe: boolField(obj, 'use_he', true),
    sessionId: stringField(obj, 'session_id', LIMITS.sessionIdMaxChars, 'default'),
    incremental: boolField(obj, 'incremental', false),
  };
}
