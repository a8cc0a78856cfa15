/**
 * The key holder's half of a private session: its CKKS context (on its own backend), the secret
 * key (never leaves this object), the public material sent at setup, and one protocol client per
 * site. runSite() does one site's round trips over a transport and returns the site's outputs
 * with the time and bytes each stage took.
 */
import { Ckks } from '../engine/ckks/ckks';
import type { GaloisKeys, PublicKey, SecretKey } from '../engine/ckks/handles';
import type { OneRoundLayout, TwoRoundLayout } from './layout';
import { OneRoundClient, traceSteps } from './one-round';
import { checkParams, modulusFacts, planSites, type PrivateParams, type SitePlan } from './params';
import type { SitePublic } from './sites';
import { TwoRoundClient } from './two-round';
import { encodeFrame, FrameType, jsonBlob, type Frame } from './wire';

/** One site's costs, as the per-token stage records report them. */
export interface SiteCallStats {
  clientEncryptMs: number;
  clientDecryptMs: number;
  /** Wall time of the round trips minus the server's HE time. */
  networkMs: number;
  serverHeMs: number;
  bytesUp: number;
  bytesDown: number;
  rounds: number;
}

/** Sends one request frame and resolves with its reply (the transport owns sequencing and the network model). */
export interface PrivateTransport {
  request(frame: Uint8Array, seq: number): Promise<{ reply: Frame; wallMs: number }>;
}

export class PrivateClientSession {
  readonly plans: SitePlan[];
  private readonly secretKey: SecretKey;
  readonly publicKey: PublicKey;
  readonly galoisKeys?: GaloisKeys;
  private readonly clients: Array<TwoRoundClient | OneRoundClient>;
  private seq = 1;
  session = 0;

  private constructor(
    readonly ckks: Ckks,
    readonly params: PrivateParams,
    sites: SitePublic[],
    keys: { secretKey: SecretKey; publicKey: PublicKey; galoisKeys?: GaloisKeys },
  ) {
    this.secretKey = keys.secretKey;
    this.publicKey = keys.publicKey;
    this.galoisKeys = keys.galoisKeys;
    const moduli = ckks.info().moduli;
    this.plans = planSites(params, sites, modulusFacts(ckks));
    this.clients = this.plans.map((p) =>
      params.protocol === 'two-round'
        ? new TwoRoundClient(ckks, this.secretKey, p.site, p.layout as TwoRoundLayout, p.budget, moduli)
        : new OneRoundClient(ckks, this.secretKey, p.site, p.layout as OneRoundLayout, p.budget, moduli),
    );
  }

  /**
   * Makes the client's context and keys for `params` and the server's published sites. Keys come
   * from the engine's OS-seeded CSPRNG; Galois keys only for the one-round protocol (the trace steps).
   */
  static async create(params: PrivateParams, sites: SitePublic[], options: { backend?: 'cpu' | 'cuda' | 'auto'; device?: number } = {}): Promise<PrivateClientSession> {
    const p = checkParams(params);
    const ckks = Ckks.create({ ...p.ckks, backend: options.backend ?? 'cpu', ...(options.device !== undefined ? { device: options.device } : {}) });
    try {
      const { secretKey, publicKey } = ckks.generateKeys();
      let galoisKeys: GaloisKeys | undefined;
      if (p.protocol === 'one-round') {
        const facts = modulusFacts(ckks);
        const steps = new Set<number>();
        for (const plan of planSites(p, sites, facts)) for (const s of traceSteps(plan.layout as OneRoundLayout)) steps.add(s);
        galoisKeys = await ckks.generateGaloisKeys(secretKey, [...steps].sort((a, b) => a - b));
      }
      return new PrivateClientSession(ckks, p, sites, { secretKey, publicKey, galoisKeys });
    } catch (err) {
      ckks.dispose();
      throw err;
    }
  }

