/** Header handling at the connector, on the way to the internal application. */
import { type AppConfig, HOP_BY_HOP, type HeaderList } from '@drawbridge/shared';
import { internalUrl } from './target.ts';

/**
 * Flat [name, value, …] list for the upstream request. Hop-by-hop fields are
 * dropped again (the relay already did; the connector does not rely on it), and
 * Host is set as the app says.
 */
export function upstreamHeaders(app: AppConfig, headers: HeaderList, inject: HeaderList, upgrade: boolean): string[] {
  const out: string[] = [];
  const injected = new Set(inject.map(([n]) => n.toLowerCase()));
  let host: string | undefined;
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (lower === 'host') {
      host ??= value;
      continue;
    }
    if (injected.has(lower)) continue;
    if ((HOP_BY_HOP.has(lower) && !(upgrade && (lower === 'connection' || lower === 'upgrade'))) || lower === 'expect') continue;
    out.push(name, value);
  }
  for (const [name, value] of inject) out.push(name, value);
  out.push('host', app.hostHeader ?? host ?? app.externalHost);
  return out;
}

/** The value of a request meta entry the relay set (`proto`, `host`, `identity`, …). */
export function metaValue(meta: HeaderList, name: string): string | undefined {
  for (const [n, v] of meta) if (n === name) return v;
  return undefined;
}

/** Converts a raw flat header array (Buffers or strings) into a header list. */
export function rawToList(raw: ReadonlyArray<Buffer | string>): HeaderList {
  const out: HeaderList = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!.toString('latin1'), raw[i + 1]!.toString('latin1')]);
  return out;
}

/** Converts undici's header object into a header list, keeping repeated fields. */
export function objectToList(headers: Record<string, string | string[] | undefined>): HeaderList {
  const out: HeaderList = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.push([name, v]);
    else out.push([name, value]);
  }
  return out;
}

/** Rewrites a Location that points at the internal URL so it points at the external host. */
export function rewriteLocation(app: AppConfig, headers: HeaderList, externalOrigin: () => string): HeaderList {
  // Most responses have no Location: leave their list as it is.
  let i = headers.findIndex(([n]) => n.length === 8 && n.toLowerCase() === 'location');
  if (i < 0) return headers;
  const { origin: internalOrigin, base } = internalUrl(app);
  const out = headers.slice();
  for (; i < out.length; i++) {
    const [n, v] = out[i]!;
    if (n.toLowerCase() !== 'location' || !v.startsWith(internalOrigin)) continue;
    const rest = v.slice(internalOrigin.length);
    if (rest !== '' && !rest.startsWith('/') && !rest.startsWith('?')) continue;
    const path = base && rest.startsWith(base) ? rest.slice(base.length) || '/' : rest || '/';
    out[i] = [n, externalOrigin() + path];
  }
  return out;
}
