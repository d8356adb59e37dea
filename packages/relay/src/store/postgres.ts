/**
 * The shared store for several relays: PostgreSQL through a pg Pool. Changes
 * travel between relays by LISTEN/NOTIFY on one channel per schema: a
 * transaction NOTIFYs before COMMIT, so others hear of a change only if, and
 * once, it committed; this instance tells its own listeners directly.
 */
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { DrawbridgeError } from '@drawbridge/shared';
import { StoreConflictError, StoreInvalidError, StoreSchemaTooNewError, StoreUnavailableError } from './errors.ts';
import { PgListener } from './postgres-listener.ts';
import { SqlStore } from './sql-store.ts';
import { backgroundErrorHandler, ChangeHub, type Migration, type Row, type SqlDriver, type SqlTransaction, type SqlValue } from './sql.ts';
import type { ChangeEvent, ChangeListener, Store } from './types.ts';

/** Append only: a released migration never changes; a new one goes at the end. */
export const postgresMigrations: readonly Migration[] = [
  {
    name: 'initial schema',
    sql: `
      CREATE TABLE ca (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        key_pem TEXT NOT NULL,
        cert_pem TEXT NOT NULL,
        created_at BIGINT NOT NULL
      );
      CREATE TABLE connector_groups (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL
      );
      CREATE TABLE connectors (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        group_id TEXT NOT NULL REFERENCES connector_groups (id) ON DELETE CASCADE,
        version TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        last_seen_at BIGINT,
        revoked_at BIGINT
      );
      CREATE INDEX connectors_group_id ON connectors (group_id);
      CREATE TABLE connector_certificates (
        serial TEXT PRIMARY KEY,
        connector_id TEXT NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
        not_before BIGINT NOT NULL,
        not_after BIGINT NOT NULL,
        revoked_at BIGINT
      );
      CREATE INDEX connector_certificates_connector_id ON connector_certificates (connector_id);
      CREATE TABLE registration_tokens (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        group_id TEXT REFERENCES connector_groups (id) ON DELETE SET NULL,
        expires_at BIGINT NOT NULL,
        uses_left INTEGER NOT NULL CHECK (uses_left >= 0),
        created_at BIGINT NOT NULL
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
        headers JSONB NOT NULL,
        assignments JSONB NOT NULL,
        connect_timeout_ms BIGINT NOT NULL,
        head_timeout_ms BIGINT NOT NULL,
        idle_timeout_ms BIGINT NOT NULL,
        max_request_body_bytes BIGINT NOT NULL,
        insecure_skip_verify BOOLEAN NOT NULL,
        deny_robots BOOLEAN NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE UNIQUE INDEX apps_external_host ON apps (lower(external_host));
      CREATE INDEX apps_group_id ON apps (group_id);
      CREATE TABLE users (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        group_names JSONB NOT NULL,
        disabled BOOLEAN NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE TABLE audit_events (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        occurred_at BIGINT NOT NULL,
        type TEXT NOT NULL,
        actor TEXT,
        app TEXT,
        connector TEXT,
        address TEXT,
        request_id TEXT,
        outcome TEXT NOT NULL,
        details JSONB NOT NULL
      );
      CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at BIGINT NOT NULL
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
        failed_at BIGINT NOT NULL
      );
      CREATE INDEX sign_in_failures_key ON sign_in_failures (key, failed_at);
      CREATE INDEX sign_in_failures_failed_at ON sign_in_failures (failed_at);
    `,
  },
  {
    name: 'apps: total timeout of an exchange',
    sql: 'ALTER TABLE apps ADD COLUMN total_timeout_ms BIGINT NOT NULL DEFAULT 0;',
  },
];

export interface PostgresStoreOptions {
  /** Clock for created/updated times; `Date.now` by default. */
  now?: () => number;
  /**
   * Schema to keep the tables in, created when absent (`[a-z_][a-z0-9_]*`).
   * Default: the connection's current schema (usually `public`).
   */
  schema?: string;
  /** Keep a connection LISTENing for other relays' changes (default true; one-shot tools may skip it). */
  listen?: boolean;
  /** Most connections in the pool (default 10). */
  poolSize?: number;
  /** Background errors: idle connections failing, the notification connection dropping, throwing listeners. */
  onError?: (err: unknown) => void;
}

const RETRIES = 3;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Opens the PostgreSQL store: connects, migrates under an advisory lock (so
 * relays starting together migrate once) and starts listening for changes.
 */