  /** The `open` frame: parameters and public material (never the secret key). */
  openFrame(): Uint8Array {
    const blobs = [jsonBlob({ params: this.params }), this.ckks.serialize(this.publicKey)];
    if (this.galoisKeys) blobs.push(this.ckks.serialize(this.galoisKeys));
    return encodeFrame({ type: FrameType.Open, session: 0, site: 0, seq: 0, blobs });
  }

  /** Rounds per site call for this protocol. */
  get roundsPerSite(): number {
    return this.params.protocol === 'two-round' ? 2 : 1;
  }

  /** One site's encrypted round trip(s): the site's outputs (outDim values) and their costs. */
  async runSite(siteId: number, x: ArrayLike<number>, transport: PrivateTransport): Promise<{ outputs: Float64Array; stats: SiteCallStats }> {
    const client = this.clients[siteId];
    if (!client) throw new RangeError(`site ${siteId} does not exist (this session has ${this.clients.length})`);
    const stats: SiteCallStats = { clientEncryptMs: 0, clientDecryptMs: 0, networkMs: 0, serverHeMs: 0, bytesUp: 0, bytesDown: 0, rounds: 0 };
    const send = async (type: FrameType, blob: Uint8Array, expect: FrameType): Promise<Frame> => {
      const seq = this.seq++;
      const frame = encodeFrame({ type, session: this.session, site: siteId, seq, blobs: [blob] });
      const { reply, wallMs } = await transport.request(frame, seq);
      if (reply.type === FrameType.Error) throw serverError(reply);
      if (reply.type !== expect || reply.site !== siteId) throw new Error(`private session: expected a ${FrameType[expect]} frame for site ${siteId}, got ${FrameType[reply.type]} for site ${reply.site}`);
      stats.bytesUp += frame.byteLength;
      stats.bytesDown += HEADER_AND_BLOBS(reply);
      stats.serverHeMs += reply.serverUs / 1000;
      stats.networkMs += Math.max(0, wallMs - reply.serverUs / 1000);
      stats.rounds++;
      return reply;
    };
    let t = performance.now();
    if (client instanceof TwoRoundClient) {
      const r1 = client.round1(x);
      stats.clientEncryptMs += performance.now() - t;
      const reply1 = await send(FrameType.Round1, r1.request, FrameType.Round1Reply);
      t = performance.now();
      const req2 = await client.round2(reply1.blobs);
      // decrypting the shares and re-encrypting them: counted as decrypt (what it mostly is)
      stats.clientDecryptMs += performance.now() - t;
      const reply2 = await send(FrameType.Round2, req2, FrameType.Round2Reply);
      t = performance.now();
      const outputs = await client.finish(reply2.blobs, r1.xShift);
      stats.clientDecryptMs += performance.now() - t;
      return { outputs, stats };
    }
    const r = client.request(x);
    stats.clientEncryptMs += performance.now() - t;
    const reply = await send(FrameType.OneRound, r.request, FrameType.OneRoundReply);
    t = performance.now();
    const outputs = await client.finish(reply.blobs, r.xShift);
    stats.clientDecryptMs += performance.now() - t;
    return { outputs, stats };
  }

  dispose(): void {
    this.secretKey.dispose();
    this.publicKey.dispose();
    this.galoisKeys?.dispose();
    this.ckks.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

function HEADER_AND_BLOBS(f: Frame): number {
  return 28 + f.blobs.reduce((s, b) => s + 4 + b.byteLength, 0);
}

/** The JS error of an error frame: code and message as the server sent them. */
export function serverError(f: Frame): Error {
  let body: { code?: string; message?: string } = {};
  try {
    body = JSON.parse(new TextDecoder().decode(f.blobs[0] ?? new Uint8Array()));
  } catch {
    /* a malformed error frame still becomes an error */
  }
  const err = new Error(`private server: ${body.message ?? 'error'}`);
  (err as NodeJS.ErrnoException).code = body.code ?? 'server_error';
  return err;
}
