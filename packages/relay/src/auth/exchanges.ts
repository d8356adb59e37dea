/**
 * The exchanges of signed-in users that are open right now (a long download,
 * a server-sent event stream, a WebSocket), so that sign-out, disabling a user
 * or removing an assignment can close them at once instead of letting them
 * run on. An exchange leaves when its response or socket closes; closing one
 * destroys the client side, and the proxy's own close handling resets the
 * tunnel stream, so nothing here touches the tunnel.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { UserIdentity } from './identity.ts';

export interface ActiveExchange {
  appId: string;
  identity: UserIdentity;
  requestId: string;
  close(): void;
}

export interface ExchangeFilter {
  sid?: string;
  /** Local user id or provider subject. */
  sub?: string;
  appId?: string;
}

interface Entry extends ActiveExchange {
  /** Position in `all`; -1 once removed. */
  at: number;
}

/**
 * An array whose removals move the last entry into the gap, not a `Set`: a
 * `Set` that gains and loses an entry per request keeps closed entries, and
 * with them their responses, reachable from the tables it replaced until a
 * full collection (see shared/src/session/stream-table.ts).
 */
export class ActiveExchanges {
  private readonly all: Entry[] = [];

  /** Tracks the exchange of `target` until it closes. */
  track(target: ServerResponse | Duplex, appId: string, identity: UserIdentity, requestId: string): void {
    const entry: Entry = { appId, identity, requestId, close: () => target.destroy(), at: this.all.length };
    this.all.push(entry);
    target.once('close', () => this.remove(entry));
  }

  get size(): number {
    return this.all.length;
  }

  /** Open exchanges matching every field of `filter`. */
  select(filter: ExchangeFilter = {}): ActiveExchange[] {
    const out: ActiveExchange[] = [];
    for (const e of this.all) {
      if (filter.sid !== undefined && e.identity.sid !== filter.sid) continue;
      if (filter.sub !== undefined && e.identity.sub !== filter.sub) continue;
      if (filter.appId !== undefined && e.appId !== filter.appId) continue;
      out.push(e);
    }
    return out;
  }

  /** Closes the matching exchanges; returns how many. */
  close(filter: ExchangeFilter): number {
    const chosen = this.select(filter);
    for (const e of chosen) this.closeOne(e);
    return chosen.length;
  }

  closeOne(e: ActiveExchange): void {
    this.remove(e as Entry);
    e.close();
  }

  private remove(e: Entry): void {
    if (e.at < 0 || this.all[e.at] !== e) return;
    const last = this.all.pop()!;
    if (last !== e) {
      this.all[e.at] = last;
      last.at = e.at;
    }
    e.at = -1;
  }
}
