/**
 * Keeps the connector's tunnel connections to the relay open: dials out over
 * TLS with the client certificate, runs a Session on each, and reconnects with
 * jittered exponential backoff. This is the only file of the connector that
 * imports `ws`.
 */
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { CloseCode, DEFAULT_SESSION_LIMITS, DrawbridgeError, Session, maxMessageSize, type SessionLimits, type Stream } from '@drawbridge/shared';
import { limitTurns, webSocketTransport } from '@drawbridge/shared/node';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';

export interface TunnelCredentials {
  cert: string;
  key: string;
  /** CA that issued the relay's connector-listener certificate; system trust store when absent. */
  ca?: string | undefined;
}

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export interface TunnelClientOptions {
  /** The relay's connector listener, `https://relay.example.com:8443`. */
  relayUrl: string;
  credentials: TunnelCredentials;
  connections: number;
  limits?: Partial<SessionLimits>;
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  backoff?: BackoffOptions;
  version: string;
  logger: Logger;
  onStream(stream: Stream): void;
  onNotice?(kind: number, body: Uint8Array): void;
  /** The relay refused our certificate for good (revoked, unknown): no point retrying. */
  onFatal?(error: DrawbridgeError): void;
  /** A connection became ready or went away. */
  onStateChange?(): void;
}

/**
 * The WebSocket masking key of every frame the connector sends: all zeros, so
 * `ws` writes our buffers as they are instead of copying each message into a
 * fresh one to XOR it. Masking exists so that script in a browser cannot
 * choose the bytes a proxy on the path sees (RFC 6455 §10.3); the connector is
 * not a browser, its payload is our own framing, and the connection is TLS end
 * to end, so there is nothing for it to protect. Receivers accept any key,
 * including zero; see docs/protocol.md.
 */
function ZERO_MASK(mask: Uint8Array): void {
  mask.fill(0);
}

/** Codes after which reconnecting cannot help. */
const FATAL = new Set(['ERR_CERT_REVOKED', 'ERR_CERT_UNTRUSTED', 'ERR_CERT_EXPIRED', 'ERR_CERT_REQUIRED', 'ERR_CONNECTOR_UNKNOWN']);

/** Full-jitter exponential backoff: spreads reconnects of many connectors after a relay restart. */
export function backoffDelay(attempt: number, b: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(attempt, 20));
  return Math.round(b.initialMs / 2 + random() * (ceiling - b.initialMs / 2));
}

interface Slot {
  index: number;
  attempt: number;
  ws?: WebSocket;
  session?: Session;
  timer?: NodeJS.Timeout;
  readySince?: number;
}

export interface ConnectionStatus {
  index: number;
  state: 'connecting' | 'ready' | 'waiting';
  since?: number;
  openStreams: number;
}

export class TunnelClient {
  private readonly opts: TunnelClientOptions;
  private credentials: TunnelCredentials;
  /**
   * One TLS context for every connection made with the current credentials.
   * Handing tls.connect the PEM strings instead builds a context per
   * connection: about 40 KiB and a quarter of a millisecond of parsing each.
   */
  private tlsContext: SecureContext | undefined;
  private readonly slots: Slot[] = [];
  private readonly retiring = new Set<Session>();
  private stopped = false;

  constructor(opts: TunnelClientOptions) {
    this.opts = opts;
    this.credentials = opts.credentials;
  }

  start(): void {
    for (let i = 0; i < this.opts.connections; i++) {
      const slot: Slot = { index: i, attempt: 0 };
      this.slots.push(slot);
      this.connect(slot);
    }
  }

  /** Connections that completed the handshake. */
  get readyCount(): number {
    return this.slots.filter((s) => s.session?.isOpen).length;
  }

  status(): ConnectionStatus[] {
    return this.slots.map((s) => ({
      index: s.index,
      state: s.session?.isOpen ? 'ready' : s.timer ? 'waiting' : 'connecting',
      ...(s.readySince ? { since: s.readySince } : {}),
      openStreams: s.session?.openStreams ?? 0,
    }));
  }

  /**
   * Switches to new credentials without dropping streams: each slot dials a
   * fresh connection with them, and the old connection drains (GOAWAY) and
   * closes once its streams are done.
   */
  rotate(credentials: TunnelCredentials): void {
    this.credentials = credentials;
    this.tlsContext = undefined;
    for (const slot of this.slots) {
      const old = slot.session;
      if (old?.isOpen) {
        this.retire(old);
        slot.session = undefined;
        slot.ws = undefined;
        slot.attempt = 0;
        this.connect(slot);
      }
    }
  }

