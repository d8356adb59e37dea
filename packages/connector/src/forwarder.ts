/**
 * Forwards tunnel streams to internal applications with undici: one keep-alive
 * pool per app, bodies streamed both ways. A full tunnel window pauses the
 * upstream response (controller.pause); a slow application holds back the
 * credit the relay needs to send more of the request body.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { type AppConfig, ErrorCode, type HeaderList, type Stream } from '@drawbridge/shared';
import { nextTurn, usedTurnShare } from '@drawbridge/shared/node';
import type { Logger } from 'pino';
import { type Dispatcher, errors, Pool } from 'undici';
import { upstreamFailure } from './errors.ts';
import { metaValue, objectToList, rawToList, rewriteLocation, upstreamHeaders } from './headers.ts';
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

/** How often the deadlines of requests in flight are checked: a timeout fires up to this much late. */
const DEADLINE_TICK_MS = 100;

/**
 * The head and idle deadlines of the requests in flight, checked by one timer
 * that runs only while some request has a deadline.
 *
 * undici's own `headersTimeout` and `bodyTimeout` give each request a timer
 * object of its own, which stays in undici's list until its half-second sweep:
 * it outlives two young collections and is promoted. Under a steady small-
 * request load those timers were most of what the connector promoted, and the
 * old generation grew by 0.6–1.0 MB a second until a full collection
 * (docs/performance.md, item 29).
 */
class Deadlines {
  /**
   * The watched exchanges, each knowing its index: removal moves the last one
   * into the gap. Not a `Set`: a long-lived hash table that gains and loses an
   * entry per request keeps requests alive through young collections once it
   * is old (item 12).
   */
  private readonly live: Exchange[] = [];
  private timer: NodeJS.Timeout | undefined;

  watch(x: Exchange): void {
    if (x.slot < 0) {
      x.slot = this.live.length;
      this.live.push(x);
    }
    if (this.timer) return;
    this.timer = setInterval(this.sweep, DEADLINE_TICK_MS);
    this.timer.unref();
  }

  unwatch(x: Exchange): void {
    if (x.slot < 0) return;
    const last = this.live.pop()!;
    if (last !== x) {
      this.live[x.slot] = last;
      last.slot = x.slot;
    }
    x.slot = -1;
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const x of this.live) x.slot = -1;
    this.live.length = 0;
  }

  private readonly sweep = (): void => {
    if (this.live.length === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    const now = performance.now();
    let due: Exchange[] | undefined;
    for (const x of this.live) if (x.deadline <= now && !x.paused) (due ??= []).push(x);
    // Expired after the walk: expiring one unwatches it, which moves another.
    if (due) for (const x of due) x.expire();
  };
}

export class Forwarder {
  private readonly pools = new Map<string, PoolEntry>();
  private readonly opts: ForwarderOptions;
  private readonly deadlines = new Deadlines();

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
    this.deadlines.close();
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
    const exchange = new Exchange(stream, app, this.opts.logger, this.deadlines);
    this.pool(app).dispatch(
      {
        path: target.path,
        method: head.method,
        headers: upstreamHeaders(app, head.headers, inject, false),
        body: exchange.body,
        // The exchange keeps the app's head and idle timeouts itself (Deadlines).
        headersTimeout: 0,
        bodyTimeout: 0,
        // Upstream requests are never retried: a POST must not run twice.
        idempotent: false,
        blocking: false,
      },
      exchange,
    );
  }
}

