/**
 * Who may talk to the server: checks run on every HTTP request and every WebSocket upgrade
 * before any body or frame is read (PROTOCOL.md, "Who may connect").
 *
 *  - Host: the request's Host must be a loopback name (localhost, *.localhost), an IP literal,
 *    or a configured name (`--allow-host`). A DNS-rebinding page reaches the port under its own
 *    domain name, so its Host is that name and is refused; an IP literal cannot be rebound.
 *  - Origin: a browser's request carries Origin (always for WebSockets and POSTs); it must be
 *    the server's own origin (same host and port as Host) or a configured one
 *    (`--allow-origin`). `Origin: null` (sandboxed frames, file://) is refused. Without Origin,
 *    `Sec-Fetch-Site: cross-site | same-site` (a cross-site `<img>` or no-cors GET) is refused
 *    too. Clients that are not browsers send neither and pass.
 *  - Token: when the server has one (`--token` / TENSAFE_TOKEN, required for non-loopback
 *    binds), requests must carry `Authorization: Bearer <token>`, or, from a browser's
 *    WebSocket (which cannot set headers), the subprotocol `tensafe.bearer.<base64url(token)>`
 *    next to `tensafe`. Compared in constant time (SHA-256 digests, timingSafeEqual). The
 *    health probe and the page's static files need neither token nor Origin (they carry no data
 *    and change nothing; a link from another site opens the page), only the Host check.
 *
 * Each check throws a RequestError (400 / 401 / 403) that says what was refused and how to fix it;
 * `refuseUpgrade` answers a refused WebSocket upgrade on the raw socket.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { errorBody, RequestError } from './errors';

export interface AccessPolicy {
  /** Extra host names accepted in Host (lower case, no port), besides loopback names and IP literals. */
  allowedHosts: string[];
  /** Extra origins accepted (`scheme://host[:port]`, lower case), besides the server's own. */
  allowedOrigins: string[];
  /** Bearer token required on requests; undefined = none. */
  token?: string;
}

/** The subprotocol a WebSocket client offers next to its token (and that the server selects). */
export const WS_PROTOCOL = 'tensafe';
const WS_TOKEN_PREFIX = 'tensafe.bearer.';

export function accessPolicy(options: { allowedHosts?: string[]; allowedOrigins?: string[]; token?: string } = {}): AccessPolicy {
  if (options.token !== undefined && (typeof options.token !== 'string' || options.token.length < 16)) {
    throw new RangeError('option \'token\' must be a string of at least 16 characters (use a random one, e.g. `openssl rand -hex 24`)');
  }
  return {
    allowedHosts: (options.allowedHosts ?? []).map((h) => h.toLowerCase()),
    allowedOrigins: (options.allowedOrigins ?? []).map((o) => o.toLowerCase().replace(/\/$/, '')),
    token: options.token,
  };
}

/** True for addresses and names that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::ffff:127.0.0.1';
}

/** Host header -> host name without port (IPv6 brackets kept off). */
function hostName(hostHeader: string): string {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']'));
  const colon = h.lastIndexOf(':');
  return colon >= 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h;
}

export function checkHost(req: IncomingMessage, policy: AccessPolicy): void {
  const header = req.headers.host;
  if (!header) throw new RequestError('the Host header is required', { status: 400, code: 'bad_host', field: 'Host' });
  const name = hostName(header);
  if (isLoopbackHost(name) || isIP(name) !== 0 || policy.allowedHosts.includes(name)) return;
  throw new RequestError(`Host ${JSON.stringify(header)} is not served here (allowed: loopback names, IP addresses${policy.allowedHosts.length ? `, ${policy.allowedHosts.join(', ')}` : ''}; add names with --allow-host)`, {
    status: 403,
    code: 'bad_host',
    field: 'Host',
  });
}

export function checkOrigin(req: IncomingMessage, policy: AccessPolicy): void {
  const origin = req.headers.origin;
  if (origin === undefined) {
    const site = req.headers['sec-fetch-site'];
    if (site === 'cross-site' || site === 'same-site') {
      throw new RequestError(`cross-site requests are refused (Sec-Fetch-Site: ${site})`, { status: 403, code: 'bad_origin', field: 'Origin' });
    }
    return; // not a browser, or a same-origin / user-initiated navigation
  }
  const o = origin.toLowerCase();
  if (policy.allowedOrigins.includes(o)) return;
  let parsed: URL | undefined;
  try {
    parsed = o === 'null' ? undefined : new URL(o);
  } catch {
    parsed = undefined;
  }
  // Same origin: the page was served by this server under the same host and port.
  if (parsed && (parsed.protocol === 'http:' || parsed.protocol === 'https:') && parsed.host === (req.headers.host ?? '').toLowerCase()) return;
  throw new RequestError(`Origin ${JSON.stringify(origin)} may not use this server (only its own pages${policy.allowedOrigins.length ? ` and ${policy.allowedOrigins.join(', ')}` : ''}; add origins with --allow-origin)`, {
    status: 403,
    code: 'bad_origin',
    field: 'Origin',
  });
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Constant-time comparison (hashing first makes the lengths equal). */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** The token a request presents: the Authorization bearer, else a `tensafe.bearer.*` subprotocol. */
export function presentedToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1] : '';
  }
  for (const p of (req.headers['sec-websocket-protocol'] ?? '').split(',')) {
    const t = p.trim();
    if (t.startsWith(WS_TOKEN_PREFIX)) {
      try {
        return Buffer.from(t.slice(WS_TOKEN_PREFIX.length), 'base64url').toString('utf8');
      } catch {
        return '';
      }
    }
  }
  return undefined;
}

export function checkToken(req: IncomingMessage, policy: AccessPolicy): void {
  if (policy.token === undefined) return;
  const given = presentedToken(req);
  if (given === undefined) {
    throw new RequestError('this server needs a token: send "Authorization: Bearer <token>" (WebSocket from a browser: the subprotocols "tensafe" and "tensafe.bearer.<base64url token>")', {
      status: 401,
      code: 'unauthorized',
    });
  }
  if (!sameSecret(given, policy.token)) throw new RequestError('wrong token', { status: 401, code: 'unauthorized' });
}

/**
 * Every check, in order: Host (rebinding), Origin (cross-site pages), then the token. A `public`
 * resource (the page's static files, the health probe: no data, no side effect) gets the Host
 * check only, so a link from another site still opens the page.
 */
export function checkAccess(req: IncomingMessage, policy: AccessPolicy, opts: { public?: boolean } = {}): void {
  checkHost(req, policy);
  if (opts.public) return;
  checkOrigin(req, policy);
  checkToken(req, policy);
}

/** ws `handleProtocols`: selects `tensafe` when offered (a token subprotocol is never echoed). */
export function selectProtocol(protocols: Set<string>): string | false {
  return protocols.has(WS_PROTOCOL) ? WS_PROTOCOL : false;
}

/** The subprotocols a client offers for `token` (what the page and SplitClient send). */
export function tokenProtocols(token: string): string[] {
  return [WS_PROTOCOL, WS_TOKEN_PREFIX + Buffer.from(token, 'utf8').toString('base64url')];
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' };

/** Answers a refused WebSocket upgrade with a JSON error and closes the raw socket. */
export function refuseUpgrade(socket: Duplex, err: unknown): void {
  const status = err instanceof RequestError ? err.status : 500;
  const body = JSON.stringify(errorBody(err));
  const extra = status === 401 ? 'WWW-Authenticate: Bearer\r\n' : '';
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  socket.once('finish', () => socket.destroy());
}