export async function openPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<Store> {
  const driver = await PostgresDriver.open(url, options);
  return new SqlStore(driver, options.now ?? Date.now);
}

class PostgresDriver implements SqlDriver {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #where: string;
  readonly #schema: string;
  readonly #channel: string;
  readonly #instance = randomBytes(8).toString('hex');
  readonly #hub: ChangeHub;
  #listener: PgListener | null = null;
  #closed = false;

  private constructor(pool: pg.Pool, where: string, schema: string, hub: ChangeHub) {
    this.#pool = pool;
    this.#where = where;
    this.#schema = schema;
    this.#hub = hub;
    const channel = `drawbridge_${schema}`;
    this.#channel = channel.length <= 63 ? channel : `drawbridge_${createHash('sha256').update(schema).digest('hex').slice(0, 32)}`;
  }

  static async open(url: string, options: PostgresStoreOptions): Promise<PostgresDriver> {
    if (options.schema !== undefined && !SCHEMA_NAME.test(options.schema)) {
      throw new StoreInvalidError(`schema name "${options.schema}" must match ${String(SCHEMA_NAME)}`);
    }
    const where = describe(url);
    const onError = backgroundErrorHandler(options.onError);
    const config: pg.PoolConfig = {
      connectionString: url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
      ...(options.schema === undefined ? {} : { options: `-c search_path=${options.schema}` }),
    };
    const pool = new pg.Pool(config);
    // An idle connection that dies must not crash the relay; the next call reconnects.
    pool.on('error', (err) => options.onError?.(err));
    try {
      const schema = options.schema ?? (await currentSchema(pool, where));
      const driver = new PostgresDriver(pool, where, schema, new ChangeHub(onError));
      await driver.#migrate(options.schema !== undefined);
      if (options.listen ?? true) {
        driver.#listener = new PgListener({
          config,
          channel: driver.#channel,
          onPayload: (payload) => driver.#onPayload(payload),
          onResync: () => driver.#hub.emit({ type: 'resync' }),
          onError: (err) => options.onError?.(err),
        });
        await driver.#listener.start().catch((err: unknown) => {
          throw unavailable(err, where);
        });
      }
      return driver;
    } catch (err) {
      await pool.end().catch(() => {});
      throw err;
    }
  }

  async all(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    return (await this.#query(this.#pool, sql, params)).rows;
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return (await this.#query(this.#pool, sql, params)).rowCount ?? 0;
  }

  async transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#attempt(fn);
      } catch (err) {
        if (attempt < RETRIES && isRetryable(err)) continue;
        throw err;
      }
    }
  }

  async ping(): Promise<void> {
    await this.all('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#listener?.close();
    await this.#pool.end();
  }

  subscribe(listener: ChangeListener): () => void {
    return this.#hub.subscribe(listener);
  }

  async #attempt<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    const client = await this.#connect();
    let broken: Error | undefined;
    try {
      await this.#query(client, 'BEGIN');
      const events: ChangeEvent[] = [];
      const tx: SqlTransaction = {
        all: async (sql, params = []) => (await this.#query(client, sql, params)).rows,
        run: async (sql, params = []) => (await this.#query(client, sql, params)).rowCount ?? 0,
        lock: async (name) => {
          await this.#query(client, 'SELECT pg_advisory_xact_lock($1)', [lockKey(this.#schema, name)]);
        },
        forUpdate: ' FOR UPDATE',
        notify: (event) => events.push(event),
      };
      let result: T;
      try {
        result = await fn(tx);
        for (const event of events) {
          await this.#query(client, 'SELECT pg_notify($1, $2)', [this.#channel, JSON.stringify({ from: this.#instance, event })]);
        }
        await this.#query(client, 'COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
          broken = rollbackErr as Error;
        });
        throw err;
      }
      for (const event of events) this.#hub.emit(event);
      return result;
    } finally {
      client.release(broken);
    }
  }

  async #connect(): Promise<pg.PoolClient> {
    if (this.#closed) throw new StoreUnavailableError('the PostgreSQL store is closed');
    try {
      return await this.#pool.connect();
    } catch (err) {
      throw unavailable(err, this.#where);
    }
  }

  async #query(db: pg.Pool | pg.PoolClient, sql: string, params: readonly SqlValue[] = []): Promise<pg.QueryResult<Row>> {
    if (this.#closed && db === this.#pool) throw new StoreUnavailableError('the PostgreSQL store is closed');
    try {
      return await db.query<Row>(sql, params as SqlValue[]);
    } catch (err) {
      throw mapError(err, this.#where);
    }
  }

  #onPayload(payload: string): void {
    let message: { from?: unknown; event?: ChangeEvent };
    try {
      message = JSON.parse(payload) as typeof message;
    } catch {
      return;
    }
    if (message.from !== this.#instance && message.event) this.#hub.emit(message.event);
  }

  /** Applies missing migrations in one transaction, under an advisory lock per schema. */
  async #migrate(createSchema: boolean): Promise<void> {
    const client = await this.#connect();
    let broken: Error | undefined;
    try {
      await this.#query(client, 'BEGIN');
      try {
        await this.#query(client, 'SELECT pg_advisory_xact_lock($1)', [lockKey(this.#schema, 'migrate')]);
        if (createSchema) await this.#query(client, `CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(this.#schema)}`);
        await this.#query(
          client,
          'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
        );
        const { rows } = await this.#query(client, 'SELECT coalesce(max(version), 0) AS version FROM schema_migrations');
        const current = Number(rows[0]!.version);
        if (current > postgresMigrations.length) {
          throw new StoreSchemaTooNewError(
            `the database at ${this.#where} (schema ${this.#schema}) has schema version ${current} but this relay knows only up to ${postgresMigrations.length}; upgrade the relay`,
          );
        }
        for (let version = current + 1; version <= postgresMigrations.length; version++) {
          const migration = postgresMigrations[version - 1]!;
          await this.#query(client, migration.sql);
          await this.#query(client, 'INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
            version,
            migration.name,
            Date.now(),
          ]);
        }
        await this.#query(client, 'COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
          broken = rollbackErr as Error;
        });
        throw err;
      }
    } finally {
      client.release(broken);
    }
  }
}

