/**
 * The server side of the private (client-key) mode: the experts (PEFT adapters) cut into sites and
 * quantised once per (expert, placement), and the live sessions with their bounds: at most
 * `maxSessions` at once, each expiring after `idleMs` without a frame, freed on close. The base
 * model is not needed here: the client runs it.
 */
import { resolveDevice } from '../engine/info';
import type { ExpertSet } from '../pipeline/experts';
import type { PrivateParams } from '../private/params';
import { defaultCkksParams, DEFAULT_FLOOD_BITS, PLACEMENTS, PROTOCOLS } from '../private/params';
import { adapterSites, sitePublic, type PlacementName, type SitePrivate, type SitePublic } from '../private/sites';
import { PrivateRequestError, PrivateServerSession, type PrivateSessionLimits } from '../private/server-session';
import type { Frame } from '../private/wire';

export interface PrivateEngineOptions {
  experts: ExpertSet;
  /** The base model's hidden size (the final-hidden pair is d x d). */
  hiddenSize: number;
  /** Where the server's HE runs. */
  backend: 'cpu' | 'cuda';
  /** CUDA device index for the server's HE (two GPUs: the client on one, the server on the other). */
  device?: number;
  maxSessions?: number;
  idleMs?: number;
  maxKeyBytes?: number;
  allowInsecure?: boolean;
}

export class PrivateEngine {
  private readonly sites = new Map<string, SitePrivate[]>();
  private readonly sessions = new Map<number, PrivateServerSession>();
  private readonly owners = new Map<number, string>();
  private nextHandle = 1;
  private sweeper?: NodeJS.Timeout;
  readonly limits: PrivateSessionLimits & { maxSessions: number; idleMs: number };
  /** Totals for /metrics (counts and bytes only). */
  readonly totals = { sessionsOpened: 0, sessionsExpired: 0, rounds: 0, bytesIn: 0, bytesOut: 0, errors: 0 };

  constructor(readonly options: PrivateEngineOptions) {
    // Refuse a device the backend cannot use at start, not at the first client's open.
    if (options.device !== undefined) resolveDevice(options.backend, options.device, 'device');
    this.limits = {
      maxSessions: options.maxSessions ?? 8,
      idleMs: options.idleMs ?? 120_000,
      maxKeyBytes: options.maxKeyBytes ?? 256 * 1024 * 1024,
      allowInsecure: options.allowInsecure ?? false,
    };
    this.sweeper = setInterval(() => this.expire(), Math.min(10_000, this.limits.idleMs));
    this.sweeper.unref();
  }

  /** The sites of an expert for a placement (quantised once). */
  sitesOf(expert: string, placement: PlacementName): SitePrivate[] {
    if (!PLACEMENTS.includes(placement)) throw new PrivateRequestError('bad_params', `placement must be one of ${PLACEMENTS.join(', ')}`);
    const key = `${expert}\u0000${placement}`;
    let s = this.sites.get(key);
    if (!s) {
      let adapter;
      try {
        adapter = this.options.experts.get(expert);
      } catch (err) {
        throw new PrivateRequestError('unknown_expert', (err as Error).message);
      }
      try {
        s = adapterSites(adapter, placement, this.options.hiddenSize);
      } catch (err) {
        throw new PrivateRequestError('bad_params', (err as Error).message);
      }
      this.sites.set(key, s);
    }
    return s;
  }

  /** What a client needs to choose parameters: the public facts of the sites and the defaults. */
  describe(expert: string, placement: PlacementName): Record<string, unknown> {
    const sites: SitePublic[] = this.sitesOf(expert, placement).map(sitePublic);
    return {
      expert,
      placement,
      experts: this.options.experts.names(),
      protocols: PROTOCOLS,
      sites,
      defaults: Object.fromEntries(PROTOCOLS.map((p) => [p, { ckks: defaultCkksParams(p, sites), floodBits: DEFAULT_FLOOD_BITS }])),
      limits: { maxSessions: this.limits.maxSessions, idleMs: this.limits.idleMs, maxKeyBytes: this.limits.maxKeyBytes, allowInsecure: this.limits.allowInsecure },
      backend: this.options.backend,
    };
  }

  open(frame: Frame, owner: string): PrivateServerSession {
    this.expire();
    if (this.sessions.size >= this.limits.maxSessions) {
      throw new PrivateRequestError('too_many_sessions', `the server holds ${this.sessions.size} private sessions, its limit; close one or retry later`);
    }
    const handle = this.nextHandle++;
    const session = PrivateServerSession.open(handle, frame, (p: PrivateParams) => this.sitesOf(p.expert, p.placement), this.limits, this.options.backend, this.options.device);
    this.sessions.set(handle, session);
    this.owners.set(handle, owner);
    this.totals.sessionsOpened++;
    return session;
  }

  /** The session of a handle, if it belongs to `owner` (a connection) and has not expired. */
  get(handle: number, owner: string): PrivateServerSession {
    const s = this.sessions.get(handle);
    if (!s || this.owners.get(handle) !== owner) {
      throw new PrivateRequestError('unknown_session', `private session ${handle} does not exist on this connection (expired after ${this.limits.idleMs} ms idle, closed, or never opened)`);
    }
    return s;
  }

  close(handle: number): void {
    const s = this.sessions.get(handle);
    if (!s) return;
    this.sessions.delete(handle);
    this.owners.delete(handle);
    this.totals.rounds += s.counters.rounds;
    this.totals.bytesIn += s.counters.bytesIn;
    this.totals.bytesOut += s.counters.bytesOut;
    s.dispose();
  }

  /** Closes every session of a connection (it went away). */
  closeOwner(owner: string): void {
    for (const [h, o] of [...this.owners]) if (o === owner) this.close(h);
  }

  private expire(): void {
    const now = Date.now();
    for (const [h, s] of [...this.sessions]) {
      if (now - s.lastUsed > this.limits.idleMs) {
        this.close(h);
        this.totals.sessionsExpired++;
      }
    }
  }

  stats(): { sessions: number } & PrivateEngine['totals'] {
    return { sessions: this.sessions.size, ...this.totals };
  }

  dispose(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    for (const h of [...this.sessions.keys()]) this.close(h);
  }
}
