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

/** Returns the target, or a reason the connector refuses it. */
export function resolveTarget(app: AppConfig, requestTarget: string): Target | { refused: string } {
  if (!requestTarget.startsWith('/')) return { refused: `request target must be a path, got ${JSON.stringify(requestTarget.slice(0, 60))}` };
  const url = new URL(app.internalUrl);
  const base = url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
  if (base !== '') {
    const pathOnly = requestTarget.split('?', 1)[0]!;
    if (/(^|\/)(\.|%2e){2}(\/|$)/i.test(pathOnly) || /%2f/i.test(pathOnly)) {
      return { refused: 'request path climbs out of the application base path' };
    }
  }
  return { url, path: base + requestTarget };
}
