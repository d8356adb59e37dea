/**
 * One user request over HTTP: route it, wait for a tunnel connection with
 * capacity, stream the request body into a tunnel stream and the response back.
 * Backpressure both ways: a full tunnel window pauses the user's request, a
 * slow user's socket holds back the connector's credit.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type AppConfig, DrawbridgeError, ErrorCode, type HeaderList, type RequestHead, type ResponseHead, type Stream, type StreamError } from '@drawbridge/shared';
import { limitTurns } from '@drawbridge/shared/node';
import type { TunnelConnection, TunnelRegistry } from '../tunnel/registry.ts';
import { clientInfo, peerAddress } from './client-info.ts';
import { REQUEST_ID_HEADER, requestHeaders, responseHeaders } from './headers.ts';
import { Pages, sendErrorPage } from './pages.ts';
import { pageForStreamError } from './stream-errors.ts';

/** Who the user is, as far as the relay has established (issue: pre-authentication). */
export interface RequestIdentity {
  meta: HeaderList;
  /** Who the user is, for the access log (never secret). */
  user?: string;
  /** Header names the connector will set itself; client copies are dropped. */
  strip?: ReadonlySet<string>;
}

export interface ExchangeContext {
  registry: TunnelRegistry;
  /**
   * Several relays: sends the request to a peer relay that holds a tunnel of
   * the app's group, when none is connected here. Returns false when no peer
   * can take it (the request then waits in the local queue).
   */
  forward?: ((app: AppConfig, req: IncomingMessage, res: ServerResponse, requestId: string, proto: 'http' | 'https') => boolean) | undefined;
  /**
   * The same for protocol upgrades (WebSocket): the peer gets the handshake on
   * a connection of its own; `onStatus` hears its answer (101, or the refusal).
   */
  forwardUpgrade?: ((app: AppConfig, req: IncomingMessage, socket: Duplex, head: Buffer, requestId: string, proto: 'http' | 'https', onStatus: (status: number) => void) => boolean) | undefined;
  queueWaitMs: number;
  /** Extra time past the app's head timeout before the relay gives up on the connector. */
  headGraceMs: number;
  /** How long the rest of a request body that an early answer left unread is read and dropped before the connection closes. */
  unreadBodyLingerMs: number;
  onDone?(summary: ExchangeSummary): void;
}

export interface ExchangeSummary {
  requestId: string;
  app: AppConfig;
  status: number;
  error?: string;
  connectorId?: string;
  user?: string;
  bytesIn: number;
  bytesOut: number;
  startedAt: number;
}

/** The user's address (through trusted load balancers), for logs, audit and rate limits. */
export function clientAddress(req: IncomingMessage): string {
  return clientInfo(req).address;
}

/** Whether the request announces a body (chunked, or a non-zero Content-Length). */
export function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined) return true;
  return cl !== undefined && cl !== '0';
}

/**
 * The relay answered before the request body ended (413, 504, a failed
 * exchange). Pausing the request would leave the client blocked on a full
 * socket until the keep-alive timer reset it, and closing at once can reset
 * the connection before the client has read the answer. So the rest is read
 * and dropped, as nginx's lingering close does, for at most `lingerMs` after
 * the answer has gone out; then the connection is closed.
 */
function dropRestOfBody(req: IncomingMessage, res: ServerResponse, lingerMs: number): void {
  req.resume();
  const linger = (): void => {
    if (req.readableEnded) return;
    const socket = req.socket;
    const timer = setTimeout(() => socket.destroy(), lingerMs);
    // The socket outlives this request on a kept-alive connection: leave nothing on it.
    const stop = (): void => {
      clearTimeout(timer);
      req.off('end', stop);
      socket.off('close', stop);
    };
    req.once('end', stop);
    socket.once('close', stop);
  };
  // The answer may have gone out already (the app's, complete, before the body ended).
  if (res.writableFinished) linger();
  else res.once('finish', linger);
}

function trailerList(req: IncomingMessage): HeaderList {
  const out: HeaderList = [];
  const raw = req.rawTrailers;
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
  return out;
}

/** What travels to the connector in the REQUEST frame (see docs/protocol.md §5.2). */
export function requestHead(app: AppConfig, req: IncomingMessage, requestId: string, proto: 'http' | 'https', identity: RequestIdentity, upgrade: boolean): RequestHead {
  const host = req.headers.host ?? app.externalHost;
  return {
    method: req.method ?? 'GET',
    target: req.url ?? '/',
    app: app.id,
    requestId,
    headers: requestHeaders(req.rawHeaders, { clientAddress: peerAddress(req), proto, host, requestId, upgrade, ...(identity.strip ? { strip: identity.strip } : {}) }),
    meta: [['proto', proto], ['host', host], ['client', clientAddress(req)], ...identity.meta],
  };
}

