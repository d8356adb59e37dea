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
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import type { AppConfig } from '@drawbridge/shared';
import type { Logger } from 'pino';
import { type Dispatcher, request } from 'undici';
import { peerAddress } from '../proxy/client-info.ts';
import { clientAddress, hasBody } from '../proxy/http-proxy.ts';
import { connectionTokens, HOP_BY_HOP, REQUEST_ID_HEADER } from '../proxy/headers.ts';
import { Pages, sendErrorPage } from '../proxy/pages.ts';

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

/** Sends the user's request to `peerUrl` and streams the answer back, with backpressure both ways. */
export function forwardToPeer(opts: ForwarderOptions, app: AppConfig, req: IncomingMessage, res: ServerResponse, requestId: string, proto: 'http' | 'https', peerUrl: string): void {
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
