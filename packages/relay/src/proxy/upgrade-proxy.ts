/**
 * Protocol upgrades (WebSocket) carried end to end: after the application's
 * 101, the stream carries raw bytes both ways, so WebSocket frames, close codes
 * and negotiated extensions pass through untouched.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type AppConfig, DrawbridgeError, ErrorCode, type ResponseHead, type Stream, type StreamError } from '@drawbridge/shared';
import type { TunnelConnection } from '../tunnel/registry.ts';
import { REQUEST_ID_HEADER, responseHeaders } from './headers.ts';
import { type ExchangeContext, goesToPeer, type RequestIdentity, requestHead } from './http-proxy.ts';
import { type ErrorPage, renderErrorPage } from './pages.ts';
import { pageForStreamError } from './stream-errors.ts';

const STATUS_TEXT: Record<number, string> = { 101: 'Switching Protocols' };

/** Writes a raw HTTP/1.1 response head (`flat`: name, value, name, value…). */
export function writeHead(socket: Duplex, status: number, reason: string, flat: string[]): void {
  let head = `HTTP/1.1 ${status} ${reason || STATUS_TEXT[status] || ''}\r\n`;
  for (let i = 0; i < flat.length; i += 2) head += `${flat[i]}: ${flat[i + 1]}\r\n`;
  socket.write(`${head}\r\n`, 'latin1');
}

/** Answers an upgrade request on the raw socket with a relay page. */
export function rejectUpgrade(socket: Duplex, page: ErrorPage, requestId: string): void {
  if (socket.destroyed) return;
  const body = renderErrorPage(page, requestId);
  const headers = ['content-type', 'text/html; charset=utf-8', 'content-length', String(Buffer.byteLength(body)), 'connection', 'close', 'x-drawbridge-error', page.code, REQUEST_ID_HEADER, requestId];
  if (page.retryAfterSeconds !== undefined) headers.push('retry-after', String(page.retryAfterSeconds));
  writeHead(socket, page.status, page.title, headers);
  socket.end(body);
}

export function proxyUpgrade(ctx: ExchangeContext, app: AppConfig, req: IncomingMessage, socket: Duplex, headBytes: Buffer, requestId: string, proto: 'http' | 'https', identity: RequestIdentity): void {
  const head = requestHead(app, req, requestId, proto, identity, true);

  let stream: Stream | undefined;
  let switched = false;
  /** The app declined the upgrade and its answer's head went out. */
  let declined = false;
  let unconsumed = 0;
  const aborter = new AbortController();
  const startedAt = Date.now();
  let done = false;
  const finish = (status: number, error?: string): void => {
    if (done) return;
    done = true;
    ctx.onDone?.({ requestId, app, status, bytesIn: 0, bytesOut: 0, startedAt, ...(error ? { error } : {}), ...(identity.user ? { user: identity.user } : {}) });
  };

  socket.on('error', () => socket.destroy());
  socket.on('close', () => {
    aborter.abort();
    if (stream && !stream.isClosed) {
      if (switched) stream.end();
      else stream.reset(ErrorCode.CANCEL, 'client went away');
    }
    finish(switched ? 101 : 499);
  });
  socket.on('drain', () => {
    const n = unconsumed;
    unconsumed = 0;
    stream?.consume(n);
  });

  const open = (conn: TunnelConnection): void => {
    stream = conn.session.openStream(
      head,
      {
        onResponse(rh: ResponseHead, end: boolean): void {
          if (rh.status === 101) {
            switched = true;
            writeHead(socket, 101, rh.reason, responseHeaders(rh.headers, true));
            if (headBytes.length > 0) stream!.write(headBytes);
            socket.on('data', (chunk: Buffer) => {
              if (!stream!.write(chunk)) socket.pause();
            });
            socket.on('end', () => stream!.end());
            return;
          }
          if (rh.status < 200) return;
          // The app declined the upgrade: relay its answer; the body follows raw and the connection closes after it.
          const headers = responseHeaders(rh.headers, false);
          const clean: string[] = [];
          for (let i = 0; i < headers.length; i += 2) if (headers[i]!.toLowerCase() !== 'content-length') clean.push(headers[i]!, headers[i + 1]!);
          clean.push('connection', 'close', REQUEST_ID_HEADER, requestId);
          writeHead(socket, rh.status, rh.reason, clean);
          declined = true;
          finish(rh.status);
          if (end) socket.end();
        },
        onData(chunk: Uint8Array): void {
          if (socket.write(chunk)) stream!.consume(chunk.length);
          else unconsumed += chunk.length;
        },
        onEnd(): void {
          socket.end();
        },
        onReset(err: StreamError): void {
          // After a head went out, a second response would only garble the first.
          if (switched || declined) socket.destroy();
          else rejectUpgrade(socket, pageForStreamError(err, app.name), requestId);
          finish(switched ? 101 : 502, err.code);
        },
        onWritable(): void {
          socket.resume();
        },
      },
      { upgrade: true },
    );
  };

  if (ctx.forwardUpgrade && goesToPeer(ctx, app, req) && ctx.forwardUpgrade(app, req, socket, headBytes, requestId, proto, (status) => finish(status))) return;
  ctx.registry.acquire(app.group, open, aborter.signal).catch((err: unknown) => {
    if (aborter.signal.aborted) return;
    const code = err instanceof DrawbridgeError ? err.code : 'ERR_INTERNAL';
    rejectUpgrade(socket, { status: code === 'ERR_INTERNAL' ? 502 : 503, code, title: 'Application unavailable', detail: (err as Error).message, retryAfterSeconds: Math.max(1, Math.round(ctx.queueWaitMs / 1000)) }, requestId);
    finish(503, code);
  });
}
