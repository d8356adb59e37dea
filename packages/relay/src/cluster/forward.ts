/**
 * Forwarding a user request to the relay that holds a tunnel of the right
 * group. The forwarded request is the user's own (same method, target, Host,
 * cookies and body), plus a proof that it comes from a relay of this
 * deployment: an HMAC over the request line with the cluster secret from the
 * store. The receiving relay checks that proof, believes the forwarding
 * relay's X-Forwarded-For/-Proto, runs its own access checks and never
 * forwards the request again.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { type Duplex, pipeline } from 'node:stream';
import { type AppConfig, HOP_BY_HOP } from '@drawbridge/shared';
import type { Logger } from 'pino';
import { type Dispatcher, request } from 'undici';
import { peerAddress } from '../proxy/client-info.ts';
import { clientAddress, hasBody } from '../proxy/http-proxy.ts';
import { connectionTokens, REQUEST_ID_HEADER } from '../proxy/headers.ts';
import { Pages, sendErrorPage } from '../proxy/pages.ts';
import { rejectUpgrade, writeHead } from '../proxy/upgrade-proxy.ts';

export const FORWARD_HEADER = 'x-drawbridge-relay-forward';
const MAX_SKEW_MS = 60_000;

function mac(secret: string, nodeId: string, at: number, req: IncomingMessage): string {
  return createHmac('sha256', secret).update(`${nodeId}\n${at}\n${req.method ?? ''}\n${req.headers.host ?? ''}\n${req.url ?? ''}`).digest('hex');
}

/** The header value proving `req` is forwarded by relay `nodeId`. */
export function forwardProof(secret: string, nodeId: string, now: number, req: IncomingMessage): string {
  return `${nodeId}.${now}.${mac(secret, nodeId, now, req)}`;
}

