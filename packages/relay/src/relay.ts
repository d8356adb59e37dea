/**
 * Composition root of the relay: builds the parts and wires them together.
 * No routing, sign-in or queueing logic lives here.
 */
import type { AddressInfo, BlockList } from 'node:net';
import type http from 'node:http';
import type https from 'node:https';
import { CloseCode, DEFAULT_SESSION_LIMITS, DrawbridgeError, NoticeKind, type SessionLimits } from '@drawbridge/shared';
import { pino, type Logger } from 'pino';
import { type AccessGate, passthroughGate } from './access.ts';
import type { AppCatalog } from './catalog.ts';
import type { ExchangeContext, ExchangeSummary } from './proxy/http-proxy.ts';
import { createPublicServer, type PublicListenerOptions } from './public-listener.ts';
import { type ConnectorAuthenticator, chainAuthenticator, createConnectorServer } from './tunnel/connector-listener.ts';
import { type QueueLimits, type TunnelConnection, TunnelRegistry } from './tunnel/registry.ts';

export interface ListenAddress {
  host: string;
  port: number;
}

export interface RelayOptions {
  public: ListenAddress & { tls?: { cert: string; key: string } | undefined; trustedProxies?: BlockList | undefined };
  connector: ListenAddress & { tls: { cert: string; key: string; ca: string } };
  catalog: AppCatalog;
  gate?: AccessGate;
  /** Pages the relay serves itself (sign-in, callback, sign-out, JWKS): `UserAccessGate.routes`. */
  relayRoutes?: PublicListenerOptions['relayRoutes'];
  authenticator?: ConnectorAuthenticator;
  queue?: Partial<QueueLimits>;
  /**
   * How much longer than an app's head timeout the relay waits for the
   * connector's answer before it gives up itself (the connector's own 504
   * normally comes first). Default 5 s.
   */
  headGraceMs?: number;
  /** How long the rest of a request body that an early answer left unread is read and dropped before the connection closes. Default 30 s. */
  unreadBodyLingerMs?: number;
  session?: { limits?: Partial<SessionLimits>; pingIntervalMs?: number; pingTimeoutMs?: number; handshakeTimeoutMs?: number };
  maxHeaderSize?: number;
  headersTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  /** How long `close()` lets streams in flight finish. */
  shutdownGraceMs?: number;
  logger?: Logger;
  connectorApi?: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  onExchange?(summary: ExchangeSummary): void;
  /** Several relays: forward to a peer when no tunnel of the group is here (see cluster/). */
  forward?: ExchangeContext['forward'];
  forwardUpgrade?: ExchangeContext['forwardUpgrade'];
  isPeerForward?: (req: http.IncomingMessage) => boolean;
  onConnection?(conn: TunnelConnection, event: 'open' | 'close'): void;
}

export interface Relay {
  readonly publicUrl: string;
  readonly connectorUrl: string;
  readonly registry: TunnelRegistry;
  readonly logger: Logger;
  /** Tells every connected connector (or those of one group) that configuration changed. */
  notifyConfigChanged(groupId?: string, revision?: string): void;
  /** Swaps the certificate of a TLS listener without dropping connections (file reload, renewal). */
  setTls(listener: 'public' | 'connector', tls: { cert: string; key: string }): void;
  /** Graceful stop: no new work, streams in flight get `shutdownGraceMs` to finish. */
  close(): Promise<void>;
}

export const DEFAULT_QUEUE: QueueLimits = { maxLength: 1000, maxWaitMs: 10_000 };

function listen(server: http.Server, addr: ListenAddress): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function urlOf(scheme: string, info: AddressInfo): string {
  const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
  return `${scheme}://${host}:${info.port}`;
}

export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const logger = opts.logger ?? pino({ name: 'drawbridge-relay' });
  const queue: QueueLimits = { ...DEFAULT_QUEUE, ...opts.queue };
  const registry = new TunnelRegistry(queue);
  const limits: SessionLimits = { ...DEFAULT_SESSION_LIMITS, ...opts.session?.limits };

  const publicServer = createPublicServer({
    tls: opts.public.tls,
    trustedProxies: opts.public.trustedProxies,
    catalog: opts.catalog,
    gate: opts.gate ?? passthroughGate,
    exchange: { registry, queueWaitMs: queue.maxWaitMs, headGraceMs: opts.headGraceMs ?? 5_000, unreadBodyLingerMs: opts.unreadBodyLingerMs ?? 30_000, onDone: (s) => opts.onExchange?.(s), forward: opts.forward, forwardUpgrade: opts.forwardUpgrade },
    isPeerForward: opts.isPeerForward,
    maxHeaderSize: opts.maxHeaderSize ?? 16 * 1024,
    headersTimeoutMs: opts.headersTimeoutMs ?? 30_000,
    keepAliveTimeoutMs: opts.keepAliveTimeoutMs ?? 65_000,
    logger,
    ...(opts.relayRoutes ? { relayRoutes: opts.relayRoutes } : {}),
  });
  const connectorServer = createConnectorServer({
    tls: opts.connector.tls,
    registry,
    authenticator: opts.authenticator ?? chainAuthenticator,
    session: {
      limits,
      pingIntervalMs: opts.session?.pingIntervalMs ?? 15_000,
      pingTimeoutMs: opts.session?.pingTimeoutMs ?? 45_000,
      handshakeTimeoutMs: opts.session?.handshakeTimeoutMs ?? 10_000,
    },
    logger,
    ...(opts.connectorApi ? { api: opts.connectorApi } : {}),
    onConnection: (conn, event) => opts.onConnection?.(conn, event),
  });

  const [pub, con] = await Promise.all([listen(publicServer, opts.public), listen(connectorServer, opts.connector)]);
  const publicUrl = urlOf(opts.public.tls ? 'https' : 'http', pub);
  const connectorUrl = urlOf('https', con);
  logger.info({ public: publicUrl, connector: connectorUrl }, 'relay listening');

  let closing: Promise<void> | undefined;
  return {
    publicUrl,
    connectorUrl,
    registry,
    logger,
    setTls(listener, tls) {
      if (listener === 'connector') connectorServer.setSecureContext({ ...tls, ca: opts.connector.tls.ca });
      else if (opts.public.tls) (publicServer as https.Server).setSecureContext(tls);
    },
    notifyConfigChanged(groupId, revision = '') {
      const body = new TextEncoder().encode(revision);
      for (const conn of registry.connections()) if (!groupId || conn.groupId === groupId) conn.session.notify(NoticeKind.CONFIG_CHANGED, body);
    },
    close() {
      closing ??= (async () => {
        publicServer.close();
        connectorServer.close();
        registry.failAll(new DrawbridgeError('ERR_SHUTTING_DOWN', 'the relay is shutting down'));
        const conns = registry.connections();
        for (const c of conns) c.session.drain('relay shutting down');
        const deadline = Date.now() + (opts.shutdownGraceMs ?? 10_000);
        while (conns.some((c) => c.session.openStreams > 0) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
        }
        for (const c of conns) c.close(CloseCode.GOING_AWAY, 'relay shutting down');
        publicServer.closeAllConnections();
        connectorServer.closeAllConnections();
      })();
      return closing;
    },
  };
}
