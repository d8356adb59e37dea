/**
 * `drawbridge-relay serve`: the composition root of a running relay. Opens the
 * store, sets up the CA, starts the public, connector and admin listeners and
 * wires the parts together. No routing, sign-in or queueing logic lives here.
 */
import { EventEmitter } from 'node:events';
import { watch } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { createAdminServer } from '../admin/index.ts';
import { ensureAdminCredential } from '../admin/credential.ts';
import { createAccessGate } from '../auth/index.ts';
import { exchangeRecorder } from './access-log.ts';
import { relayLogger } from './log-destination.ts';
import { type Cluster, clusterFor } from './cluster.ts';
import { trustedProxies } from '../proxy/client-info.ts';
import { MemoryCatalog } from '../catalog.ts';
import { createRelayMetrics } from '../metrics.ts';
import { type Relay, startRelay } from '../relay.ts';
import { type NewAuditEvent, openStore, type Store } from '../store/index.ts';
import type { RelayConfig } from './config.ts';
import { createConnectorApi } from './connector-api.ts';
import { storeAuthenticator } from './connector-auth.ts';
import { setupPki } from './pki.ts';
import { syncWithStore } from './sync.ts';

export interface RunningRelay {
  relay: Relay;
  store: Store;
  adminUrl: string;
  connectorUrl: string;
  caPin: string;
  logger: Logger;
  /** Emits `open` and `close` with each TunnelConnection as tunnels come and go, and `tls-reloaded` after a certificate reload. */
  events: EventEmitter;
  /** Other relays on the same PostgreSQL store (inert on SQLite). */
  cluster: Cluster;
  stop(): Promise<void>;
}

export interface ServeOptions {
  logger?: Logger;
  now?: () => number;
}

