/**
 * The connector's configuration: pulled from the relay at start, when the relay
 * says it changed, and periodically as a backstop. The last good copy is kept
 * on disk, so a connector restarting while the relay is briefly unreachable
 * serves with what it had.
 */
import { EventEmitter } from 'node:events';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ConnectorConfig, DrawbridgeError } from '@drawbridge/shared';
import type { Logger } from 'pino';
import type { ConfigSource } from './agent.ts';
import type { RelayClient } from './relay-api.ts';

export const CONFIG_CACHE_FILE = 'config.json';

export interface ConfigPullerOptions {
  client: () => RelayClient;
  stateDir: string;
  logger: Logger;
  /** After every successful pull (rotation checks hook in here). */
  onPulled?(config: ConnectorConfig, changed: boolean): Promise<void> | void;
}

/** Emits `config` (ConnectorConfig) whenever a pull brings a new revision. */
export class ConfigPuller extends EventEmitter implements ConfigSource {
  private config: ConnectorConfig | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Time of the last successful pull (ms), for `status`. */
  lastPullAt: number | undefined;
  lastError: string | undefined;
  private readonly opts: ConfigPullerOptions;

  constructor(opts: ConfigPullerOptions) {
    super();
    this.opts = opts;
  }

  current(): ConnectorConfig | undefined {
    return this.config;
  }

  /** First pull; falls back to the cached copy when the relay cannot be reached. */
  async start(): Promise<ConnectorConfig> {
    try {
      await this.pull();
    } catch (err) {
      const cached = await this.readCache();
      if (!cached) throw err;
      this.opts.logger.warn({ err: (err as Error).message, revision: cached.revision }, 'relay unreachable at start; serving with the cached configuration');
      this.config = cached;
    }
    this.schedule();
    return this.config!;
  }

  /** Pulls now (coalescing concurrent requests). */
  refresh(): Promise<void> {
    if (this.inflight) {
      this.again = true;
      return this.inflight;
    }
    this.inflight = (async () => {
      do {
        this.again = false;
        await this.pull();
      } while (this.again);
    })().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async pull(): Promise<void> {
    try {
      const next = await this.opts.client().pullConfig();
      const changed = next.revision !== this.config?.revision;
      this.config = next;
      this.lastPullAt = Date.now();
      this.lastError = undefined;
      if (changed) {
        await this.writeCache(next);
        this.opts.logger.info({ revision: next.revision, apps: next.apps.length }, 'configuration updated');
        this.emit('config', next);
      }
      await this.opts.onPulled?.(next, changed);
    } catch (err) {
      this.lastError = err instanceof DrawbridgeError ? `${err.code}: ${err.message}` : String(err);
      throw err;
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    const base = this.config?.pullIntervalMs ?? 300_000;
    // ±10 % jitter so a fleet restarted together does not pull in lockstep.
    const delay = Math.round(base * (0.9 + Math.random() * 0.2));
    this.timer = setTimeout(() => {
      this.refresh()
        .catch((err: unknown) => this.opts.logger.warn({ err: (err as Error).message }, 'periodic configuration pull failed; keeping the current one'))
        .finally(() => this.schedule());
    }, delay);
    this.timer.unref();
  }

  private async readCache(): Promise<ConnectorConfig | undefined> {
    try {
      return JSON.parse(await readFile(join(this.opts.stateDir, CONFIG_CACHE_FILE), 'utf8')) as ConnectorConfig;
    } catch {
      return undefined;
    }
  }

  private async writeCache(config: ConnectorConfig): Promise<void> {
    const file = join(this.opts.stateDir, CONFIG_CACHE_FILE);
    const tmp = `${file}.tmp`;
    await writeFile(tmp, JSON.stringify(config, null, 2), { mode: 0o600 });
    await rename(tmp, file);
  }
}
