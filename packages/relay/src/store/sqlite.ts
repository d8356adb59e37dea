/**
 * The embedded store: one SQLite file in the data dir (WAL mode, foreign keys
 * on, busy timeout). One DatabaseSync connection serves the whole process, so
 * calls are queued one at a time and a transaction keeps the connection until
 * it ends; change events are delivered in-process.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { DrawbridgeError } from '@drawbridge/shared';
import { StoreConflictError, StoreInvalidError, StoreSchemaTooNewError, StoreUnavailableError } from './errors.ts';
import { SqlStore } from './sql-store.ts';
import { backgroundErrorHandler, ChangeHub, type Migration, type Row, type SqlDriver, type SqlTransaction, type SqlValue } from './sql.ts';
import type { ChangeEvent, ChangeListener, Store } from './types.ts';

const BUSY_TIMEOUT_MS = 5_000;

/** Append only: a released migration never changes; a new one goes at the end. */
export const sqliteMigrations: readonly Migration[] = [
  {
    name: 'initial schema',
    sql: `
      CREATE TABLE ca (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        key_pem TEXT NOT NULL,
        cert_pem TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE connector_groups (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE connectors (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        group_id TEXT NOT NULL REFERENCES connector_groups (id) ON DELETE CASCADE,
        version TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_seen_at INTEGER,
        revoked_at INTEGER
      );
      CREATE INDEX connectors_group_id ON connectors (group_id);
      CREATE TABLE connector_certificates (
        serial TEXT PRIMARY KEY,
        connector_id TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
        not_before INTEGER NOT NULL,
        not_after INTEGER NOT NULL,
        revoked_at INTEGER
      );
      CREATE INDEX connector_certificates_connector_id ON connector_certificates (connector_id);
      CREATE TABLE registration_tokens (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        group_id TEXT REFERENCES connector_groups (id) ON DELETE SET NULL,
        expires_at INTEGER NOT NULL,
        uses_left INTEGER NOT NULL CHECK (uses_left >= 0),
        created_at INTEGER NOT NULL
      );
      CREATE INDEX registration_tokens_group_id ON registration_tokens (group_id);
      CREATE TABLE apps (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        external_host TEXT NOT NULL,
        internal_url TEXT NOT NULL,
        group_id TEXT NOT NULL REFERENCES connector_groups (id) ON DELETE RESTRICT,
        preauth TEXT NOT NULL,
        host_header TEXT,
        headers TEXT NOT NULL,
        assignments TEXT NOT NULL,
        connect_timeout_ms INTEGER NOT NULL,
        head_timeout_ms INTEGER NOT NULL,
        idle_timeout_ms INTEGER NOT NULL,
        max_request_body_bytes INTEGER NOT NULL,
        insecure_skip_verify INTEGER NOT NULL,
        deny_robots INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX apps_external_host ON apps (lower(external_host));
      CREATE INDEX apps_group_id ON apps (group_id);
      CREATE TABLE users (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        group_names TEXT NOT NULL,
        disabled INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE audit_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        occurred_at INTEGER NOT NULL,
        type TEXT NOT NULL,
        actor TEXT,
        app TEXT,
        connector TEXT,
        address TEXT,
        request_id TEXT,
        outcome TEXT NOT NULL,
        details TEXT NOT NULL
      );
      CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );
    `,
  },
  {
    name: 'apps: audience accepted from bearer tokens',
    sql: 'ALTER TABLE apps ADD COLUMN bearer_audience TEXT;',
  },
  {
    name: 'sign-in failures shared by every relay',
    sql: `
      CREATE TABLE sign_in_failures (
        key TEXT NOT NULL,
        failed_at INTEGER NOT NULL
      );
      CREATE INDEX sign_in_failures_key ON sign_in_failures (key, failed_at);
      CREATE INDEX sign_in_failures_failed_at ON sign_in_failures (failed_at);
    `,
  },
  {
    name: 'apps: total timeout of an exchange',
    sql: 'ALTER TABLE apps ADD COLUMN total_timeout_ms INTEGER NOT NULL DEFAULT 0;',
  },
];

export interface SqliteStoreOptions {
  /** Clock for created/updated times; `Date.now` by default. */
  now?: () => number;
  /** Errors thrown by change listeners; rethrown as uncaught when absent. */
  onError?: (err: unknown) => void;
}

/** Opens (creating and migrating when needed) the SQLite store in `file`, with mode 0600. */
export async function openSqliteStore(file: string, options: SqliteStoreOptions = {}): Promise<Store> {
  return new SqlStore(SqliteDriver.open(file, backgroundErrorHandler(options.onError)), options.now ?? Date.now);
}

interface TxContext {
  tx: SqlTransaction;
  active: boolean;
}

class SqliteDriver implements SqlDriver {
  readonly kind = 'sqlite' as const;
  readonly #file: string;
  readonly #db: DatabaseSync;
  readonly #hub: ChangeHub;
  readonly #statements = new Map<string, StatementSync>();
  /** Which transaction, if any, the current async call chain runs inside. */
  readonly #context = new AsyncLocalStorage<TxContext>();
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(file: string, db: DatabaseSync, hub: ChangeHub) {
    this.#file = file;
    this.#db = db;
    this.#hub = hub;
  }

