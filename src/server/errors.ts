/**
 * Errors the server answers with. A RequestError is the client's fault (bad field, bad
 * frame, too many requests): it becomes a 4xx HTTP answer or an `{"type":"error"}` frame and
 * never takes the server down. Anything else is ours and becomes a 500 / error frame with a
 * short message (the stack stays in the log).
 */
export class RequestError extends Error {
  /** HTTP status this error maps to (400 bad input, 404, 405, 413, 429, 503). */
  readonly status: number;
  /** The request field at fault, when there is one (`max_tokens`, `hidden_states_b64`, ...). */
  readonly field?: string;
  /** Machine-readable kind (`invalid_field`, `rate_limited`, `busy`, ...). */
  readonly code: string;

  constructor(message: string, options: { status?: number; field?: string; code?: string } = {}) {
    super(message);
    this.name = 'RequestError';
    this.status = options.status ?? 400;
    this.field = options.field;
    this.code = options.code ?? (this.status === 429 ? 'rate_limited' : 'invalid_request');
  }
}

/** The JSON body of an error answer (HTTP) or the fields of an error frame (WebSocket). */
export function errorBody(err: unknown): { error: string; code: string; field?: string } {
  if (err instanceof RequestError) {
    return { error: err.message, code: err.code, ...(err.field ? { field: err.field } : {}) };
  }
  const e = err as Error & { code?: string };
  const message = (e && typeof e.message === 'string' ? e.message : String(err)).slice(0, 500);
  return { error: message, code: typeof e?.code === 'string' ? e.code : 'internal_error' };
}

/** HTTP status for an error: RequestError carries its own; the engine's argument errors
 * (codes ERR_TENSAFE_ARG_*, raised at the native boundary from request values) are 400;
 * anything else, including plain TypeErrors from our own code, is a 500. */
export function errorStatus(err: unknown): number {
  if (err instanceof RequestError) return err.status;
  const code = (err as { code?: unknown })?.code;
  if (code === 'ERR_TENSAFE_ARG_RANGE' || code === 'ERR_TENSAFE_ARG_TYPE') return 400;
  if (code === 'ERR_TENSAFE_OUT_OF_MEMORY') return 503;
  return 500;
}
