/**
 * Several relays on one PostgreSQL store: presence records and forwarding to
 * the relay that holds a tunnel of the right group. With SQLite (one relay)
 * this is inert.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AppConfig } from '@drawbridge/shared';
import type { Logger } from 'pino';
import { Agent } from 'undici';
import { forwardToPeer, forwardUpgradeToPeer, isForwardedByPeer } from '../cluster/forward.ts';
import { NodePresence } from '../cluster/presence.ts';
import type { Relay } from '../relay.ts';
import type { Store } from '../store/index.ts';
import type { RelayConfig } from './config.ts';

export interface Cluster {
  start(publicUrl: string): Promise<void>;
  changed(): void;
  forward(app: AppConfig, req: IncomingMessage, res: ServerResponse, requestId: string, proto: 'http' | 'https'): boolean;
  forwardUpgrade(app: AppConfig, req: IncomingMessage, socket: Duplex, head: Buffer, requestId: string, proto: 'http' | 'https', onStatus: (status: number) => void): boolean;
  isPeerForward(req: IncomingMessage): boolean;
  /** Peer relays known to serve `groupId` now. */
  peersFor(groupId: string): Array<{ id: string; url: string }>;
  /** Emits `peers` whenever the view of the other relays is refreshed. */
  readonly events: EventEmitter;
  stop(): Promise<void>;
}

const inert: Cluster = {
  events: new EventEmitter(),
  peersFor: () => [],
  start: async () => undefined,
  changed: () => undefined,
  forward: () => false,
  forwardUpgrade: () => false,
  isPeerForward: () => false,
  stop: async () => undefined,
};

export async function clusterFor(config: RelayConfig, store: Store, now: () => number, logger: Logger, relay: () => Relay | undefined): Promise<Cluster> {
  if (store.kind !== 'postgres') return inert;
  const secret = await store.setSettingIfAbsent('cluster.forwardSecret', randomBytes(32).toString('base64url'));
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 256 });
  let presence: NodePresence | undefined;
  const events = new EventEmitter();
  return {
    events,
    peersFor: (groupId) => presence?.peersFor(groupId) ?? [],
    async start(publicUrl) {
      const host = config.public.listen.host;
      const advertiseUrl = config.cluster.advertiseUrl ?? (host === '0.0.0.0' || host === '::' ? undefined : publicUrl);
      if (!advertiseUrl) {
        logger.warn('several relays share the store but cluster.advertiseUrl is not set: requests for groups whose tunnels are on another relay will wait here instead of being forwarded');
        return;
      }
      presence = new NodePresence({ store, advertiseUrl, groups: () => relay()?.registry.servedGroups() ?? [], now, logger });
      presence.on('peers', (peers) => events.emit('peers', peers));
      await presence.start();
      logger.info({ node: presence.id, advertiseUrl }, 'relay cluster presence started');
    },
    changed: () => presence?.changed(),
    forward(app, req, res, requestId, proto) {
      const peer = presence?.peersFor(app.group)[0];
      if (!presence || !peer) return false;
      forwardToPeer({ nodeId: presence.id, secret, dispatcher, logger, now }, app, req, res, requestId, proto, peer.url);
      return true;
    },
    forwardUpgrade(app, req, socket, head, requestId, proto, onStatus) {
      const peer = presence?.peersFor(app.group)[0];
      if (!presence || !peer) return false;
      forwardUpgradeToPeer({ nodeId: presence.id, secret, dispatcher, logger, now }, app, req, socket, head, requestId, proto, peer.url, onStatus);
      return true;
    },
    isPeerForward: (req) => isForwardedByPeer(secret, req, now()),
    async stop() {
      await presence?.stop();
      await dispatcher.close();
    },
  };
}
