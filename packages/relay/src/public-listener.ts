/**
 * The listener users reach. Routes by Host to an application, answers
 * `/robots.txt`, asks the access gate, and hands the request to the proxy.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { BlockList } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { AccessGate } from './access.ts';
import type { AppCatalog } from './catalog.ts';
import { resolveClient } from './proxy/client-info.ts';
import { routingHost } from './proxy/headers.ts';
import { type ExchangeContext, proxyHttp } from './proxy/http-proxy.ts';
import { Pages, sendErrorPage } from './proxy/pages.ts';
import { proxyUpgrade, rejectUpgrade } from './proxy/upgrade-proxy.ts';

export interface PublicListenerOptions {
  tls?: { cert: string; key: string } | undefined;
  catalog: AppCatalog;
  gate: AccessGate;
  exchange: ExchangeContext;
  /** Largest request head accepted from users, in bytes. */
  maxHeaderSize: number;
  /** Time allowed for a client to send its request head (slowloris guard). */
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  logger: Logger;
  /** Load balancers whose X-Forwarded-For/-Proto are believed (public.trustedProxies). */
  trustedProxies?: BlockList | undefined;
  /** Whether a request was forwarded by a peer relay of this deployment (checked proof). */
  isPeerForward?: ((req: IncomingMessage) => boolean) | undefined;
  /** Requests for paths under `/.well-known/drawbridge/` and sign-in pages, answered by the relay itself. */
  relayRoutes?: (req: IncomingMessage, res: ServerResponse, requestId: string) => boolean;
}

const ROBOTS = 'User-agent: *\nDisallow: /\n';

export function createPublicServer(opts: PublicListenerOptions): http.Server {
  const serverOpts: http.ServerOptions = {
    maxHeaderSize: opts.maxHeaderSize,
    // Bodies are streamed and bounded per app; a whole-request timer would cut
    // long uploads and downloads, so only the head is timed.
    requestTimeout: 0,
    headersTimeout: opts.headersTimeoutMs,
    keepAliveTimeout: opts.keepAliveTimeoutMs,
    noDelay: true,
    // A request without Content-Length or Transfer-Encoding (a GET, almost
    // always) starts with its body stream already ended: Node skips ending it,
    // and draining it after the response, for every such request. 1.3–3 µs
    // of a bare server's 14–18 µs per request (docs/performance.md, item 31).
    // It never emits 'data', 'end' or 'close' then, and is `destroyed` from
    // the start: whoever reads a body checks readableEnded first, and a client
    // that goes away shows as the response's 'close', never the request's.
    optimizeEmptyRequests: true,
  };
  /** Who sent the request: a peer relay's request keeps the id the user's error page and logs already carry. */
  const arrival = (req: IncomingMessage): { requestId: string; proto: 'http' | 'https' } => {
    const fromPeer = opts.isPeerForward?.(req) ?? false;
    const forwardedId = req.headers['x-drawbridge-request-id'];
    const requestId = fromPeer && typeof forwardedId === 'string' && /^[\w-]{1,64}$/.test(forwardedId) ? forwardedId : randomUUID();
    return { requestId, proto: resolveClient(req, opts.trustedProxies, fromPeer).proto };
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const { requestId, proto } = arrival(req);
    const host = routingHost(req.headers.host);
    if (!host) {
      sendErrorPage(res, Pages.badHost(), requestId);
      return;
    }
    if (opts.relayRoutes?.(req, res, requestId)) return;
    const app = opts.catalog.findByHost(host);
    if (!app) {
      sendErrorPage(res, Pages.unknownHost(host), requestId);
      return;
    }
    if (app.denyRobots && (req.url === '/robots.txt' || req.url?.startsWith('/robots.txt?'))) {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': ROBOTS.length, 'cache-control': 'max-age=3600' });
      res.end(req.method === 'HEAD' ? undefined : ROBOTS);
      return;
    }
    const identity = opts.gate.check(app, req, res, requestId);
    if (identity instanceof Promise) {
      identity.then(
        (id) => {
          if (id) proxyHttp(opts.exchange, app, req, res, requestId, proto, id);
        },
        (err: unknown) => {
          opts.logger.error({ err, requestId }, 'access check failed');
          sendErrorPage(res, Pages.upstream(500, 'ERR_ACCESS_CHECK', 'The relay could not check access to this application. Try again.'), requestId);
        },
      );
    } else if (identity) proxyHttp(opts.exchange, app, req, res, requestId, proto, identity);
  };
  const server = opts.tls ? https.createServer({ ...serverOpts, cert: opts.tls.cert, key: opts.tls.key }, onRequest) : http.createServer(serverOpts, onRequest);

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const { requestId, proto } = arrival(req);
    const host = routingHost(req.headers.host);
    const app = host ? opts.catalog.findByHost(host) : undefined;
    if (!app) {
      rejectUpgrade(socket, host ? Pages.unknownHost(host) : Pages.badHost(), requestId);
      return;
    }
    Promise.resolve(opts.gate.checkUpgrade(app, req, socket, requestId)).then(
      (id) => {
        if (id) proxyUpgrade(opts.exchange, app, req, socket, head, requestId, proto, id);
      },
      (err: unknown) => {
        opts.logger.error({ err, requestId }, 'access check failed');
        rejectUpgrade(socket, Pages.upstream(500, 'ERR_ACCESS_CHECK', 'The relay could not check access to this application.'), requestId);
      },
    );
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable) return;
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const reason = status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\nx-drawbridge-error: ${status === 431 ? 'ERR_REQUEST_HEAD_TOO_LARGE' : 'ERR_BAD_REQUEST'}\r\n\r\n`);
  });
  return server;
}
