/**
 * The adapter holder's half of a private session. Created from the client's `open` frame: the
 * parameters are checked (fields, then the 128-bit table by creating the CKKS context natively;
 * insecure sets only when the server allows them), the public material is deserialised into that
 * context (the fingerprint check refuses keys of another parameter set), every site's plaintexts
 * are encoded once, and the noise budgets are checked. The session holds no secret key and
 * never sees a plaintext activation: it keeps the adapter, the client's public material, and its
 * own one-time shares (uniform residues) between the two rounds of a site.
 */
import { Ckks } from '../engine/ckks/ckks';
import type { GaloisKeys, PublicKey } from '../engine/ckks/handles';
import type { OneRoundLayout, TwoRoundLayout } from './layout';
import { OneRoundServer } from './one-round';
import { checkParams, modulusFacts, planSites, type PrivateParams, type SitePlan } from './params';
import { sitePublic, type SitePrivate } from './sites';
import { TwoRoundServer, type ServerShare } from './two-round';
import { FrameType, parseJsonBlob, type Frame, WireError } from './wire';

export class PrivateRequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface PrivateSessionLimits {
  /** Largest public key / Galois keys blob accepted at open. */
  maxKeyBytes: number;
  /** Whether parameters above the 128-bit bound (or floodBits 0) may be used at all. */
  allowInsecure: boolean;
}

export class PrivateServerSession {
  readonly plans: SitePlan[];
  private readonly servers: Array<TwoRoundServer | OneRoundServer>;
  private readonly shares = new Map<number, ServerShare>();
  lastUsed = Date.now();
  /** HE work done for this session (for metrics: counts, never values). */
  readonly counters = { rounds: 0, products: 0, bytesIn: 0, bytesOut: 0 };
  private disposed = false;

  private constructor(
    readonly handle: number,
    readonly params: PrivateParams,
    readonly ckks: Ckks,
    private readonly publicKey: PublicKey,
    private readonly galoisKeys: GaloisKeys | undefined,
    sites: SitePrivate[],
  ) {
    this.plans = planSites(params, sites.map(sitePublic), modulusFacts(ckks));
    const moduli = ckks.info().moduli;
    this.servers = [];
    try {
      for (let i = 0; i < sites.length; i++) {
        const plan = this.plans[i];
        this.servers.push(
          params.protocol === 'two-round'
            ? new TwoRoundServer(ckks, publicKey, sites[i], plan.layout as TwoRoundLayout, plan.budget, moduli)
            : new OneRoundServer(ckks, publicKey, galoisKeys as GaloisKeys, sites[i], plan.layout as OneRoundLayout, plan.budget, moduli),
        );
      }
    } catch (err) {
      for (const s of this.servers) s.dispose();
      throw err;
    }
  }

  /**
   * Opens a session from an `open` frame. `sitesFor(params)` gives the server's sites for the
   * requested expert and placement (it throws for an unknown expert).
   */
  static open(
    handle: number,
    frame: Frame,
    sitesFor: (p: PrivateParams) => SitePrivate[],
    limits: PrivateSessionLimits,
    backend: 'cpu' | 'cuda',
    /** CUDA device of the server's HE (the engine's option; CUDA_VISIBLE_DEVICES applies). */
    device?: number,
  ): PrivateServerSession {
    const control = parseJsonBlob(frame.blobs[0], 'open');
    let params: PrivateParams;
    try {
      params = checkParams(control.params, 'params');
    } catch (err) {
      throw new PrivateRequestError('bad_params', (err as Error).message);
    }
    if (params.ckks.allowInsecure && !limits.allowInsecure) {
      throw new PrivateRequestError('insecure_refused', 'this server refuses insecure parameters (allowInsecure / floodBits 0); start it with --allow-insecure for research runs');
    }
    const want = params.protocol === 'one-round' ? 3 : 2;
    if (frame.blobs.length !== want) throw new WireError(`open: expected ${want} blobs (params, public key${want === 3 ? ', Galois keys' : ''}), got ${frame.blobs.length}`);
    for (let i = 1; i < frame.blobs.length; i++) {
      if (frame.blobs[i].byteLength > limits.maxKeyBytes) throw new PrivateRequestError('key_too_large', `open: key blob ${i} of ${frame.blobs[i].byteLength} bytes exceeds ${limits.maxKeyBytes}`);
    }
    const sites = sitesFor(params);
    let ckks: Ckks;
    try {
      ckks = Ckks.create({ ...params.ckks, backend, ...(device !== undefined ? { device } : {}) });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code === 'ERR_TENSAFE_INSECURE' ? 'insecure_params' : 'bad_params';
      throw new PrivateRequestError(code, `ckks parameters refused: ${(err as Error).message}`);
    }
    let pk: PublicKey | undefined;
    let gk: GaloisKeys | undefined;
    try {
      try {
        pk = ckks.deserializePublicKey(frame.blobs[1]);
        if (frame.blobs[2]) gk = ckks.deserializeGaloisKeys(frame.blobs[2]);
      } catch (err) {
        throw new PrivateRequestError('bad_keys', `the public material does not belong to these parameters: ${(err as Error).message}`);
      }
      try {
        return new PrivateServerSession(handle, params, ckks, pk, gk, sites);
      } catch (err) {
        throw new PrivateRequestError('bad_params', (err as Error).message);
      }
    } catch (err) {
      gk?.dispose();
      pk?.dispose();
      ckks.dispose();
      throw err;
    }
  }

