export type * from './types.ts';
export * from './errors.ts';
export { hashToken, newId, type IdPrefix } from './ids.ts';
export { openStore, SQLITE_FILE, type OpenStoreOptions } from './open.ts';
export { openSqliteStore, type SqliteStoreOptions } from './sqlite.ts';
export { openPostgresStore, type PostgresStoreOptions } from './postgres.ts';
