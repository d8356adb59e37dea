/**
 * Upgrade requests (WebSocket) to internal applications. undici's pools do not
 * carry upgrades, so these use node:http directly; after the app's 101 the
 * stream and the socket exchange raw bytes, with backpressure both ways.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { type AppConfig, ErrorCode, type HeaderList, type Stream } from '@drawbridge/shared';
import { upstreamFailure } from './errors.ts';
import { rawToList, upstreamHeaders } from './headers.ts';
import { resolveTarget } from './target.ts';

/** Pipes a socket and a stream into each other until either side ends. */
function splice(stream: Stream, socket: Socket, head: Buffer): void {
  let unconsumed = 0;
  socket.setNoDelay(true);
  stream.handler.onData = (chunk) => {
    if (socket.write(chunk)) stream.consume(chunk.length);
    else unconsumed += chunk.length;
  };
  socket.on('drain', () => {
    const n = unconsumed;
    unconsumed = 0;
    stream.consume(n);
  });
  stream.handler.onEnd = () => socket.end();
  stream.handler.onReset = () => socket.destroy();
  stream.handler.onWritable = () => socket.resume();
  if (head.length > 0) stream.write(head);
  socket.on('data', (chunk: Buffer) => {
    if (!stream.write(chunk)) socket.pause();
  });
  socket.on('end', () => stream.end());
  socket.on('error', () => undefined);
  socket.on('close', () => {
    if (!stream.isClosed) stream.reset(ErrorCode.UPSTREAM_RESET, 'application closed the connection');
  });
}

export function forwardUpgrade(stream: Stream, app: AppConfig, inject: HeaderList): void {
  const head = stream.request;
  const target = resolveTarget(app, head.target);
  if ('refused' in target) {
    stream.reset(ErrorCode.TARGET_NOT_ALLOWED, target.refused);
    return;
  }
  const { url } = target;
  const secure = url.protocol === 'https:';
  const req = (secure ? https : http).request({
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port || (secure ? 443 : 80),
    method: head.method,
    path: target.path,
    headers: upstreamHeaders(app, head.headers, inject, true),
    setHost: false,
    timeout: app.timeouts.connectMs,
    ...(secure ? { rejectUnauthorized: !app.insecureSkipVerify, servername: url.hostname } : {}),
  });
  let settled = false;
  stream.handler.onReset = () => {
    settled = true;
    req.destroy();
  };
  req.on('timeout', () => req.destroy(Object.assign(new Error('no answer in time'), { code: 'ETIMEDOUT' })));
  req.on('upgrade', (res: http.IncomingMessage, socket: Socket, rest: Buffer) => {
    settled = true;
    req.setTimeout(0);
    socket.setTimeout(0);
    stream.respond({ status: res.statusCode ?? 101, reason: res.statusMessage ?? '', headers: rawToList(res.rawHeaders) });
    splice(stream, socket, rest);
  });
  req.on('response', (res: http.IncomingMessage) => {
    settled = true;
    stream.respond({ status: res.statusCode ?? 502, reason: res.statusMessage ?? '', headers: rawToList(res.rawHeaders) });
    res.on('data', (chunk: Buffer) => {
      if (!stream.write(chunk)) res.pause();
    });
    stream.handler.onWritable = () => res.resume();
    res.on('end', () => stream.end());
  });
  req.on('error', (err) => {
    if (settled && stream.isClosed) return;
    const failure = upstreamFailure(err);
    stream.reset(failure.code, failure.message);
  });
  req.end();
}
