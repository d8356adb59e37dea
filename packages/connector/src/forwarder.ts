/**
 * Forwards tunnel streams to internal applications with undici: one keep-alive
 * pool per app, bodies streamed both ways. A full tunnel window pauses the
 * upstream response (controller.pause); a slow application holds back the
 * credit the relay needs to send more of the request body.
 */
import { Readable } from 'node:stream';
import { type AppConfig, ErrorCode, type HeaderList, type Stream } from '@drawbridge/shared';
import type { Logger } from 'pino';
import { Pool, type Dispatcher } from 'undici';
import { upstreamFailure } from './errors.ts';
import { objectToList, rawToList, rewriteLocation, upstreamHeaders } from './headers.ts';
import { injectOrRefuse } from './sso.ts';
import { internalUrl, resolveTarget } from './target.ts';

export interface ForwarderOptions {
  logger: Logger;
  /** Largest response head accepted from an app, in bytes. */
  maxResponseHeaderSize: number;
  /** Keep-alive connections per app. */
  connectionsPerApp: number;
  /** Builds the SSO headers for a request (pre-authentication issue); none by default. */
  injectHeaders?: (app: AppConfig, meta: HeaderList) => HeaderList;
}

interface PoolEntry {
  key: string;
  app: AppConfig;
  pool: Pool;
}

function metaValue(meta: HeaderList, name: string): string | undefined {
  for (const [n, v] of meta) if (n === name) return v;
  return undefined;
}

export class Forwarder {
  private readonly pools = new Map<string, PoolEntry>();
  private readonly opts: ForwarderOptions;

  constructor(opts: ForwarderOptions) {
    this.opts = opts;
  }

  /** The keep-alive pool for an app, rebuilt when its origin or TLS settings change. */
  pool(app: AppConfig): Pool {
    const entry = this.pools.get(app.id);
    // Same configuration object as last time: nothing to compare (the common case, on every request).
    if (entry?.app === app) return entry.pool;
    const { origin } = internalUrl(app);
    const key = `${origin}|${app.insecureSkipVerify}|${app.timeouts.connectMs}`;
    if (entry?.key === key) {
      entry.app = app;
      return entry.pool;
    }
    if (entry) void entry.pool.close().catch(() => undefined);
    const pool = new Pool(origin, {
      connections: this.opts.connectionsPerApp,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connectTimeout: app.timeouts.connectMs,
      maxHeaderSize: this.opts.maxResponseHeaderSize,
      connect: { rejectUnauthorized: !app.insecureSkipVerify, noDelay: true },
    });
    this.pools.set(app.id, { key, app, pool });
    return pool;
  }

  /** Drops pools of apps that left the configuration. */
  retain(appIds: Set<string>): void {
    for (const [id, entry] of this.pools) {
      if (!appIds.has(id)) {
        this.pools.delete(id);
        void entry.pool.close().catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.pool.destroy().catch(() => undefined)));
  }

  /** Handles one HTTP (non-upgrade) request stream for `app`. */
  forward(stream: Stream, app: AppConfig): void {
    const head = stream.request;
    const target = resolveTarget(app, head.target);
    if ('refused' in target) {
      stream.reset(ErrorCode.TARGET_NOT_ALLOWED, target.refused);
      return;
    }
    const inject = injectOrRefuse(stream, app, this.opts.injectHeaders);
    if (!inject) return;
    const headers = upstreamHeaders(app, head.headers, inject, false);
    const externalOrigin = (): string => `${metaValue(head.meta, 'proto') ?? 'https'}://${metaValue(head.meta, 'host') ?? app.externalHost}`;

    let body: Readable | null = null;
    if (!stream.remoteDone) {
      // Credit for request bytes goes back to the relay as undici reads them.
      let held = 0;
      body = new Readable({
        highWaterMark: 64 * 1024,
        read() {
          if (held > 0) {
            const n = held;
            held = 0;
            stream.consume(n);
          }
        },
      });
      const src = body;
      stream.handler.onData = (chunk) => {
        if (src.push(chunk)) stream.consume(chunk.length);
        else held += chunk.length;
      };
      stream.handler.onEnd = () => src.push(null);
    }

    let controller: Dispatcher.DispatchController | undefined;
    let finished = false;
    stream.handler.onReset = (err) => {
      finished = true;
      controller?.abort(err);
      body?.destroy();
    };
    stream.handler.onWritable = () => controller?.resume();

    const log = this.opts.logger;
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (finished) c.abort(new Error('stream already closed'));
      },
      onResponseStart(c, statusCode, hdrs, statusMessage) {
        if (statusCode < 200) return;
        const list = Array.isArray(c.rawHeaders) ? rawToList(c.rawHeaders) : objectToList(hdrs);
        stream.respond({ status: statusCode, reason: statusMessage ?? '', headers: rewriteLocation(app, list, externalOrigin) });
      },
      onResponseData(c, chunk) {
        if (!stream.write(chunk)) c.pause();
      },
      onResponseEnd(c, trailers) {
        finished = true;
        const list = Array.isArray(c.rawTrailers) ? rawToList(c.rawTrailers) : objectToList(trailers);
        stream.end(list);
      },
      onResponseError(_c, err) {
        if (finished) return;
        finished = true;
        body?.destroy();
        const failure = upstreamFailure(err);
        log.debug({ requestId: head.requestId, app: app.id, code: failure.code, err: failure.message }, 'upstream request failed');
        stream.reset(failure.code, failure.message);
      },
    };

    this.pool(app).dispatch(
      {
        path: target.path,
        method: head.method,
        headers,
        body,
        headersTimeout: app.timeouts.headMs,
        bodyTimeout: app.timeouts.idleMs,
        // Upstream requests are never retried: a POST must not run twice.
        idempotent: false,
        blocking: false,
      },
      handler,
    );
  }
}
