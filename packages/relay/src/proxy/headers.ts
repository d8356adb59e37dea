/**
 * Header handling at the relay: what the internal application receives and
 * what the user gets back (RFC 9110 §7.6.1 for hop-by-hop fields).
 */
import { HOP_BY_HOP, type HeaderList } from '@drawbridge/shared';

export const REQUEST_ID_HEADER = 'x-drawbridge-request-id';

/** Every cookie of the relay is named so (after an optional `__Host-`/`__Secure-`); none ever reaches an app. */
export const RELAY_COOKIE_PREFIX = 'drawbridge_';

function isRelayCookie(name: string): boolean {
  const bare = name.startsWith('__Host-') ? name.slice(7) : name.startsWith('__Secure-') ? name.slice(9) : name;
  return bare.startsWith(RELAY_COOKIE_PREFIX);
}

/** The Cookie header without the relay's own cookies; undefined when nothing is left. */
export function stripRelayCookies(value: string): string | undefined {
  if (!value.includes(RELAY_COOKIE_PREFIX)) return value;
  const kept = value.split(';').filter((pair) => {
    const eq = pair.indexOf('=');
    return !isRelayCookie((eq < 0 ? pair : pair.slice(0, eq)).trim());
  });
  const out = kept.map((p) => p.trim()).filter((p) => p !== '').join('; ');
  return out === '' ? undefined : out;
}

/** Names listed in Connection headers, which are hop-by-hop too. */
export function connectionTokens(raw: string[]): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== 'connection') continue;
    for (const t of raw[i + 1]!.split(',')) {
      const name = t.trim().toLowerCase();
      if (name) out.add(name);
    }
  }
  return out;
}

export interface ForwardContext {
  clientAddress: string;
  proto: 'http' | 'https';
  /** Host as the user sent it (with port if any). */
  host: string;
  requestId: string;
  upgrade: boolean;
  /** Extra names to drop (SSO rule headers the connector will set). */
  strip?: ReadonlySet<string>;
}

/**
 * Builds the header list sent to the connector from Node's rawHeaders:
 * hop-by-hop fields dropped (Upgrade kept for upgrades), every client-sent
 * `X-Drawbridge-*` dropped, the relay's cookies taken out of Cookie,
 * X-Forwarded-* and the request id set.
 */
export function requestHeaders(raw: string[], ctx: ForwardContext): HeaderList {
  const listed = connectionTokens(raw);
  const out: HeaderList = [];
  const xff: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === 'x-forwarded-for') {
      xff.push(raw[i + 1]!);
      continue;
    }
    if (HOP_BY_HOP.has(lower) || listed.has(lower)) continue;
    if (lower === 'expect' || lower === 'x-forwarded-proto' || lower === 'x-forwarded-host' || lower === 'forwarded') continue;
    if (lower.startsWith('x-drawbridge-')) continue;
    if (ctx.strip?.has(lower)) continue;
    if (lower === 'cookie') {
      const cookie = stripRelayCookies(raw[i + 1]!);
      if (cookie !== undefined) out.push([lower, cookie]);
      continue;
    }
    out.push([lower, raw[i + 1]!]);
  }
  if (ctx.upgrade) {
    const upgrade = raw.findIndex((v, i) => i % 2 === 0 && v.toLowerCase() === 'upgrade');
    if (upgrade >= 0) {
      out.push(['connection', 'upgrade']);
      out.push(['upgrade', raw[upgrade + 1]!]);
    }
  }
  xff.push(ctx.clientAddress);
  out.push(['x-forwarded-for', xff.join(', ')]);
  out.push(['x-forwarded-proto', ctx.proto]);
  out.push(['x-forwarded-host', ctx.host]);
  out.push([REQUEST_ID_HEADER, ctx.requestId]);
  return out;
}

/** Response fields from the app, minus hop-by-hop ones, as a flat array for writeHead. */
export function responseHeaders(headers: HeaderList, upgrade: boolean): string[] {
  const listed = new Set<string>();
  for (const [name, value] of headers) {
    if (name.toLowerCase() === 'connection') for (const t of value.split(',')) listed.add(t.trim().toLowerCase());
  }
  const out: string[] = [];
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (upgrade && (lower === 'connection' || lower === 'upgrade')) {
      out.push(name, value);
      continue;
    }
    if (HOP_BY_HOP.has(lower) || listed.has(lower)) continue;
    out.push(name, value);
  }
  return out;
}

/** Lower-case host without port, or undefined when the Host header is unusable. */
export function routingHost(hostHeader: string | undefined): string | undefined {
  if (!hostHeader) return undefined;
  let host = hostHeader.trim().toLowerCase();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return undefined;
    return host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  if (colon >= 0) host = host.slice(0, colon);
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host || undefined;
}