  /**
   * Answers one round frame (the caller has parsed and bounded it). The HE work runs off the JS
   * thread; the caller answers a connection's frames in order, so a session has one answer in
   * flight at a time.
   */
  async answer(frame: Frame): Promise<{ type: FrameType; blobs: Uint8Array[]; serverUs: number }> {
    if (this.disposed) throw new PrivateRequestError('session_closed', 'the session is closed');
    this.lastUsed = Date.now();
    const server = this.servers[frame.site];
    if (!server) throw new PrivateRequestError('bad_site', `site ${frame.site} does not exist (the session has ${this.servers.length})`);
    if (frame.blobs.length !== 1) throw new WireError(`a round frame carries exactly one ciphertext, got ${frame.blobs.length}`);
    const t0 = performance.now();
    let type: FrameType;
    let blobs: Uint8Array[];
    if (frame.type === FrameType.Round1 && server instanceof TwoRoundServer) {
      const { replies, share } = await server.round1(frame.blobs[0]);
      // One share per site at a time: a new round 1 replaces an unused one.
      this.shares.set(frame.site, share);
      type = FrameType.Round1Reply;
      blobs = replies;
      this.counters.products += server.layout.products1;
    } else if (frame.type === FrameType.Round2 && server instanceof TwoRoundServer) {
      const share = this.shares.get(frame.site);
      if (!share) throw new PrivateRequestError('no_round1', `round 2 of site ${frame.site} without a round 1 (each share answers one round 2 only)`);
      // Consumed before use: a share answering two round-2 requests would give B applied to a
      // difference the client chose.
      this.shares.delete(frame.site);
      blobs = await server.round2(frame.blobs[0], share);
      type = FrameType.Round2Reply;
      this.counters.products += server.layout.products2;
    } else if (frame.type === FrameType.OneRound && server instanceof OneRoundServer) {
      blobs = await server.answer(frame.blobs[0]);
      type = FrameType.OneRoundReply;
      this.counters.products += 1 + server.layout.products2;
    } else {
      throw new PrivateRequestError('bad_round', `a ${FrameType[frame.type] ?? frame.type} frame does not belong to the ${this.params.protocol} protocol`);
    }
    this.counters.rounds++;
    this.counters.bytesIn += frame.blobs[0].byteLength;
    this.counters.bytesOut += blobs.reduce((s, b) => s + b.byteLength, 0);
    return { type, blobs, serverUs: (performance.now() - t0) * 1000 };
  }

  /** Bytes of state this session holds besides the adapter (shares), for the curious-server tests. */
  retainedShares(): ReadonlyMap<number, ServerShare> {
    return this.shares;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of this.servers) s.dispose();
    this.shares.clear();
    this.galoisKeys?.dispose();
    this.publicKey.dispose();
    this.ckks.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}
