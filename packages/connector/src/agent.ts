/**
 * Composition root of the connector: tunnel client + forwarders + the source
 * of configuration. Holds no forwarding or protocol logic itself.
 */
import { type AppConfig, type ConnectorConfig, DEFAULT_SESSION_LIMITS, type DrawbridgeError, ErrorCode, type HeaderList, type SessionLimits, type Stream } from '@drawbridge/shared';
import { pino, type Logger } from 'pino';
import { Forwarder } from './forwarder.ts';
import { injectOrRefuse, ssoHeaders } from './sso.ts';
import { type BackoffOptions, TunnelClient, type TunnelCredentials } from './tunnel-client.ts';
import { forwardUpgrade } from './upgrade-forwarder.ts';

export const CONNECTOR_VERSION = '0.1.0';

/** Where the connector's configuration comes from (a pull from the relay, or a fixed document in tests). */
export interface ConfigSource {
  current(): ConnectorConfig | undefined;
  /** Called by the agent when the relay says configuration changed. */
  refresh?(): Promise<void>;
}

export function staticConfig(config: ConnectorConfig): ConfigSource {
  return { current: () => config };
}

export interface ConnectorOptions {
  relayUrl: string;
  credentials: TunnelCredentials;
  config: ConfigSource;
  /** Tunnel connections to keep open; defaults to the configuration's value, else 2. */
  connections?: number;
  limits?: Partial<SessionLimits>;
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  backoff?: BackoffOptions;
  maxResponseHeaderSize?: number;
  connectionsPerApp?: number;
  /** Builds the SSO headers of a request; `ssoHeaders` (the app's rules and the relay's assertion) by default. */
  injectHeaders?: (app: AppConfig, meta: HeaderList) => HeaderList;
  logger?: Logger;
  onFatal?(error: DrawbridgeError): void;
  /** A tunnel connection became ready or went away. */
  onStateChange?(): void;
}

export interface Connector {
  readonly tunnel: TunnelClient;
  /** Resolves once `n` tunnel connections are ready. */
  waitReady(n?: number): Promise<void>;
  close(graceMs?: number): Promise<void>;
}

export function startConnector(opts: ConnectorOptions): Connector {
  const logger = opts.logger ?? pino({ name: 'drawbridge-connector' });
  const tunnelConnections = opts.connections ?? opts.config.current()?.connections ?? 2;
  const injectHeaders = opts.injectHeaders ?? ((app: AppConfig, meta: HeaderList) => ssoHeaders(app, meta));
  const forwarder = new Forwarder({
    logger,
    maxResponseHeaderSize: opts.maxResponseHeaderSize ?? 64 * 1024,
    // As many as the tunnel connections can carry streams: with fewer,
    // long-lived requests (server-sent events, long polls) beyond the pool's
    // size would wait inside the connector for one of the others to end, while
    // the user sees nothing. The streams the connector accepts bound it.
    connectionsPerApp: opts.connectionsPerApp ?? tunnelConnections * (opts.limits?.maxStreams ?? DEFAULT_SESSION_LIMITS.maxStreams),
    injectHeaders,
  });
  let appsRevision: string | undefined;
  let apps = new Map<string, AppConfig>();
  const appFor = (id: string): AppConfig | undefined => {
    const config = opts.config.current();
    if (config && config.revision !== appsRevision) {
      apps = new Map(config.apps.map((a) => [a.id, a]));
      appsRevision = config.revision;
      forwarder.retain(new Set(apps.keys()));
    }
    return apps.get(id);
  };

  const onStream = (stream: Stream): void => {
    const app = appFor(stream.request.app);
    if (!app) {
      stream.reset(
        ErrorCode.TARGET_NOT_ALLOWED,
        `application ${stream.request.app} is not in this connector's configuration (revision ${appsRevision ?? 'none'}); it may not have pulled the latest configuration yet`,
      );
      return;
    }
    if (!stream.upgrade) {
      forwarder.forward(stream, app);
      return;
    }
    const inject = injectOrRefuse(stream, app, injectHeaders);
    if (inject) forwardUpgrade(stream, app, inject);
  };

  const readyWaiters: Array<{ n: number; resolve: () => void }> = [];
  const tunnel: TunnelClient = new TunnelClient({
    relayUrl: opts.relayUrl,
    credentials: opts.credentials,
    connections: tunnelConnections,
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.pingIntervalMs !== undefined ? { pingIntervalMs: opts.pingIntervalMs } : {}),
    ...(opts.pingTimeoutMs !== undefined ? { pingTimeoutMs: opts.pingTimeoutMs } : {}),
    ...(opts.backoff ? { backoff: opts.backoff } : {}),
    version: CONNECTOR_VERSION,
    logger,
    onStream,
    onNotice: () => {
      void opts.config.refresh?.().catch((err: unknown) => logger.warn({ err }, 'configuration pull failed'));
    },
    onFatal: (error) => opts.onFatal?.(error),
    onStateChange: () => {
      opts.onStateChange?.();
      const ready = tunnel.readyCount;
      for (const w of [...readyWaiters]) {
        if (ready >= w.n) {
          readyWaiters.splice(readyWaiters.indexOf(w), 1);
          w.resolve();
        }
      }
    },
  });
  tunnel.start();

  return {
    tunnel,
    waitReady(n = 1) {
      if (tunnel.readyCount >= n) return Promise.resolve();
      return new Promise((resolve) => readyWaiters.push({ n, resolve }));
    },
    async close(graceMs) {
      await tunnel.stop(graceMs);
      await forwarder.close();
    },
  };
}