  /** Drains every connection and closes it once its streams finish (or after `graceMs`). */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopped = true;
    const sessions: Session[] = [...this.retiring];
    for (const slot of this.slots) {
      if (slot.timer) clearTimeout(slot.timer);
      if (slot.session) sessions.push(slot.session);
      else slot.ws?.terminate();
    }
    await Promise.all(sessions.map((s) => this.drainAndClose(s, graceMs)));
  }

  private retire(session: Session): void {
    this.retiring.add(session);
    void this.drainAndClose(session, 60_000).then(() => this.retiring.delete(session));
  }

  private drainAndClose(session: Session, graceMs: number): Promise<void> {
    if (session.isClosed) return Promise.resolve();
    session.drain('connector shutting down');
    return new Promise((resolve) => {
      const check = (): void => {
        if (session.openStreams === 0 || session.isClosed) {
          clearTimeout(timer);
          session.close(CloseCode.NORMAL, 'connector done');
          resolve();
        }
      };
      const timer = setTimeout(() => {
        session.close(CloseCode.GOING_AWAY, 'drain timeout');
        resolve();
      }, graceMs);
      drainWaiters.set(session, check);
      check();
    });
  }

  /** The TLS options of a new connection: the shared context, or the PEMs themselves when they do not make one (each connection then fails with TLS's own error, as it would without the cache). */
  private tls(): { secureContext: SecureContext } | TunnelCredentials {
    if (this.tlsContext === undefined) {
      const { cert, key, ca } = this.credentials;
      const pems = { cert, key, ...(ca ? { ca } : {}) };
      try {
        this.tlsContext = createSecureContext(pems);
      } catch {
        return pems;
      }
    }
    return { secureContext: this.tlsContext };
  }

  private connect(slot: Slot): void {
    if (this.stopped) return;
    slot.timer = undefined;
    const url = new URL('/v1/tunnel', this.opts.relayUrl.replace(/^http/, 'ws'));
    const limits: SessionLimits = { ...DEFAULT_SESSION_LIMITS, ...this.opts.limits };
    const ws = new WebSocket(url, {
      ...this.tls(),
      perMessageDeflate: false,
      generateMask: ZERO_MASK,
      maxPayload: maxMessageSize(limits),
      handshakeTimeout: 15_000,
      headers: { 'x-drawbridge-connector-version': this.opts.version },
    });
    slot.ws = ws;
    const log = this.opts.logger.child({ connection: slot.index });
    let refusal: DrawbridgeError | undefined;

    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (body.length < 4096) body += c;
      });
      res.on('end', () => {
        try {
          const parsed = JSON.parse(body) as { error?: { code?: string; message?: string } };
          refusal = new DrawbridgeError(parsed.error?.code ?? 'ERR_TUNNEL_REFUSED', parsed.error?.message ?? `relay answered ${res.statusCode}`);
        } catch {
          refusal = new DrawbridgeError('ERR_TUNNEL_REFUSED', `relay answered ${res.statusCode} to the tunnel request`);
        }
        ws.terminate();
      });
    });

    // The TLS socket under the WebSocket: the session writes its frames there (shared/node/ws-transport.ts).
    let socket: Socket | undefined;
    ws.once('upgrade', (res) => {
      socket = res.socket;
    });

    ws.on('open', () => {
      if (!socket) {
        log.error('tunnel connection opened without a socket; reconnecting');
        ws.terminate();
        return;
      }
      const session = new Session({
        role: 'connector',
        transport: webSocketTransport(ws, socket, { masked: true }),
        limits,
        agent: `drawbridge-connector/${this.opts.version}`,
        pingIntervalMs: this.opts.pingIntervalMs ?? 15_000,
        pingTimeoutMs: this.opts.pingTimeoutMs ?? 45_000,
        onStream: (stream) => this.opts.onStream(stream),
        onHandlerError: (err, streamId) => log.error({ err, streamId }, 'request handler failed; its stream was reset'),
        onNotice: (kind, body) => this.opts.onNotice?.(kind, body),
        onReady: () => {
          slot.attempt = 0;
          slot.readySince = Date.now();
          log.info('tunnel connection ready');
          this.opts.onStateChange?.();
        },
        onStreamCountChange: () => drainWaiters.get(session)?.(),
        onClose: (error) => {
          if (error) log.warn({ code: error.code, err: error.message }, 'tunnel connection closed');
        },
      });
      if (slot.ws === ws) slot.session = session;
      // A bulk transfer gets a bounded share of each turn of the event loop (shared/node/turns.ts).
      const spent = limitTurns(ws);
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary) return;
        session.receive(data);
        spent(data.length);
      });
      ws.on('close', (code: number, reason: Buffer) => session.transportClosed(code, reason.toString()));
      session.start();
    });

    ws.on('error', (err: Error) => {
      log.debug({ err: err.message }, 'tunnel socket error');
    });
    ws.on('close', () => {
      if (slot.ws !== ws) return; // retired by rotation
      slot.ws = undefined;
      slot.session = undefined;
      slot.readySince = undefined;
      this.opts.onStateChange?.();
      if (this.stopped) return;
      if (refusal && FATAL.has(refusal.code)) {
        log.error({ code: refusal.code }, refusal.message);
        this.stopped = true;
        this.opts.onFatal?.(refusal);
        return;
      }
      const delay = backoffDelay(slot.attempt, this.opts.backoff ?? { initialMs: 500, maxMs: 30_000 });
      slot.attempt += 1;
      log.info({ delayMs: delay, code: refusal?.code }, 'reconnecting');
      slot.timer = setTimeout(() => this.connect(slot), delay);
    });
  }
}

const drainWaiters = new WeakMap<Session, () => void>();
