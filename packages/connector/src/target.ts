/**
 * The connector's check that a request goes where its configuration says, and
 * nowhere else: the origin always comes from the app's internal URL, and a
 * target may not climb out of the internal URL's base path.
 */
import type { AppConfig } from '@drawbridge/shared';

export interface Target {
  url: URL;
  /** Path and query to send. */
  path: string;
}

export interface InternalUrl {
  url: URL;
  origin: string;
  /** Path of the internal URL without its trailing slash ('' for the root). */
  base: string;
}

const parsed = new WeakMap<AppConfig, InternalUrl>();

/** The app's internal URL, parsed once per configuration object rather than on every request. */
export function internalUrl(app: AppConfig): InternalUrl {
  let p = parsed.get(app);
  if (!p) {
    const url = new URL(app.internalUrl);
    p = { url, origin: url.origin, base: url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname };
    parsed.set(app, p);
  }
  return p;
}

/** Returns the target, or a reason the connector refuses it. */
export function resolveTarget(app: AppConfig, requestTarget: string): Target | { refused: string } {
  if (!requestTarget.startsWith('/')) return { refused: `request target must be a path, got ${JSON.stringify(requestTarget.slice(0, 60))}` };
  const { url, base } = internalUrl(app);
  if (base !== '') {
    const pathOnly = requestTarget.split('?', 1)[0]!;
    if (/(^|\/)(\.|%2e){2}(\/|$)/i.test(pathOnly) || /%2f/i.test(pathOnly)) {
      return { refused: 'request path climbs out of the application base path' };
    }
  }
  return { url, path: base + requestTarget };
}