function listenHttp(server: http.Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Starts a relay from a validated configuration. */
export async function startServe(config: RelayConfig, options: ServeOptions = {}): Promise<RunningRelay> {
  const logger = options.logger ?? relayLogger(config.log.level);
  const now = options.now ?? Date.now;
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const store = await openStore(config.database ?? config.dataDir);
  const audit = async (event: NewAuditEvent): Promise<void> => {
    try {
      await store.appendAudit(event);
    } catch (err) {
      logger.error({ err, type: event.type }, 'writing an audit event failed');
    }
  };
  try {
    const pki = await setupPki(config, store, logger);
    const adminToken = await ensureAdminCredential(config.dataDir);
    // The relay starts last; parts built before it reach it through this slot.
    const live: { relay?: Relay } = {};
    const events = new EventEmitter();
    // Scrapes come every few seconds; the store is asked at most once a minute.
    let expiries: { at: number; value: Promise<Map<string, number>> } | undefined;
    const certificateExpiries = (): Promise<Map<string, number>> => {
      if (!expiries || now() - expiries.at > 60_000) {
        const value = (async () => {
          const out = new Map<string, number>();
          for (const c of await store.listConnectors()) {
            if (c.revokedAt !== null) continue;
            const certs = (await store.listCertificates(c.id)).filter((x) => x.revokedAt === null);
            if (certs.length > 0) out.set(c.id, Math.max(...certs.map((x) => x.notAfter)));
          }
          return out;
        })();
        expiries = { at: now(), value };
        value.catch(() => (expiries = undefined));
      }
      return expiries.value;
    };
    const metrics = createRelayMetrics(() => live.relay?.registry, certificateExpiries);
    const catalog = new MemoryCatalog();
    const sync = syncWithStore(store, catalog, () => live.relay, logger);
    await sync.ready;

    const authenticator = storeAuthenticator({
      store,
      now,
      onRefused: (code, detail) => {
        metrics.tunnelRefused(code);
        void audit({ type: 'connector.refused', outcome: 'refused', connector: detail.connectorId ?? null, address: detail.address ?? null, details: { code, serial: detail.serial } });
      },
    });
    const connectorApi = createConnectorApi({
      store,
      ca: pki.ca,
      config,
      authenticator,
      audit: async (e) => {
        if (e.type.startsWith('connector.regist')) metrics.registration(e.outcome === 'success' ? 'success' : 'refused', typeof e.details?.code === 'string' ? e.details.code : undefined);
        await audit(e);
      },
      now,
      logger,
    });
    const cluster = await clusterFor(config, store, now, logger, () => live.relay);
    const connectorTls = await pki.connectorTls();
    const publicTls = config.public.tlsCertFile && config.public.tlsKeyFile ? { cert: await readFile(config.public.tlsCertFile, 'utf8'), key: await readFile(config.public.tlsKeyFile, 'utf8') } : undefined;
    const gate = await createAccessGate({
      store,
      catalog,
      logger,
      clock: now,
      ...(config.oidc.issuer && config.oidc.clientId
        ? {
            oidc: {
              issuer: config.oidc.issuer,
              clientId: config.oidc.clientId,
              ...(config.oidc.clientSecret ? { clientSecret: config.oidc.clientSecret } : {}),
              scopes: config.oidc.scopes,
              groupsClaim: config.oidc.groupsClaim,
              fetchUserinfo: config.oidc.fetchUserinfo,
              providerLogout: config.oidc.providerLogout,
            },
          }
        : {}),
      ...(config.auth.signInHost ? { signInHost: config.auth.signInHost } : {}),
      session: { maxAgeMs: config.auth.sessionMaxAge, keyPeriodMs: Math.max(7 * 86_400_000, config.auth.sessionMaxAge) },
      local: { perUser: config.auth.loginAttemptsPerUser, perAddress: config.auth.loginAttemptsPerAddress },
      assertion: { issuer: config.auth.assertionIssuer, ttlMs: config.auth.assertionTtl, reuseMs: config.auth.assertionReuse },
    });

    const relay = await startRelay({
      public: { host: config.public.listen.host, port: config.public.listen.port, tls: publicTls, trustedProxies: trustedProxies(config.public.trustedProxies) },
      connector: { host: config.connector.listen.host, port: config.connector.listen.port, tls: { cert: connectorTls.cert, key: connectorTls.key, ca: pki.ca.chainPem } },
      catalog,
      gate,
      relayRoutes: (req, res, requestId) => gate.routes(req, res, requestId),
      forward: (app, req, res, requestId, proto) => cluster.forward(app, req, res, requestId, proto),
      forwardUpgrade: (app, req, socket, head, requestId, proto, onStatus) => cluster.forwardUpgrade(app, req, socket, head, requestId, proto, onStatus),
      isPeerForward: (req) => cluster.isPeerForward(req),
      authenticator,
      connectorApi,
      queue: { maxLength: config.queue.maxLength, maxWaitMs: config.queue.maxWait },
      session: {
        limits: { maxFrameSize: config.tunnel.maxFrameSize, initialWindow: config.tunnel.streamWindow, maxWindow: config.tunnel.maxStreamWindow, windowBudget: config.tunnel.windowBudget, maxStreams: config.tunnel.maxStreams },
        pingIntervalMs: config.tunnel.pingInterval,
        pingTimeoutMs: config.tunnel.pingTimeout,
      },
      maxHeaderSize: config.public.maxHeaderSize,
      headersTimeoutMs: config.public.headersTimeout,
      keepAliveTimeoutMs: config.public.keepAliveTimeout,
      unreadBodyLingerMs: config.public.unreadBodyLinger,
      shutdownGraceMs: config.shutdown.grace,
      logger,
      onExchange: exchangeRecorder(metrics, logger),
      onConnection: (conn, event) => {
        events.emit(event, conn);
        cluster.changed();
        if (event === 'open') void store.touchConnector(conn.connectorId, { at: now(), ...(conn.version ? { version: conn.version } : {}) }).catch(() => undefined);
      },
    });
    live.relay = relay;
    await cluster.start(relay.publicUrl);
    relay.registry.onQueueWait = (group, waited, ok) => metrics.queueWait(group, waited, ok);
    const connectorPort = new URL(relay.connectorUrl).port;
    const connectorUrl = config.connector.url ?? `https://${formatHost(config.connector.hosts[0] ?? hostname())}:${connectorPort}`;

    // Certificates: reload the public one when its files change; renew the
    // connector listener's own well before it expires.
    const timers: Array<() => void> = [];
    if (config.public.tlsCertFile && config.public.tlsKeyFile) {
      const certFile = config.public.tlsCertFile;
      const keyFile = config.public.tlsKeyFile;
      let pending: NodeJS.Timeout | undefined;
      const reload = (): void => {
        clearTimeout(pending);
        // Certificate and key are often replaced one after the other: wait for both.
        pending = setTimeout(() => {
          Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')])
            .then(([cert, key]) => {
              relay.setTls('public', { cert, key });
              logger.info({ file: certFile }, 'public TLS certificate reloaded');
              events.emit('tls-reloaded', 'public');
            })
            .catch((err: unknown) => logger.error({ err }, 'reloading the public TLS certificate failed; still serving the previous one'));
        }, 200);
      };
      // Watch the directories, not the files: renewals replace files by renaming
      // over them (or re-pointing symlinks), and a file watch follows the old inode.
      const names = new Set([basename(certFile), basename(keyFile)]);
      const watchers = [...new Set([dirname(certFile), dirname(keyFile)])].map((dir) =>
        watch(dir, (_event, name) => {
          if (name === null || names.has(name.toString())) reload();
        }),
      );
      timers.push(() => {
        clearTimeout(pending);
        for (const w of watchers) w.close();
      });
    }
    if (!config.connector.tlsCertFile) {
      const renewIn = Math.max(60_000, (connectorTls.notAfter - now()) / 2);
      const t = setInterval(() => {
        pki.connectorTls().then(
          (tls) => relay.setTls('connector', tls),
          (err: unknown) => logger.error({ err }, 'renewing the connector listener certificate failed'),
        );
      }, Math.min(renewIn, 2 ** 31 - 1));
      t.unref();
      timers.push(() => clearInterval(t));
    }

    const admin = createAdminServer({
      store,
      config,
      caPin: pki.ca.pin,
      connectorUrl,
      registry: relay.registry,
      audit,
      now,
      logger,
      adminToken,
      async ready() {
        try {
          await store.ping();
          return true;
        } catch {
          return false;
        }
      },
      metrics: () => metrics.render(),
    });
    const adminAddr = await listenHttp(admin, config.admin.listen.host, config.admin.listen.port);
    const adminUrl = `http://${formatHost(adminAddr.address)}:${adminAddr.port}`;
    logger.info({ public: relay.publicUrl, connector: connectorUrl, admin: adminUrl, store: store.kind, caPin: pki.ca.pin }, 'relay ready');

    let stopping: Promise<void> | undefined;
    return {
      relay,
      store,
      adminUrl,
      connectorUrl,
      caPin: pki.ca.pin,
      logger,
      events,
      cluster,
      stop() {
        stopping ??= (async () => {
          for (const t of timers) t();
          sync.stop();
          gate.close();
          await cluster.stop();
          await relay.close();
          admin.closeAllConnections();
          await new Promise<void>((r) => admin.close(() => r()));
          await store.close();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** Runs until SIGINT/SIGTERM, then stops gracefully. */
export async function runServe(config: RelayConfig, options: ServeOptions = {}): Promise<void> {
  const running = await startServe(config, options);
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      running.logger.info({ signal }, 'shutting down');
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  await running.stop();
}
