/**
 * Small HTTP helpers for the pages and redirects the relay answers itself:
 * cookies (RFC 6265), where a request came from (Fetch Metadata), form bodies.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { clientInfo } from '../proxy/client-info.ts';
import { RELAY_COOKIE_PREFIX, REQUEST_ID_HEADER } from '../proxy/headers.ts';

/** Every cookie of the relay starts with this (after an optional `__Host-`/`__Secure-` prefix); proxy/headers.ts strips them. */
export const COOKIE_PREFIX = RELAY_COOKIE_PREFIX;
/** The prefix under which the relay answers on every host. */
export const RELAY_PATH = '/.well-known/drawbridge/';

/** Whether the user reached us over HTTPS (directly, or via a trusted load balancer). */
export function isSecure(req: IncomingMessage): boolean {
  return clientInfo(req).proto === 'https';
}

/** `:8080` when the Host header carries a port, else ''. */
export function portSuffix(req: IncomingMessage): string {
  const host = req.headers.host ?? '';
  const m = /:(\d+)$/.exec(host.startsWith('[') ? host.slice(host.indexOf(']')) : host);
  return m ? `:${m[1]}` : '';
}

/** `https://host:port` of `host` as reached through this listener (same scheme and port as the request). */
export function originFor(req: IncomingMessage, host: string): string {
  return `${isSecure(req) ? 'https' : 'http'}://${host}${portSuffix(req)}`;
}

export interface CookieOptions {
  secure: boolean;
  /** `/` unless the cookie is only for the relay's own paths. */
  path?: string;
  /** Seconds; 0 deletes the cookie. Absent: a browser-session cookie. */
  maxAge?: number;
}

/**
 * The name a cookie gets on the wire: over HTTPS `__Host-` for path `/`
 * (host-only, Secure, enforced by the browser), `__Secure-` otherwise.
 */
export function cookieName(base: string, opts: { secure: boolean; path?: string }): string {
  if (!opts.secure) return COOKIE_PREFIX + base;
  return `${(opts.path ?? '/') === '/' ? '__Host-' : '__Secure-'}${COOKIE_PREFIX}${base}`;
}

/** A host-only, HttpOnly, SameSite=Lax Set-Cookie value (never a Domain attribute). */
export function serializeCookie(base: string, value: string, opts: CookieOptions): string {
  const path = opts.path ?? '/';
  let out = `${cookieName(base, opts)}=${value}; Path=${path}; HttpOnly; SameSite=Lax`;
  if (opts.secure) out += '; Secure';
  if (opts.maxAge !== undefined) out += `; Max-Age=${Math.max(0, Math.floor(opts.maxAge))}`;
  return out;
}

/**
 * The value of the first cookie called `name` in a Cookie header: pairs are
 * separated by `;`, names and values trimmed, a pair without `=` skipped, and
 * one pair of double quotes around a value removed. It scans for the one name
 * rather than parsing every pair: a pre-authenticated request reads its
 * session cookie on every request.
 */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header || name === '') return undefined;
  for (let start = 0; start < header.length; ) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq >= 0 && eq < end && header.slice(start, eq).trim() === name) {
      const value = header.slice(eq + 1, end).trim();
      return value.startsWith('"') && value.endsWith('"') && value.length >= 2 ? value.slice(1, -1) : value;
    }
    start = end + 1;
  }
  return undefined;
}

export function readCookie(req: IncomingMessage, base: string, opts: { secure: boolean; path?: string }): string | undefined {
  return cookieValue(req.headers.cookie, cookieName(base, opts));
}

/** Headers every relay page carries: never cached, never framed, no referrer leaks (handoff URLs). */
const PAGE_HEADERS = {
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  // No form-action: Chromium applies it to the redirects after a post, and a central sign-in
  // redirects to app hosts. The pages carry no script and escape every value.
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
};

export interface Answer {
  status: number;
  /** Set-Cookie values. */
  cookies?: string[];
  headers?: Record<string, string>;
}

export function redirect(res: ServerResponse, location: string, requestId: string, cookies: string[] = []): void {
  if (res.headersSent) return;
  res.writeHead(302, { ...PAGE_HEADERS, location, 'content-length': 0, [REQUEST_ID_HEADER]: requestId, ...(cookies.length ? { 'set-cookie': cookies } : {}) });
  res.end();
}

export function sendHtml(res: ServerResponse, html: string, requestId: string, answer: Answer): void {
  if (res.headersSent) return;
  res.writeHead(answer.status, {
    ...PAGE_HEADERS,
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    [REQUEST_ID_HEADER]: requestId,
    ...answer.headers,
    ...(answer.cookies?.length ? { 'set-cookie': answer.cookies } : {}),
  });
  res.end(res.req.method === 'HEAD' ? undefined : html);
}

export function sendJson(res: ServerResponse, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'access-control-allow-origin': '*', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

/** Reads an `application/x-www-form-urlencoded` body of at most `limit` bytes; undefined when larger or not a form. */
export async function readForm(req: IncomingMessage, limit = 8 * 1024): Promise<URLSearchParams | undefined> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    req.resume();
    return undefined;
  }
  // No body announced: the listener hands such requests over already ended, without an 'end' to come.
  if (req.readableEnded) return new URLSearchParams();
  // Events rather than for-await: leaving a for-await early destroys the
  // request, and with it the socket the answer must go out on.
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.resume();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(size > limit ? undefined : new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.once('error', () => resolve(undefined));
  });
}

/**
 * Whether the browser reports this request as the user's own action on this
 * origin, so that it may change state (sign-out). Fetch Metadata must say
 * that the request started on this very origin (`Sec-Fetch-Site:
 * same-origin`) or with the user (`none`: the address bar, a bookmark) and,
 * except for a POST (a form or a script of the page itself, not a no-cors
 * ping or beacon), that it is a
 * top-level navigation (`Sec-Fetch-Mode: navigate`, `Sec-Fetch-Dest:
 * document`, each when sent). Not the user's own: another site's link or
 * form (`cross-site`); another host of the same site (`same-site`), which is
 * every other app of a domain, passthrough apps and apps with user content
 * included; a sub-resource of a page here (an image, a frame, a fetch); a
 * prefetch or prerender (`Sec-Purpose`), which the browser starts before the
 * user clicks, if ever. A browser that sends no Fetch Metadata at all (older
 * ones; browsers send it over HTTPS and to localhost) cannot be told apart:
 * true.
 *
 * @example
 * if (req.method === 'HEAD' || !userStarted(req)) return askFirst(req, res);
 */
export function userStarted(req: IncomingMessage): boolean {
  const h = req.headers;
  if (h['sec-purpose'] !== undefined || h.purpose !== undefined) return false;
  const site = h['sec-fetch-site'];
  const mode = h['sec-fetch-mode'];
  const dest = h['sec-fetch-dest'];
  if (site === undefined && mode === undefined && dest === undefined) return true;
  if (site !== 'same-origin' && site !== 'none') return false;
  // A form or a script of the page itself; not a no-cors POST (`<a ping>`, a beacon), which user content can send on any click.
  if (req.method === 'POST') return mode !== 'no-cors';
  return (mode === undefined || mode === 'navigate') && (dest === undefined || dest === 'document');
}

/** Whether a browser navigates here (a redirect to sign-in helps) rather than a script or an API client. */
export function isNavigation(req: IncomingMessage): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const mode = req.headers['sec-fetch-mode'];
  return mode === undefined || mode === 'navigate';
}
