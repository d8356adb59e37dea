/**
 * Keeps the running relay in step with its store: the in-memory app catalog,
 * change notices to connectors, and revocations closing live tunnels. With
 * PostgreSQL the events come from every relay on the database.
 */
import { CloseCode } from '@drawbridge/shared';
import type { Logger } from 'pino';
import type { MemoryCatalog } from '../catalog.ts';
import type { Relay } from '../relay.ts';
import type { ChangeEvent, Store } from '../store/index.ts';

export interface StoreSync {
  /** Loads the catalog; resolves when it is current. */
  ready: Promise<void>;
  stop(): void;
}

export function syncWithStore(store: Store, catalog: MemoryCatalog, relay: () => Relay | undefined, logger: Logger): StoreSync {
  let reloading: Promise<void> | undefined;
  let again = false;
  const reload = (): Promise<void> => {
    if (reloading) {
      again = true;
      return reloading;
    }
    reloading = (async () => {
      do {
        again = false;
        catalog.replace(await store.listApps());
      } while (again);
    })()
      .catch((err: unknown) => logger.error({ err }, 'reloading applications from the store failed'))
      .finally(() => (reloading = undefined));
    return reloading;
  };

  const closeWhere = (match: (c: { connectorId: string; serial: string }) => boolean, why: string): void => {
    for (const conn of relay()?.registry.connections() ?? []) {
      if (match(conn)) {
        logger.warn({ connector: conn.connectorId, connection: conn.id }, why);
        conn.close(CloseCode.REVOKED, why);
      }
    }
  };

  const onChange = (event: ChangeEvent): void => {
    switch (event.type) {
      case 'apps-changed':
        void reload().then(() => relay()?.notifyConfigChanged(event.groupId));
        return;
      case 'group-changed':
        relay()?.notifyConfigChanged(event.groupId);
        return;
      case 'connector-revoked':
        closeWhere((c) => c.connectorId === event.connectorId, 'connector revoked');
        return;
      case 'certificate-revoked':
        closeWhere((c) => c.serial === event.serial, 'certificate revoked');
        return;
      case 'resync':
        void reload().then(() => relay()?.notifyConfigChanged());
        return;
      default:
        return;
    }
  };
  const unsubscribe = store.subscribe(onChange);
  return { ready: reload(), stop: unsubscribe };
}
