/**
 * Which relay holds tunnels of which connector group. Each relay on a shared
 * PostgreSQL store writes a small presence record (`relay-node:<id>`) with
 * the URL its peers reach it at and the groups it can serve right now,
 * refreshes it every few seconds, and reads everyone else's. Records older
 * than three refresh periods are ignored, so a relay that died drops out by
 * itself.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Store } from '../store/index.ts';

const PREFIX = 'relay-node:';

export interface PeerNode {
  id: string;
  url: string;
  groups: string[];
  at: number;
}

export interface PresenceOptions {
  store: Store;
  /** Where peers send forwarded requests: this relay's public listener. */
  advertiseUrl: string;
  /** Groups this relay can serve now (at least one tunnel that takes streams). */
  groups(): string[];
  now(): number;
  logger: Logger;
  intervalMs?: number;
}

/** Emits `peers` after every read of the other relays' records. */
export class NodePresence extends EventEmitter {
  readonly id = `rly_${randomBytes(8).toString('hex')}`;
  private readonly opts: PresenceOptions;
  private readonly interval: number;
  private timer: NodeJS.Timeout | undefined;
  private peers: PeerNode[] = [];
  private lastWritten = '';
  private lastWriteAt = 0;

  private unsubscribe: (() => void) | undefined;

  constructor(opts: PresenceOptions) {
    super();
    this.opts = opts;
    this.interval = opts.intervalMs ?? 5_000;
  }

  async start(): Promise<void> {
    // Another relay's record changed (it gained or lost a group): read again now.
    this.unsubscribe = this.opts.store.subscribe((event) => {
      if (event.type === 'setting-changed' && event.key.startsWith(PREFIX) && event.key !== PREFIX + this.id) void this.tick();
    });
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.interval);
    this.timer.unref();
  }

  /** Announce a change in served groups now rather than at the next tick. */
  changed(): void {
    void this.tick();
  }

  /** Peers (not this relay) that can serve `groupId`, freshest first. */
  peersFor(groupId: string): PeerNode[] {
    const fresh = this.opts.now() - 3 * this.interval;
    return this.peers.filter((p) => p.at >= fresh && p.groups.includes(groupId)).sort((a, b) => b.at - a.at);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.unsubscribe?.();
    await this.opts.store.deleteSetting(PREFIX + this.id).catch(() => undefined);
  }

  private async tick(): Promise<void> {
    try {
      const groups = [...new Set(this.opts.groups())].sort();
      const record = JSON.stringify({ url: this.opts.advertiseUrl, groups });
      const now = this.opts.now();
      // Rewrite when something changed, and often enough to stay fresh.
      if (record !== this.lastWritten || now - this.lastWriteAt >= this.interval) {
        await this.opts.store.setSetting(PREFIX + this.id, JSON.stringify({ url: this.opts.advertiseUrl, groups, at: now }));
        this.lastWritten = record;
        this.lastWriteAt = now;
      }
      const peers: PeerNode[] = [];
      for (const s of await this.opts.store.listSettings(PREFIX)) {
        const id = s.key.slice(PREFIX.length);
        if (id === this.id) continue;
        try {
          const v = JSON.parse(s.value) as { url: string; groups: string[]; at: number };
          peers.push({ id, url: v.url, groups: v.groups, at: v.at });
        } catch {
          // A record this version cannot read: skip it.
        }
      }
      this.peers = peers;
      this.emit('peers', peers);
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message }, 'relay presence update failed');
    }
  }
}