/**
 * One request to an app: undici's dispatch handler, the request body source
 * and the stream's handler in one object, which lets go of the stream, app and
 * controller the moment the request is over.
 *
 * The closures this replaced shared one scope holding the stream, its head,
 * the upstream headers and undici's controller. At 850 requests/s through 20
 * connections that scope stayed reachable long enough to be promoted: the
 * connector's old generation grew by about 3 MB a second and its young-
 * generation pauses took 6–8 ms. Released here, the old generation stays flat
 * and the pauses take 1–2 ms (`--trace-gc`; see docs/performance.md).
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly body: Readable | null = null;
  private stream: Stream | undefined;
  private app: AppConfig | undefined;
  private log: Logger | undefined;
  private controller: Dispatcher.DispatchController | undefined;
  private deadlines: Deadlines | undefined;
  /** Request bytes received but not yet credited back to the relay. */
  private held = 0;
  /** The response body's share of the current turn of the event loop (a TurnShare, shared/node/turns.ts; fields, not an object, so a small request allocates nothing more). */
  turn = -1;
  bytes = 0;
  /**
   * When the request times out (performance.now() milliseconds): the app's
   * head timeout from the request's last byte, then, with an idle timeout,
   * that long after each chunk of the response body. Finite exactly while
   * Deadlines watches the request.
   */
  deadline = Infinity;
  /** Waiting for a response head (true) or in the response body (false). */
  private waitingForHead = true;
  /** Held back by the tunnel's window: silence that is ours, not the app's, never times out. */
  paused = false;
  /** Index in Deadlines' list while watched, else -1. */
  slot = -1;

  constructor(stream: Stream, app: AppConfig, log: Logger, deadlines: Deadlines) {
    this.stream = stream;
    this.app = app;
    this.log = log;
    this.deadlines = deadlines;
    if (app.timeouts.headMs > 0) {
      this.deadline = performance.now() + app.timeouts.headMs;
      deadlines.watch(this);
    }
    if (!stream.remoteDone) {
      // Credit for request bytes goes back to the relay as undici reads them.
      const src = new Readable({ highWaterMark: 64 * 1024, read: () => this.creditHeld() });
      this.body = src;
      // The DATA frames of one tunnel message reach the app as one write: undici
      // writes every chunk it is given with a system call of its own.
      let parts: Uint8Array[] = [];
      let partBytes = 0;
      const pushParts = (): void => {
        if (partBytes === 0) return;
        const chunk = parts.length === 1 ? parts[0]! : Buffer.concat(parts, partBytes);
        const n = partBytes;
        parts = [];
        partBytes = 0;
        if (src.destroyed) return;
        // An upload that is still moving is not a slow app: the head timeout counts from its last byte.
        this.refreshHead();
        if (src.push(chunk)) this.stream?.consume(n);
        else this.held += n;
      };
      stream.handler.onData = (chunk) => {
        if (chunk.length === 0) return;
        if (partBytes === 0) queueMicrotask(pushParts);
        parts.push(chunk);
        partBytes += chunk.length;
      };
      stream.handler.onEnd = () => {
        pushParts();
        this.refreshHead();
        src.push(null);
      };
    }
    stream.handler.onReset = (err) => {
      this.controller?.abort(err);
      this.body?.destroy();
      this.release();
    };
    stream.handler.onWritable = () => this.resume();
  }

  /** The deadline passed: ends the request as undici's own timeout would have. */
  expire(): void {
    const app = this.app;
    if (!app) return;
    const err = this.waitingForHead
      ? new errors.HeadersTimeoutError(`no response head within ${app.timeouts.headMs} ms`)
      : new errors.BodyTimeoutError(`no response body bytes for ${app.timeouts.idleMs} ms`);
    if (this.controller) {
      // undici destroys the connection and calls onResponseError.
      this.controller.abort(err);
      if (!this.app) return;
    }
    // Not yet on a connection (onRequestStart aborts it when it gets one), or undici did not call back.
    this.onResponseError(undefined, err);
  }

  private refreshHead(): void {
    if (this.waitingForHead && this.deadline !== Infinity) this.deadline = performance.now() + this.app!.timeouts.headMs;
  }

  private pause(c: Dispatcher.DispatchController): void {
    this.paused = true;
    c.pause();
  }

  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    // The wait was the user's: the app's silence counts from now.
    if (this.deadline !== Infinity) this.deadline = performance.now() + this.app!.timeouts.idleMs;
    this.controller?.resume();
  }

  onRequestStart(c: Dispatcher.DispatchController): void {
    this.controller = c;
    if (!this.stream) c.abort(new Error('stream already closed'));
  }

  onResponseStart(c: Dispatcher.DispatchController, statusCode: number, hdrs: IncomingHttpHeaders, statusMessage?: string): void {
    const stream = this.stream;
    if (!stream) return;
    if (statusCode < 200) {
      this.refreshHead();
      return;
    }
    this.waitingForHead = false;
    const idle = this.app!.timeouts.idleMs;
    if (idle > 0 && this.deadlines) {
      this.deadline = performance.now() + idle;
      this.deadlines.watch(this);
    } else {
      this.deadline = Infinity;
      this.deadlines?.unwatch(this);
    }
    const list = Array.isArray(c.rawHeaders) ? rawToList(c.rawHeaders) : objectToList(hdrs);
    stream.respond({ status: statusCode, reason: statusMessage ?? '', headers: rewriteLocation(this.app!, list, () => externalOrigin(stream, this.app!)) });
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.stream) return;
    if (this.deadline !== Infinity) this.deadline = performance.now() + this.app!.timeouts.idleMs;
    if (!this.stream.write(chunk)) this.pause(c);
    else if (usedTurnShare(this, chunk.length)) {
      this.pause(c);
      nextTurn(() => {
        // Still blocked on the tunnel window: onWritable resumes it.
        if (this.stream !== undefined && this.stream.queuedBytes === 0) this.resume();
      });
    }
  }

  onResponseEnd(c: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    const list = Array.isArray(c.rawTrailers) ? rawToList(c.rawTrailers) : objectToList(trailers);
    this.stream?.end(list);
    this.release();
  }

  onResponseError(_c: Dispatcher.DispatchController | undefined, err: Error): void {
    const stream = this.stream;
    if (!stream) return;
    this.body?.destroy();
    const failure = upstreamFailure(err);
    this.log!.debug({ requestId: stream.request.requestId, app: this.app!.id, code: failure.code, err: failure.message }, 'upstream request failed');
    stream.reset(failure.code, failure.message);
    this.release();
  }

  private creditHeld(): void {
    if (this.held === 0) return;
    const n = this.held;
    this.held = 0;
    this.stream?.consume(n);
  }

  /** The request is over: let go of everything undici's queue would otherwise keep alive. */
  private release(): void {
    this.deadlines?.unwatch(this);
    this.deadlines = undefined;
    this.deadline = Infinity;
    if (this.stream) this.stream.handler = {};
    this.stream = undefined;
    this.app = undefined;
    this.log = undefined;
    this.controller = undefined;
  }
}

function externalOrigin(stream: Stream, app: AppConfig): string {
  const meta = stream.request.meta;
  return `${metaValue(meta, 'proto') ?? 'https'}://${metaValue(meta, 'host') ?? app.externalHost}`;
}
