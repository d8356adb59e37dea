/**
 * `drawbridge-connector run`: a registered connector at work. Reads its state
 * dir, pulls configuration, keeps its tunnels open, renews its certificate at
 * the rotation age and writes a status file for `drawbridge-connector status`.
 */
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DrawbridgeError } from '@drawbridge/shared';
import { type ConnectorConfig } from '@drawbridge/shared';
import { pino, type Logger } from 'pino';
import { CONNECTOR_VERSION, type Connector, startConnector } from './agent.ts';
import { ConfigPuller } from './config-puller.ts';
import { generateIdentity, needsRotation, readState, type StateFiles, writeStateFiles } from './identity/index.ts';
import { serveConnectorMetrics } from './metrics.ts';
import { RelayClient } from './relay-api.ts';

export const STATUS_FILE = 'status.json';

export interface ServiceOptions {
  stateDir: string;
  logger?: Logger;
  /** Clock for rotation decisions (tests move it forward). */
  now?: () => number;
  backoff?: { initialMs: number; maxMs: number };
  /** Serve /metrics and /healthz on this local address (`127.0.0.1:9464`). */
  metricsListen?: { host: string; port: number } | undefined;
}

export interface ConnectorStatus {
  pid: number;
  relayUrl: string;
  connectorId: string | undefined;
  group: string | undefined;
  configRevision: string | undefined;
  lastConfigPullAt: number | undefined;
  lastConfigError: string | undefined;
  connections: Array<{ index: number; state: string; since?: number; openStreams: number }>;
  /** Where `run --metrics-listen` serves /metrics. */
  metricsUrl?: string | undefined;
  updatedAt: number;
}

export interface RunningConnector {
  connector: Connector;
  puller: ConfigPuller;
  state(): StateFiles;
  /** Renews the certificate now (what the rotation age triggers). */
  rotate(): Promise<void>;
  /** Resolves when the relay refuses this connector for good (revoked, unknown). */
  readonly fatal: Promise<DrawbridgeError>;
  /** Records where metrics are served, for the status file. */
  setMetricsUrl(url: string): void;
  stop(graceMs?: number): Promise<void>;
}

export async function startService(opts: ServiceOptions): Promise<RunningConnector> {
  const logger = opts.logger ?? pino({ name: 'drawbridge-connector' });
  const now = opts.now ?? Date.now;
  let state = await readState(opts.stateDir);
  // Registered with a pin: trust only the relay's CA from now on. Registered
  // without one: the relay has a publicly trusted certificate; keep trusting
  // the system store, which survives the operator renewing that certificate.
  const trust = (s: StateFiles): { cert: string; key: string; ca?: string } => ({ cert: s.cert, key: s.key, ...(s.caPin ? { ca: s.ca } : {}) });
  const client = new RelayClient(state.relayUrl, trust(state), CONNECTOR_VERSION);
  // Set once the tunnels start; rotation before that only updates the files.
  const live: { connector?: Connector; metricsUrl?: string } = {};
  let rotating: Promise<void> | undefined;

  const rotate = (): Promise<void> => {
    rotating ??= (async () => {
      const identity = await generateIdentity();
      const renewed = await client.renew(identity.csrPem);
      const next: StateFiles = { ...state, key: identity.keyPem, cert: renewed.certificate, ca: renewed.caChain };
      await writeStateFiles(opts.stateDir, next);
      state = next;
      client.setCredentials(trust(next));
      live.connector?.tunnel.rotate(trust(next));
      logger.info({ notAfter: new Date(renewed.notAfter).toISOString() }, 'certificate renewed');
    })().finally(() => (rotating = undefined));
    return rotating;
  };

  const puller = new ConfigPuller({
    client: () => client,
    stateDir: opts.stateDir,
    logger,
    onPulled: async (config: ConnectorConfig) => {
      if (needsRotation(state.cert, new Date(now()), config.rotationAgeMs)) {
        try {
          await rotate();
        } catch (err) {
          logger.error({ err: (err as Error).message }, 'certificate renewal failed; will retry on the next configuration pull');
        }
      }
    },
  });
  await puller.start();

  let writing = false;
  let writeAgain = false;
  const writeStatus = async (): Promise<void> => {
    if (writing) {
      writeAgain = true;
      return;
    }
    writing = true;
    try {
      const config = puller.current();
      const status: ConnectorStatus = {
        pid: process.pid,
        relayUrl: state.relayUrl,
        connectorId: config?.connectorId ?? state.connectorId,
        group: config?.group.name,
        configRevision: config?.revision,
        lastConfigPullAt: puller.lastPullAt,
        lastConfigError: puller.lastError,
        connections: live.connector?.tunnel.status() ?? [],
        metricsUrl: live.metricsUrl,
        updatedAt: Date.now(),
      };
      const file = join(opts.stateDir, STATUS_FILE);
      await writeFile(`${file}.tmp`, JSON.stringify(status, null, 2), { mode: 0o600 });
      await rename(`${file}.tmp`, file);
    } catch (err) {
      logger.debug({ err }, 'writing the status file failed');
    } finally {
      writing = false;
      if (writeAgain) {
        writeAgain = false;
        void writeStatus();
      }
    }
  };

  const fatal = Promise.withResolvers<DrawbridgeError>();
  const connector = startConnector({
    relayUrl: state.relayUrl,
    credentials: trust(state),
    config: puller,
    logger,
    ...(opts.backoff ? { backoff: opts.backoff } : {}),
    onFatal: (err) => fatal.resolve(err),
    onStateChange: () => void writeStatus(),
  });
  live.connector = connector;
  const statusTimer = setInterval(() => void writeStatus(), 5_000);
  statusTimer.unref();
  void writeStatus();

  return {
    connector,
    puller,
    state: () => state,
    rotate,
    async stop(graceMs) {
      clearInterval(statusTimer);
      puller.stop();
      await connector.close(graceMs);
      await client.close();
    },
    fatal: fatal.promise,
    setMetricsUrl(url) {
      live.metricsUrl = url;
      void writeStatus();
    },
  };
}

/**
 * Exit status when the relay refuses this connector for good (revoked,
 * unknown, foreign or expired certificate): restarting cannot help, so service
 * managers should not (systemd: RestartPreventExitStatus=3).
 */
export const EXIT_REFUSED = 3;

/** Runs until SIGINT/SIGTERM (exit 0) or a final refusal (EXIT_REFUSED, with the reason on stderr). */
export async function runService(opts: ServiceOptions): Promise<number> {
  const running = await startService(opts);
  const metrics = opts.metricsListen ? await serveConnectorMetrics(running, opts.metricsListen.host, opts.metricsListen.port) : undefined;
  if (metrics) running.setMetricsUrl(metrics.url);
  const outcome = await new Promise<DrawbridgeError | undefined>((resolve) => {
    const onSignal = (): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(undefined);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    void running.fatal.then(resolve);
  });
  await metrics?.close();
  await running.stop();
  if (outcome) {
    process.stderr.write(`drawbridge-connector: ${outcome.message} (${outcome.code})\n`);
    return EXIT_REFUSED;
  }
  return 0;
}