  static open(file: string, onError: (err: unknown) => void): SqliteDriver {
    let db: DatabaseSync;
    try {
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      db = new DatabaseSync(file, { enableForeignKeyConstraints: true, timeout: BUSY_TIMEOUT_MS });
      // The CA key lives here: owner only. SQLite gives -wal and -shm the same mode.
      chmodSync(file, 0o600);
      db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
      db.exec('PRAGMA foreign_keys = ON');
    } catch (err) {
      throw new StoreUnavailableError(
        `cannot open the SQLite database ${file}: ${(err as Error).message}; check that the data dir is writable by this user`,
        { cause: err },
      );
    }
    try {
      migrate(db, file);
    } catch (err) {
      db.close();
      throw err instanceof DrawbridgeError ? err : mapError(err, file);
    }
    return new SqliteDriver(file, db, new ChangeHub(onError));
  }

  all(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    return this.#exclusive(() => this.#all(sql, params));
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.#exclusive(() => this.#run(sql, params));
  }

  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    const outer = this.#context.getStore();
    // A store call made from inside a transaction (an issue callback) joins it.
    if (outer?.active) return fn(outer.tx);
    return this.#exclusive(async () => {
      const events: ChangeEvent[] = [];
      const tx: SqlTransaction = {
        all: async (sql, params = []) => this.#all(sql, params),
        run: async (sql, params = []) => this.#run(sql, params),
        lock: async () => {},
        forUpdate: '',
        notify: (event) => events.push(event),
      };
      const context: TxContext = { tx, active: true };
      this.#exec('BEGIN IMMEDIATE');
      let result: T;
      try {
        result = await this.#context.run(context, () => fn(tx));
        this.#exec('COMMIT');
      } catch (err) {
        if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
        throw err;
      } finally {
        context.active = false;
      }
      for (const event of events) this.#hub.emit(event);
      return result;
    });
  }

  async ping(): Promise<void> {
    await this.all('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#tail;
    this.#db.close();
  }

  subscribe(listener: ChangeListener): () => void {
    return this.#hub.subscribe(listener);
  }

  /** Runs `fn` when every earlier call has finished, or at once inside the running transaction. */
  #exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.#context.getStore()?.active) return Promise.resolve().then(fn);
    if (this.#closed) return Promise.reject(new StoreUnavailableError(`the store on ${this.#file} is closed`));
    const result = this.#tail.then(fn);
    this.#tail = result.then(
      () => {},
      () => {},
    );
    return result;
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql.replace(/\$(\d+)/g, '?$1'));
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #all(sql: string, params: readonly SqlValue[]): Row[] {
    try {
      return this.#statement(sql).all(...params.map(toSqlite));
    } catch (err) {
      throw mapError(err, this.#file);
    }
  }

  #run(sql: string, params: readonly SqlValue[]): number {
    try {
      return Number(this.#statement(sql).run(...params.map(toSqlite)).changes);
    } catch (err) {
      throw mapError(err, this.#file);
    }
  }

  #exec(sql: string): void {
    try {
      this.#db.exec(sql);
    } catch (err) {
      throw mapError(err, this.#file);
    }
  }
}

function toSqlite(value: SqlValue): SQLInputValue {
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value ?? null;
}

/** Applies the migrations this database lacks, all in one write transaction. */
function migrate(db: DatabaseSync, file: string): void {
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const row = db.prepare('SELECT coalesce(max(version), 0) AS version FROM schema_migrations').get() as { version: number };
    if (row.version > sqliteMigrations.length) {
      throw new StoreSchemaTooNewError(
        `the database ${file} has schema version ${row.version} but this relay knows only up to ${sqliteMigrations.length}; upgrade the relay`,
      );
    }
    const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (let version = row.version + 1; version <= sqliteMigrations.length; version++) {
      const migration = sqliteMigrations[version - 1]!;
      db.exec(migration.sql);
      record.run(version, migration.name, Date.now());
    }
    db.exec('COMMIT');
  } catch (err) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

const SQLITE_CONSTRAINT = 19;
const SQLITE_CONSTRAINT_FOREIGNKEY = 787;
const SQLITE_CONSTRAINT_UNIQUE = 2067;
const SQLITE_CONSTRAINT_PRIMARYKEY = 1555;
/** BUSY, LOCKED, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, NOTADB: the file, not the request, is the problem. */
const UNAVAILABLE = new Set([5, 6, 8, 10, 11, 13, 14, 26]);

function mapError(err: unknown, file: string): unknown {
  if (err instanceof DrawbridgeError) return err;
  const { code, errcode } = err as { code?: unknown; errcode?: unknown };
  if (code !== 'ERR_SQLITE_ERROR' || typeof errcode !== 'number') return err;
  const message = (err as Error).message;
  switch (errcode) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return new StoreConflictError('a name, host or serial that must be unique is already taken; reload and retry', { cause: err });
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return new StoreConflictError('the object refers to, or is used by, another that changed meanwhile; reload and retry', { cause: err });
  }
  if ((errcode & 0xff) === SQLITE_CONSTRAINT) return new StoreInvalidError(`value refused by the database: ${message}`, { cause: err });
  if (UNAVAILABLE.has(errcode & 0xff)) {
    return new StoreUnavailableError(
      `the SQLite database ${file} is unavailable (${message}); check disk space, permissions, and that no other program holds it locked`,
      { cause: err },
    );
  }
  return err;
}