/** True when `req` carries a valid, fresh proof from a relay of this deployment. */
export function isForwardedByPeer(secret: string | undefined, req: IncomingMessage, now: number): boolean {
  const value = req.headers[FORWARD_HEADER];
  if (!secret || typeof value !== 'string') return false;
  const [nodeId, at, digest] = value.split('.');
  if (!nodeId || !at || !digest || Math.abs(now - Number(at)) > MAX_SKEW_MS) return false;
  const expected = Buffer.from(mac(secret, nodeId, Number(at), req), 'hex');
  const given = Buffer.from(digest, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface ForwarderOptions {
  nodeId: string;
  secret: string;
  dispatcher: Dispatcher;
  logger: Logger;
  now(): number;
}

/**
 * The user's request headers as a peer relay must see them: hop-by-hop fields
 * dropped (except the upgrade handshake's own, for an upgrade), the user's
 * address appended to X-Forwarded-For, and the proof and request id added.
 */
function peerHeaders(opts: ForwarderOptions, req: IncomingMessage, requestId: string, proto: 'http' | 'https', upgrade: boolean): string[] {
  const headers: string[] = [];
  const raw = req.rawHeaders;
  const listed = connectionTokens(raw);
  const xff: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (lower === 'x-forwarded-for') xff.push(raw[i + 1]!);
    else if (!HOP_BY_HOP.has(lower) && !listed.has(lower) && lower !== 'x-forwarded-proto' && lower !== FORWARD_HEADER && lower !== 'expect') headers.push(raw[i]!, raw[i + 1]!);
  }
  xff.push(peerAddress(req));
  headers.push('x-forwarded-for', xff.join(', '), 'x-forwarded-proto', proto, FORWARD_HEADER, forwardProof(opts.secret, opts.nodeId, opts.now(), req), REQUEST_ID_HEADER, requestId);
  if (upgrade) headers.push('connection', 'upgrade', 'upgrade', String(req.headers.upgrade));
  return headers;
}

/** Sends the user's request to `peerUrl` and streams the answer back, with backpressure both ways. */
export function forwardToPeer(opts: ForwarderOptions, app: AppConfig, req: IncomingMessage, res: ServerResponse, requestId: string, proto: 'http' | 'https', peerUrl: string): void {
  const headers = peerHeaders(opts, req, requestId, proto, false);
  const ac = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  request(new URL(req.url ?? '/', peerUrl), {
    method: (req.method ?? 'GET'),
    headers,
    body: hasBody(req) ? req : null,
    dispatcher: opts.dispatcher,
    signal: ac.signal,
    headersTimeout: app.timeouts.headMs + 10_000,
    bodyTimeout: 0,
  }).then(
    (answer) => {
      const out: string[] = [];
      const rawOut = answer.headers;
      for (const [name, value] of Object.entries(rawOut)) {
        if (value === undefined || HOP_BY_HOP.has(name)) continue;
        for (const v of Array.isArray(value) ? value : [value]) out.push(name, v);
      }
      res.writeHead(answer.statusCode, out);
      pipeline(answer.body, res, (err) => {
        if (err && !ac.signal.aborted) opts.logger.debug({ err: err.message, requestId }, 'forwarded response cut short');
      });
    },
    (err: unknown) => {
      if (ac.signal.aborted) return;
      opts.logger.warn({ err: (err as Error).message, peer: peerUrl, requestId, client: clientAddress(req) }, 'forwarding to a peer relay failed');
      req.resume();
      sendErrorPage(res, Pages.upstream(502, 'ERR_PEER_UNREACHABLE', `The relay that serves ${app.name} right now could not be reached. Try again.`), requestId);
    },
  );
}

/**
 * Sends the user's upgrade request (WebSocket) to `peerUrl` on a connection of
 * its own. After the peer's 101 the two sockets are spliced, so frames and
 * close codes pass untouched; any other answer (sign-in, 403, 502) is relayed
 * as it is and the connection closes after it.
 */
export function forwardUpgradeToPeer(opts: ForwarderOptions, app: AppConfig, req: IncomingMessage, socket: Duplex, head: Buffer, requestId: string, proto: 'http' | 'https', peerUrl: string, onStatus: (status: number) => void): void {
  const target = new URL(req.url ?? '/', peerUrl);
  const request = (target.protocol === 'https:' ? https : http).request(target, {
    method: req.method ?? 'GET',
    headers: peerHeaders(opts, req, requestId, proto, true),
    // The user's Host is among the headers; the connection is used once and handed over.
    setHost: false,
    agent: false,
  });
  let answered = false;
  const timer = setTimeout(() => {
    if (!settle(504)) return;
    request.destroy();
    rejectUpgrade(socket, Pages.upstream(504, 'ERR_PEER_TIMEOUT', `The relay that serves ${app.name} right now did not answer in time. Try again.`), requestId);
  }, app.timeouts.headMs + 10_000);
  /** The first answer wins; returns false for any later one. */
  function settle(status: number): boolean {
    clearTimeout(timer);
    if (answered) return false;
    answered = true;
    onStatus(status);
    return true;
  }
  // The caller (proxyUpgrade) already destroys the socket on error.
  socket.on('close', () => {
    if (!answered) {
      answered = true;
      clearTimeout(timer);
      request.destroy();
    }
  });
  request.on('upgrade', (answer: IncomingMessage, peer: Duplex, peerHead: Buffer) => {
    if (!settle(101) || socket.destroyed) {
      peer.destroy();
      return;
    }
    writeHead(socket, 101, answer.statusMessage ?? '', answer.rawHeaders);
    if (peerHead.length > 0) socket.write(peerHead);
    if (head.length > 0) peer.write(head);
    peer.on('error', () => socket.destroy());
    peer.on('close', () => socket.destroy());
    socket.on('close', () => peer.destroy());
    socket.pipe(peer);
    peer.pipe(socket);
  });
  request.on('response', (answer: IncomingMessage) => {
    if (!settle(answer.statusCode ?? 502)) {
      answer.destroy();
      return;
    }
    const raw = answer.rawHeaders;
    const listed = connectionTokens(raw);
    const headers: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const lower = raw[i]!.toLowerCase();
      if (!HOP_BY_HOP.has(lower) && !listed.has(lower)) headers.push(raw[i]!, raw[i + 1]!);
    }
    headers.push('connection', 'close');
    writeHead(socket, answer.statusCode ?? 502, answer.statusMessage ?? '', headers);
    answer.pipe(socket);
  });
  request.on('error', (err) => {
    if (!settle(502)) return;
    opts.logger.warn({ err: err.message, peer: peerUrl, requestId, client: clientAddress(req) }, 'forwarding an upgrade to a peer relay failed');
    rejectUpgrade(socket, Pages.upstream(502, 'ERR_PEER_UNREACHABLE', `The relay that serves ${app.name} right now could not be reached. Try again.`), requestId);
  });
  request.end();
}
