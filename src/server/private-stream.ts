/**
 * `WS /api/v1/private/stream`: the private (client-key) mode. Binary frames only
 * (src/private/wire.ts); the protocol and the privacy argument are in PROTOCOL.md.
 *
 *   hello   {expert, placement}                  -> adapter {sites (public facts), defaults, limits}
 *   open    {params} + public key (+ Galois keys) -> ready {session, sites}
 *   round1 / round2 / one-round (site, seq, ct)   -> their replies (ciphertexts, server HE time)
 *   close   (session)                            -> closed
 * Any refused frame gets an `error` frame {code, message} with the request's seq; the socket stays
 * open and other sessions are unaffected. Frames of one connection are answered in order.
 */
import type { WebSocket, RawData } from 'ws';
import { PrivateRequestError } from '../private/server-session';
import { encodeFrame, FrameType, jsonBlob, parseFrame, parseJsonBlob, WireError, type Frame } from '../private/wire';
import type { PrivateEngine } from './private-engine';

let connections = 0;

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export interface PrivateSocketOptions {
  /** Called with every frame as received (the curious-server tests record what the server sees). */
  onFrame?: (bytes: Uint8Array) => void;
}

export function handlePrivateSocket(engine: PrivateEngine, ws: WebSocket, options: PrivateSocketOptions = {}): void {
  const owner = `private${++connections}`;
  let chain: Promise<void> = Promise.resolve();
  ws.on('close', () => engine.closeOwner(owner));
  ws.on('message', (data, isBinary) => {
    const bytes = isBinary ? toBytes(data) : undefined;
    chain = chain.then(() => answer(bytes, isBinary));
  });

  const send = (f: Parameters<typeof encodeFrame>[0]) => {
    if (ws.readyState === ws.OPEN) ws.send(encodeFrame(f));
  };
  const sendError = (seq: number, site: number, code: string, message: string) => {
    engine.totals.errors++;
    send({ type: FrameType.Error, session: 0, site, seq, blobs: [jsonBlob({ type: 'error', code, message })] });
  };

  async function answer(bytes: Uint8Array | undefined, isBinary: boolean): Promise<void> {
    let frame: Frame | undefined;
    try {
      if (!isBinary || !bytes) throw new WireError('the private endpoint speaks binary frames only (src/private/wire.ts)');
      options.onFrame?.(bytes);
      // Bounds before anything else: an open frame carries keys, round frames one ciphertext.
      frame = parseFrame(bytes, { maxBlobs: 4, maxBlobBytes: engine.limits.maxKeyBytes });
      switch (frame.type) {
        case FrameType.Hello: {
          const h = parseJsonBlob(frame.blobs[0], 'hello');
          if (typeof h.expert !== 'string') throw new PrivateRequestError('bad_params', 'hello.expert must be a string');
          const body = engine.describe(h.expert, (h.placement ?? 'layers') as 'layers');
          send({ type: FrameType.Adapter, session: 0, site: 0, seq: frame.seq, blobs: [jsonBlob(body)] });
          return;
        }
        case FrameType.Open: {
          const s = engine.open(frame, owner);
          send({
            type: FrameType.Ready,
            session: s.handle,
            site: 0,
            seq: frame.seq,
            blobs: [jsonBlob({ session: s.handle, sites: s.plans.length, backend: engine.options.backend, insecure: s.ckks.info().insecure, idleMs: engine.limits.idleMs })],
          });
          return;
        }
        case FrameType.Close: {
          engine.get(frame.session, owner);
          engine.close(frame.session);
          send({ type: FrameType.Closed, session: frame.session, site: 0, seq: frame.seq, blobs: [] });
          return;
        }
        case FrameType.Round1:
        case FrameType.Round2:
        case FrameType.OneRound: {
          const s = engine.get(frame.session, owner);
          const r = s.answer(frame);
          send({ type: r.type, session: frame.session, site: frame.site, seq: frame.seq, serverUs: r.serverUs, blobs: r.blobs });
          return;
        }
        default:
          throw new WireError(`a client may not send ${FrameType[frame.type]} frames`);
      }
    } catch (err) {
      const e = err as Error & { code?: string };
      const code = e instanceof WireError ? 'bad_frame' : e instanceof PrivateRequestError ? e.code : e.code === 'ERR_TENSAFE_FORMAT' ? 'bad_ciphertext' : e instanceof RangeError || e instanceof TypeError ? 'bad_request' : 'internal';
      sendError(frame?.seq ?? 0, frame?.site ?? 0, code, e.message);
    }
  }
}
