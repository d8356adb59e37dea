/**
 * The admin listener: health, readiness and metrics without credentials; the
 * versioned `/v1` API behind the admin bearer token.
 */
import http from 'node:http';
import { appRoutes } from './apps.ts';
import { auditRoutes } from './audit.ts';
import { connectorRoutes } from './connectors.ts';
import type { AdminContext } from './context.ts';
import { credentialMatches } from './credential.ts';
import { AdminError, AdminErrorCode, toAdminError } from './errors.ts';
import { groupRoutes } from './groups.ts';
import { readJsonBody, sendError, sendJson, sendText } from './http.ts';
import { Router } from './router.ts';
import { tokenRoutes } from './tokens.ts';
import { userRoutes } from './users.ts';

/** Every `/v1` route. */
export function adminRouter(): Router {
  const router = new Router();
  groupRoutes(router);
  tokenRoutes(router);
  appRoutes(router);
  connectorRoutes(router);
  userRoutes(router);
  auditRoutes(router);
  return router;
}

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

function authorized(req: http.IncomingMessage, credential: string): boolean {
  const m = BEARER.exec(req.headers.authorization ?? '');
  return m !== null && credentialMatches(m[1]!, credential);
}

function unauthorized(): AdminError {
  return new AdminError(
    401,
    AdminErrorCode.unauthorized,
    'missing or wrong admin token: send "Authorization: Bearer <token>" with the token from admin.token in the relay\'s data dir',
    { headers: { 'www-authenticate': 'Bearer realm="drawbridge-admin"' } },
  );
}

async function probe(ctx: AdminContext, req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<boolean> {
  if (path !== '/healthz' && path !== '/readyz' && path !== '/metrics') return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendError(res, new AdminError(405, AdminErrorCode.methodNotAllowed, `${req.method} is not allowed on ${path}; use GET`, { headers: { allow: 'GET, HEAD' } }));
  } else if (path === '/healthz') {
    sendJson(res, 200, { status: 'ok' });
  } else if (path === '/readyz') {
    const ready = await ctx.ready().catch(() => false);
    sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready' });
  } else {
    sendText(res, 200, await ctx.metrics(), 'text/plain; version=0.0.4; charset=utf-8');
  }
  return true;
}

async function handle(ctx: AdminContext, router: Router, req: http.IncomingMessage, res: http.ServerResponse): Promise<number> {
  const url = new URL(req.url ?? '/', 'http://admin.invalid');
  if (await probe(ctx, req, res, url.pathname)) return res.statusCode;
  if (!authorized(req, ctx.adminToken)) {
    void ctx.audit({ type: 'admin.denied', actor: null, outcome: 'denied', address: req.socket.remoteAddress ?? null, details: { method: req.method, path: url.pathname } });
    throw unauthorized();
  }
  const { handler, params } = router.match(req.method ?? 'GET', url.pathname);
  const body = req.method === 'POST' || req.method === 'PATCH' ? await readJsonBody(req) : undefined;
  const answer = await handler({ ctx, params, query: url.searchParams, body });
  sendJson(res, answer.status, answer.body);
  return answer.status;
}

/**
 * The admin HTTP server (not yet listening). The caller listens on the
 * configured admin address (127.0.0.1:8081 by default).
 *
 * @example
 * const server = createAdminServer(ctx);
 * server.listen(config.admin.listen.port, config.admin.listen.host);
 */
export function createAdminServer(ctx: AdminContext): http.Server {
  const router = adminRouter();
  const server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => {
    const started = Date.now();
    handle(ctx, router, req, res)
      .catch((err: unknown) => {
        const answer = toAdminError(err);
        if (answer.status >= 500) ctx.logger.error({ err, method: req.method, path: req.url }, 'admin request failed');
        if (!res.headersSent) sendError(res, answer);
        else res.destroy();
        // Drain what the client still sends, so the answer is not lost to a reset.
        req.resume();
        return answer.status;
      })
      .then((status) => {
        const path = new URL(req.url ?? '/', 'http://admin.invalid').pathname;
        // Probes and scrapes come every few seconds: keep them out of the info log.
        const level = path === '/healthz' || path === '/readyz' || path === '/metrics' ? 'debug' : 'info';
        ctx.logger[level]({ method: req.method, path, status, ms: Date.now() - started }, 'admin request');
      }, () => undefined);
  });
  return server;
}
