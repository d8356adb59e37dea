import { join } from 'node:path';
import { openPostgresStore, type PostgresStoreOptions } from './postgres.ts';
import { openSqliteStore } from './sqlite.ts';
import type { Store } from './types.ts';

/** File name of the embedded store inside the data dir. */
export const SQLITE_FILE = 'drawbridge.db';

export type OpenStoreOptions = PostgresStoreOptions;

/**
 * Opens the relay's store: PostgreSQL for a `postgres://` or `postgresql://`
 * URL, otherwise SQLite in `<dataDir>/drawbridge.db`. Migrates the schema
 * before returning. Throws `ERR_STORE_UNAVAILABLE` when the database cannot be
 * reached or opened, `ERR_STORE_SCHEMA_TOO_NEW` when a newer relay migrated it.
 *
 * @example
 * const store = await openStore(config.databaseUrl ?? config.dataDir);
 * const stop = store.subscribe((event) => { if (event.type === 'apps-changed') notifyGroup(event.groupId); });
 */
export async function openStore(target: string, options: OpenStoreOptions = {}): Promise<Store> {
  if (/^postgres(ql)?:\/\//i.test(target)) return openPostgresStore(target, options);
  return openSqliteStore(join(target, SQLITE_FILE), options);
}
