/**
 * The small SQL surface the store is written against. SQLite and PostgreSQL
 * each implement it once (`sqlite.ts`, `postgres.ts`); everything above it
 * (`sql-store.ts`) is dialect-neutral SQL with `$1`, `$2` … placeholders.
 */
import type { ChangeEvent, ChangeListener } from './types.ts';

export type SqlValue = string | number | boolean | null;
export type Row = Record<string, unknown>;

export interface SqlExecutor {
  /** The rows of a statement (SELECT, or a write with RETURNING). */
  all(sql: string, params?: readonly SqlValue[]): Promise<Row[]>;
  /** Runs a write; returns how many rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

export interface SqlTransaction extends SqlExecutor {
  /**
   * Serializes this transaction, until it ends, with every other transaction
   * taking the same named lock (a PostgreSQL advisory lock; a no-op on SQLite,
   * whose write transactions are serial already).
   */
  lock(name: string): Promise<void>;
  /** Appended to a SELECT to lock its rows until the end of the transaction: ` FOR UPDATE`, or `` on SQLite. */
  readonly forUpdate: string;
  /** Publishes the event if, and once, the transaction commits. */
  notify(event: ChangeEvent): void;
}

export interface SqlDriver extends SqlExecutor {
  readonly kind: 'sqlite' | 'postgres';
  /** Runs `fn` in a transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlTransaction) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
  subscribe(listener: ChangeListener): () => void;
}

/** One schema migration: `version` is its position in the list, counting from 1. */
export interface Migration {
  name: string;
  sql: string;
}

/** Fans change events out to in-process listeners; a throwing listener does not stop the others. */
export class ChangeHub {
  readonly #listeners = new Set<ChangeListener>();
  readonly #onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  subscribe(listener: ChangeListener): () => void {
    // Wrap so that subscribing one function twice yields two independent subscriptions.
    const entry: ChangeListener = (event) => listener(event);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  emit(event: ChangeEvent): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.#onError(err);
      }
    }
  }
}

/** Reports background errors nobody awaits: to the caller's handler, or as an uncaught exception. */
export function backgroundErrorHandler(onError: ((err: unknown) => void) | undefined): (err: unknown) => void {
  return (err) => {
    if (onError) onError(err);
    else
      queueMicrotask(() => {
        throw err;
      });
  };
}

/** The first row of a statement, if any. */
export async function first(db: SqlExecutor, sql: string, params: readonly SqlValue[]): Promise<Row | undefined> {
  const rows = await db.all(sql, params);
  return rows[0];
}

/** A patch without its `undefined` members, so spreading it keeps the current values. */
export function definedOnly<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<T>;
}