async function currentSchema(pool: pg.Pool, where: string): Promise<string> {
  let rows: Row[];
  try {
    rows = (await pool.query<Row>('SELECT current_schema() AS schema')).rows;
  } catch (err) {
    throw unavailable(err, where);
  }
  const schema = rows[0]?.schema;
  if (typeof schema !== 'string') {
    throw new StoreInvalidError(`the connection to ${where} has no current schema; set one with the schema option or search_path`);
  }
  return schema;
}

/** A 64-bit advisory lock key, distinct per schema and purpose. */
function lockKey(schema: string, name: string): string {
  return createHash('sha256').update(`drawbridge:${schema}:${name}`).digest().readBigInt64BE(0).toString();
}

/** Host, port and database of a URL, never its credentials, for messages. */
function describe(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    throw new StoreInvalidError('the PostgreSQL URL is not a valid URL; expected postgres://USER@HOST:PORT/DATABASE');
  }
}

function unavailable(err: unknown, where: string): StoreUnavailableError {
  if (err instanceof StoreUnavailableError) return err;
  return new StoreUnavailableError(
    `cannot reach PostgreSQL at ${where}: ${(err as Error).message}; check the database URL, credentials and that the server is running`,
    { cause: err },
  );
}

/** SQLSTATE classes that mean the database, not the request, is the problem. */
function isUnavailableState(code: string): boolean {
  return /^(08|53|57P|28|3D)/.test(code);
}

function mapError(err: unknown, where: string): unknown {
  if (err instanceof DrawbridgeError) return err;
  if (!(err instanceof pg.DatabaseError)) {
    // pg raises plain errors only for the connection itself (terminated, timed out).
    return unavailable(err, where);
  }
  switch (err.code) {
    case '23505':
      return new StoreConflictError('a name, host or serial that must be unique is already taken; reload and retry', { cause: err });
    case '23503':
      return new StoreConflictError('the object refers to, or is used by, another that changed meanwhile; reload and retry', { cause: err });
    case '40001':
    case '40P01':
      return new StoreConflictError('the database aborted this change because of a concurrent one; retry', { cause: err });
    case '23514':
    case '23502':
    case '22P02':
    case '22003':
      return new StoreInvalidError(`value refused by the database: ${err.message}`, { cause: err });
  }
  if (err.code !== undefined && isUnavailableState(err.code)) return unavailable(err, where);
  return err;
}

function isRetryable(err: unknown): boolean {
  if (!(err instanceof StoreConflictError) || !(err.cause instanceof pg.DatabaseError)) return false;
  return err.cause.code === '40001' || err.cause.code === '40P01';
}
