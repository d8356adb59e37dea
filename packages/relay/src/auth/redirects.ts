/**
 * Where the browser may be sent after sign-in: only to a configured
 * application's host, on the scheme and port the relay serves (no open
 * redirect). Anything else is refused, never "fixed up".
 */
import type { IncomingMessage } from 'node:http';
import type { AppConfig } from '@drawbridge/shared';
import type { AppCatalog } from '../catalog.ts';
import { isSecure, portSuffix } from './http.ts';

const MAX_RETURN = 4096;
// eslint-disable-next-line no-control-regex -- controls and backslashes are what browsers reinterpret
const UNSAFE = /[\x00-\x1f\x7f\\]/;

/**
 * A path (with query) on the current host, or undefined. `//evil.example`,
 * `/\evil.example` and anything with a scheme are refused because browsers
 * read them as other hosts.
 */
export function safeReturnPath(value: string | null | undefined): string | undefined {
  if (!value || value.length > MAX_RETURN || UNSAFE.test(value)) return undefined;
  if (!value.startsWith('/') || value.startsWith('//')) return undefined;
  const base = 'http://relay.invalid';
  let url: URL;
  try {
    url = new URL(value, base);
  } catch {
    return undefined;
  }
  if (url.origin !== base) return undefined;
  return url.pathname + url.search;
}

export interface ReturnTarget {
  url: URL;
  app: AppConfig;
}

/**
 * An absolute URL on the host of a pre-authenticated application, or
 * undefined. `scheme` and `port` are those of the listener the request came in
 * on: apps are only ever served there.
 */
export function safeReturnUrl(value: string | null | undefined, catalog: AppCatalog, scheme: 'http' | 'https', port: string): ReturnTarget | undefined {
  if (!value || value.length > MAX_RETURN || UNSAFE.test(value)) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== `${scheme}:` || url.username !== '' || url.password !== '') return undefined;
  if (url.port !== port) return undefined;
  const app = catalog.findByHost(url.hostname.toLowerCase());
  if (!app || app.preauth === 'passthrough') return undefined;
  return { url, app };
}

/** `safeReturnUrl` on the scheme and port of the listener `req` came in on. */
export function returnTargetFor(req: IncomingMessage, value: string | null | undefined, catalog: AppCatalog): ReturnTarget | undefined {
  const secure = isSecure(req);
  const port = portSuffix(req).slice(1);
  return safeReturnUrl(value, catalog, secure ? 'https' : 'http', port === (secure ? '443' : '80') ? '' : port);
}
