/**
 * Which tunnel connections serve which connector group, and the bounded wait
 * queue for requests that find no capacity. Routing spreads streams over a
 * group's connectors and packs them onto each connector's connections (see
 * `pick`).
 */
import { DrawbridgeError, type Session } from '@drawbridge/shared';

/** One live tunnel connection of a connector. */
export interface TunnelConnection {
  readonly id: string;
  readonly connectorId: string;
  readonly connectorName: string;
  readonly groupId: string;
  /** Serial of the client certificate this connection authenticated with. */
  readonly serial: string;
  /** Connector software version, as announced at the upgrade. */
  readonly version: string | undefined;
  readonly remoteAddress: string;
  readonly connectedAt: number;
  readonly session: Session;
  /** Closes the connection (revocation, shutdown). */
  close(code: number, reason: string): void;
}

export interface QueueLimits {
  /** Requests that may wait per group; beyond that they are refused at once. */
  maxLength: number;
  /** How long a request waits for capacity before it gets 503. */
  maxWaitMs: number;
}

interface Waiter {
  use(conn: TunnelConnection): void;
  fail(err: DrawbridgeError): void;
}

interface Group {
  conns: TunnelConnection[];
  waiters: Waiter[];
  rotate: number;
}

export class TunnelRegistry {
  private readonly groups = new Map<string, Group>();
  private readonly limits: QueueLimits;
  /** Observers (metrics, tests). */
  onQueueWait?: (groupId: string, waitedMs: number, ok: boolean) => void;

  constructor(limits: QueueLimits) {
    this.limits = limits;
  }

  add(conn: TunnelConnection): void {
    this.group(conn.groupId).conns.push(conn);
    this.capacityChanged(conn.groupId);
  }

  remove(conn: TunnelConnection): void {
    const g = this.groups.get(conn.groupId);
    if (!g) return;
    g.conns = g.conns.filter((c) => c !== conn);
  }

  /** Every live connection, optionally of one connector. */
  connections(connectorId?: string): TunnelConnection[] {
    const out: TunnelConnection[] = [];
    for (const g of this.groups.values()) for (const c of g.conns) if (!connectorId || c.connectorId === connectorId) out.push(c);
    return out;
  }

  /** Whether any open tunnel of the group is connected here (busy or not). */
  serves(groupId: string): boolean {
    return this.groups.get(groupId)?.conns.some((c) => c.session.isOpen) ?? false;
  }

  /** Groups with at least one connection that takes new streams. */
  servedGroups(): string[] {
    const out: string[] = [];
    for (const [id, g] of this.groups) if (g.conns.some((c) => c.session.acceptsStreams)) out.push(id);
    return out;
  }

  /** Requests waiting now, per group. */
  queueLengths(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [id, g] of this.groups) out.set(id, g.waiters.length);
    return out;
  }

  /** A connection of the group gained capacity (stream ended, connection joined). */
  capacityChanged(groupId: string): void {
    const g = this.groups.get(groupId);
    while (g && g.waiters.length > 0) {
      const conn = this.pick(g);
      if (!conn) return;
      g.waiters.shift()!.use(conn);
    }
  }

  /**
   * Runs `use` with the least-loaded connection of `groupId`, now or when one
   * has capacity. `use` runs synchronously with the pick, so it can open its
   * stream before anyone else sees the same free slot.
   */
  acquire(groupId: string, use: (conn: TunnelConnection) => void, signal?: AbortSignal): Promise<void> {
    const g = this.group(groupId);
    if (g.waiters.length === 0) {
      const conn = this.pick(g);
      if (conn) {
        use(conn);
        return Promise.resolve();
      }
    }
    if (g.waiters.length >= this.limits.maxLength) {
      return Promise.reject(new DrawbridgeError('ERR_QUEUE_FULL', `the request queue of connector group ${groupId} is full (${this.limits.maxLength} waiting)`));
    }
    return new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const i = g.waiters.indexOf(waiter);
        if (i >= 0) g.waiters.splice(i, 1);
      };
      const waiter: Waiter = {
        use: (conn) => {
          done();
          this.onQueueWait?.(groupId, Date.now() - started, true);
          try {
            use(conn);
            resolve();
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        },
        fail: (err) => {
          done();
          this.onQueueWait?.(groupId, Date.now() - started, false);
          reject(err);
        },
      };
      const onAbort = (): void => waiter.fail(new DrawbridgeError('ERR_CLIENT_GONE', 'the client went away while the request waited'));
      const timer = setTimeout(() => {
        const connected = g.conns.length > 0;
        waiter.fail(
          new DrawbridgeError(
            connected ? 'ERR_NO_CAPACITY' : 'ERR_NO_CONNECTOR',
            connected
              ? `every connection of connector group ${groupId} was busy for ${this.limits.maxWaitMs} ms`
              : `no connector of group ${groupId} connected within ${this.limits.maxWaitMs} ms`,
          ),
        );
      }, this.limits.maxWaitMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      g.waiters.push(waiter);
    });
  }

  /** Fails everything waiting (shutdown). */
  failAll(err: DrawbridgeError): void {
    for (const g of this.groups.values()) for (const w of [...g.waiters]) w.fail(err);
  }

  private group(id: string): Group {
    let g = this.groups.get(id);
    if (!g) {
      g = { conns: [], waiters: [], rotate: 0 };
      this.groups.set(id, g);
    }
    return g;
  }

  /**
   * The connection for a new stream. First the connector: the one with the
   * fewest open streams, so a group's connectors share the load (ties
   * rotate). Then, among that connector's connections, the busiest one that
   * carries no bulk stream: small requests packed onto one connection leave
   * in fewer, larger tunnel writes on both sides (about an eighth less CPU
   * per request than spreading them), and stay out of the queue behind a
   * bulk transfer's window. A connector whose every connection carries bulk
   * gets the one with the fewest open streams.
   */
  private pick(g: Group): TunnelConnection | undefined {
    const n = g.conns.length;
    let connector: string | undefined;
    let least = Infinity;
    for (let k = 0; k < n; k++) {
      const c = g.conns[(g.rotate + k) % n]!;
      if (!c.session.acceptsStreams || c.connectorId === connector) continue;
      const open = this.connectorStreams(g, c.connectorId);
      if (open < least) {
        least = open;
        connector = c.connectorId;
      }
    }
    if (connector === undefined) return undefined;
    g.rotate = (g.rotate + 1) % Math.max(1, n);
    let packed: TunnelConnection | undefined;
    let spread: TunnelConnection | undefined;
    for (const c of g.conns) {
      if (c.connectorId !== connector || !c.session.acceptsStreams) continue;
      if (c.session.bulkStreams === 0 && (!packed || c.session.openStreams > packed.session.openStreams)) packed = c;
      if (!spread || c.session.openStreams < spread.session.openStreams) spread = c;
    }
    return packed ?? spread;
  }

  private connectorStreams(g: Group, connectorId: string): number {
    let open = 0;
    for (const c of g.conns) if (c.connectorId === connectorId && c.session.acceptsStreams) open += c.session.openStreams;
    return open;
  }
}
