/**
 * A tiny router: `METHOD /path/:param` patterns matched segment by segment.
 * A path that matches with another method answers 405 with `Allow`.
 */
import type { AdminContext } from './context.ts';
import { AdminError, AdminErrorCode } from './errors.ts';

export interface ApiRequest {
  ctx: AdminContext;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Parsed JSON body of POST/PATCH (an empty body is `{}`); `undefined` otherwise. */
  body: unknown;
}

export interface ApiResponse {
  status: number;
  body: unknown;
}

export type Handler = (req: ApiRequest) => Promise<ApiResponse>;

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

interface Route {
  method: Method;
  segments: string[];
  handler: Handler;
}

export interface Match {
  handler: Handler;
  params: Record<string, string>;
}

export class Router {
  private readonly routes: Route[] = [];

  add(method: Method, pattern: string, handler: Handler): this {
    this.routes.push({ method, segments: split(pattern), handler });
    return this;
  }

  /** The handler for this request, or an `AdminError` (404, 405). */
  match(method: string, pathname: string): Match {
    const parts = split(pathname);
    const allowed = new Set<string>();
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      if (route.method === method) return { handler: route.handler, params };
      allowed.add(route.method);
    }
    if (allowed.size > 0) {
      const allow = [...allowed].join(', ');
      throw new AdminError(405, AdminErrorCode.methodNotAllowed, `${method} is not allowed on ${pathname}; use ${allow}`, { headers: { allow } });
    }
    throw new AdminError(404, AdminErrorCode.routeNotFound, `no admin API endpoint ${pathname}; see docs/admin-api.md`);
  }
}

function split(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | null {
  if (pattern.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    const part = parts[i]!;
    if (p.startsWith(':')) {
      let value: string;
      try {
        value = decodeURIComponent(part);
      } catch {
        return null;
      }
      params[p.slice(1)] = value;
    } else if (p !== part) {
      return null;
    }
  }
  return params;
}