/** Several relays: a request goes to a peer when no tunnel of its group is here, unless a peer already sent it (never twice). */
export function goesToPeer(ctx: ExchangeContext, app: AppConfig, req: IncomingMessage): boolean {
  return !clientInfo(req).fromPeer && !ctx.registry.serves(app.group);
}

/** Proxies one HTTP request; resolves when the exchange is over. */
export function proxyHttp(ctx: ExchangeContext, app: AppConfig, req: IncomingMessage, res: ServerResponse, requestId: string, proto: 'http' | 'https', identity: RequestIdentity): void {
  const summary: ExchangeSummary = { requestId, app, status: 0, bytesIn: 0, bytesOut: 0, startedAt: Date.now(), ...(identity.user ? { user: identity.user } : {}) };
  let totalTimer: NodeJS.Timeout | undefined;
  const finish = (status: number, error?: string): void => {
    clearTimeout(totalTimer);
    if (summary.status !== 0) return;
    summary.status = status;
    if (error) summary.error = error;
    ctx.onDone?.(summary);
  };
  // Every early answer goes through here, and so the rest of the request body is never left paused.
  const fail = (page: ReturnType<typeof Pages.upstream>): void => {
    finish(res.headersSent ? res.statusCode : page.status, page.code);
    if (!req.readableEnded) dropRestOfBody(req, res, ctx.unreadBodyLingerMs);
    sendErrorPage(res, page, requestId);
  };

  const limit = app.limits.maxRequestBodyBytes;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (limit > 0 && declared > limit) {
    fail(Pages.bodyTooLarge(limit));
    return;
  }

  const head = requestHead(app, req, requestId, proto, identity, false);
  const withBody = hasBody(req);
  const aborter = new AbortController();
  let stream: Stream | undefined;
  let retried = false;
  let headTimer: NodeJS.Timeout | undefined;
  const stopHeadTimer = (): void => {
    clearTimeout(headTimer);
    headTimer = undefined;
  };

  const onClientClose = (): void => {
    if (res.writableFinished) {
      // The app's answer went out whole before the upload ended: it did not wait
      // for the rest, which nobody will read now. Without this the stream would
      // hold its tunnel slot, and the client would block on a window that no
      // longer moves, until the connection went.
      if (stream && !stream.isClosed && !stream.localDone) {
        stream.reset(ErrorCode.CANCEL, 'answered before the request body ended');
        dropRestOfBody(req, res, ctx.unreadBodyLingerMs);
      }
      return;
    }
    // Nothing is waiting for a head any more: do not keep the exchange alive for the app's head timeout.
    stopHeadTimer();
    aborter.abort();
    if (stream && !stream.isClosed) stream.reset(ErrorCode.CANCEL, 'client went away');
    finish(499, 'ERR_CLIENT_GONE');
  };
  res.on('close', onClientClose);

  const open = (conn: TunnelConnection): void => {
    summary.connectorId = conn.connectorId;
    try {
      stream = conn.session.openStream(head, handler, { endStream: !withBody });
    } catch (err) {
      if (err instanceof DrawbridgeError && err.code === 'ERR_REQUEST_HEAD_TOO_LARGE') {
        fail(Pages.headTooLarge());
        return;
      }
      throw err;
    }
    headTimer = setTimeout(() => {
      headTimer = undefined;
      stream?.reset(ErrorCode.UPSTREAM_TIMEOUT, 'relay gave up waiting for the response head');
      fail(Pages.upstream(504, 'ERR_UPSTREAM_TIMEOUT', `${app.name} did not answer within ${Math.round(app.timeouts.headMs / 1000)} s.`));
    }, app.timeouts.headMs + ctx.headGraceMs);
    if (withBody) pumpBody(stream);
  };

  const pumpBody = (s: Stream): void => {
    let received = 0;
    s.handler.onWritable = () => req.resume();
    // A bulk upload gets a bounded share of each turn of the event loop (shared/node/turns.ts); a full window resumes it itself.
    const spent = limitTurns(req, () => !s.isClosed && s.queuedBytes === 0);
    req.on('data', (chunk: Buffer) => {
      // The exchange is over (answered early, reset): the rest is dropped (dropRestOfBody).
      if (s.isClosed) return;
      // The app's head timeout counts from the request's last byte: an upload
      // that is still moving is not a slow app (a stalled one still times out).
      headTimer?.refresh();
      received += chunk.length;
      summary.bytesIn = received;
      if (limit > 0 && received > limit) {
        stopHeadTimer();
        s.reset(ErrorCode.BODY_TOO_LARGE, `request body over ${limit} bytes`);
        fail(Pages.bodyTooLarge(limit));
        return;
      }
      if (!s.write(chunk)) req.pause();
      else spent(chunk.length);
    });
    req.on('end', () => {
      headTimer?.refresh();
      s.end(trailerList(req));
    });
  };

  // Response side: bytes written to the user return credit to the connector
  // only once the user's socket has taken them.
  let unconsumed = 0;
  const onDrain = (): void => {
    const n = unconsumed;
    unconsumed = 0;
    stream?.consume(n);
  };
  res.on('drain', onDrain);

  const handler = {
    onResponse(rh: ResponseHead, end: boolean): void {
      if (rh.status < 200) {
        if (rh.status === 103) res.writeEarlyHints(Object.fromEntries(rh.headers.filter(([n]) => n === 'link')));
        return;
      }
      stopHeadTimer();
      const headers = responseHeaders(rh.headers, false);
      headers.push(REQUEST_ID_HEADER, requestId);
      try {
        res.writeHead(rh.status, rh.reason || undefined, headers);
      } catch (err) {
        stream?.reset(ErrorCode.PROTOCOL_ERROR, 'response head not valid HTTP');
        fail(Pages.upstream(502, 'ERR_UPSTREAM_BAD_RESPONSE', `${app.name} sent a response the relay cannot forward (${(err as Error).message}).`));
        return;
      }
      if (end) {
        res.end();
        finish(rh.status);
      }
    },
    onData(chunk: Uint8Array): void {
      summary.bytesOut += chunk.length;
      if (res.write(chunk)) stream?.consume(chunk.length);
      else unconsumed += chunk.length;
    },
    onEnd(trailers: HeaderList | undefined): void {
      stopHeadTimer();
      if (!res.headersSent) {
        stream?.reset(ErrorCode.CANCEL, 'no response head');
        fail(Pages.upstream(502, 'ERR_UPSTREAM_BAD_RESPONSE', `${app.name} ended the stream without a response.`));
        return;
      }
      if (trailers && trailers.length > 0 && res.getHeader('content-length') === undefined) res.addTrailers(trailers);
      res.end();
      finish(res.statusCode);
    },
    onReset(err: StreamError): void {
      stopHeadTimer();
      if (aborter.signal.aborted) return;
      if (err.wireCode === ErrorCode.REFUSED_STREAM && !withBody && !retried && !res.headersSent) {
        // The connector never saw it (draining, full): safe to place elsewhere once.
        retried = true;
        stream = undefined;
        dispatch();
        return;
      }
      fail(pageForStreamError(err, app.name));
    },
    onWritable(): void {
      req.resume();
    },
  };

  const dispatch = (): void => {
    if (ctx.forward && goesToPeer(ctx, app, req) && ctx.forward(app, req, res, requestId, proto)) {
      // The peer runs the exchange, and its total timeout, from the same app configuration.
      clearTimeout(totalTimer);
      summary.connectorId = 'peer-relay';
      res.on('finish', () => finish(res.statusCode));
      return;
    }
    ctx.registry.acquire(app.group, open, aborter.signal).catch((err: unknown) => {
      if (aborter.signal.aborted) return;
      const code = err instanceof DrawbridgeError ? err.code : 'ERR_INTERNAL';
      const wait = Math.max(1, Math.round(ctx.queueWaitMs / 1000));
      if (code === 'ERR_NO_CONNECTOR') fail(Pages.noConnector(app.name, wait));
      else if (code === 'ERR_NO_CAPACITY' || code === 'ERR_QUEUE_FULL') fail(Pages.busy(app.name, wait));
      else fail(Pages.upstream(502, 'ERR_INTERNAL', `The relay failed to forward the request (${(err as Error).message}).`));
    });
  };

  // The whole exchange, queue wait included, within the app's total timeout:
  // a 504 while no response head has gone out, else the user's response is cut
  // short (a proxy cannot signal an error in a body it has started).
  const total = app.timeouts.totalMs;
  if (total > 0) {
    // finish() clears it: it fires only while the exchange is still open.
    totalTimer = setTimeout(() => {
      stopHeadTimer();
      aborter.abort();
      if (stream && !stream.isClosed) stream.reset(ErrorCode.UPSTREAM_TIMEOUT, `total timeout of ${total} ms`);
      fail(Pages.totalTimeout(app.name, total));
    }, total);
  }
  dispatch();
}
