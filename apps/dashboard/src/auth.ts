/**
 * Who may see the dashboard. Without a token it listens on loopback only
 * (checkBind) and refuses requests whose Host is not a loopback name, so a
 * web page elsewhere cannot reach it through DNS rebinding. With MR_TOKEN,
 * every page and API route needs the token: as a bearer header (scripts), or
 * as the session cookie that POST /login sets after checking it (browsers).
 * The cookie holds an HMAC of the token, never the token; it is HttpOnly and
 * SameSite=Strict, so other sites' pages cannot use it. Requests that change
 * something (POST, DELETE) must also come from the dashboard's own origin.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ERR_FORBIDDEN_ORIGIN, ERR_UNAUTHORIZED } from './errors.ts';

export const COOKIE = 'mr_dashboard';

export class Gate {
  readonly #token: string | undefined;
  readonly #session: string | undefined;

  constructor(token: string | undefined) {
    this.#token = token || undefined;
    this.#session = this.#token ? createHmac('sha256', this.#token).update('mr-dashboard-session-v1').digest('base64url') : undefined;
  }

  get required(): boolean {
    return this.#token !== undefined;
  }

  tokenMatches(candidate: string): boolean {
    if (!this.#token) return true;
    const a = Buffer.from(candidate);
    const b = Buffer.from(this.#token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** The Set-Cookie value after a good login. */
  sessionCookie(): string {
    return `${COOKIE}=${this.#session ?? ''}; HttpOnly; SameSite=Strict; Path=/`;
  }

  #signedIn(req: FastifyRequest): boolean {
    if (!this.#token) return true;
    const h = req.headers.authorization;
    if (h?.startsWith('Bearer ') && this.tokenMatches(h.slice(7))) return true;
    const c = cookie(req.headers.cookie, COOKIE);
    if (!c || !this.#session) return false;
    const a = Buffer.from(c);
    const b = Buffer.from(this.#session);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** onRequest hook of the page and API routes. */
  check = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!this.#token && !loopbackHost(req.headers.host)) throw ERR_FORBIDDEN_ORIGIN(`Host "${String(req.headers.host).slice(0, 100)}" is not a loopback address (the dashboard has no token)`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${req.headers.host}` && origin !== `https://${req.headers.host}`) throw ERR_FORBIDDEN_ORIGIN(`cross-origin ${req.method} from ${origin.slice(0, 100)}`);
    }
    if (this.#signedIn(req)) return;
    // A person opening a page is sent to the sign-in form; scripts get a 401.
    if (req.method === 'GET' && (req.headers.accept ?? '').includes('text/html')) {
      await reply.redirect('/login', 303);
      return;
    }
    throw ERR_UNAUTHORIZED();
  };
}

function loopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0];
  return name === '127.0.0.1' || name === 'localhost' || name === '[::1]';
}

function cookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}
