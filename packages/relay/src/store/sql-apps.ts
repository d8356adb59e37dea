/** Applications: unique name, unique external host in any case, in an existing group. */
import type { AppConfig } from '@drawbridge/shared';
import { StoreConflictError, StoreNotFoundError } from './errors.ts';
import { newId } from './ids.ts';
import { appColumns, appValues, toApp } from './rows.ts';
import { definedOnly, first, type SqlDriver, type SqlTransaction } from './sql.ts';
import type { AppPatch, NewApp } from './types.ts';
import { hostForLookup, normalizeHost, requireName } from './validate.ts';

const APP = `id, ${appColumns.join(', ')}`;

export class SqlApps {
  readonly #db: SqlDriver;
  readonly #now: () => number;

  constructor(db: SqlDriver, now: () => number) {
    this.#db = db;
    this.#now = now;
  }

  async createApp(input: NewApp): Promise<AppConfig> {
    const app = { ...input, name: requireName(input.name, 'application name'), externalHost: normalizeHost(input.externalHost) };
    return this.#db.transaction(async (tx) => {
      await checkApp(tx, app, null);
      const placeholders = appColumns.map((_, i) => `$${i + 2}`).join(', ');
      const row = await first(tx, `INSERT INTO apps (id, ${appColumns.join(', ')}, created_at, updated_at)
         VALUES ($1, ${placeholders}, $${appColumns.length + 2}, $${appColumns.length + 2}) RETURNING ${APP}`, [
        newId('app'),
        ...appValues(app),
        this.#now(),
      ]);
      const created = toApp(row!);
      tx.notify({ type: 'apps-changed', groupId: created.group, appId: created.id });
      return created;
    });
  }

  async getApp(id: string): Promise<AppConfig | null> {
    const row = await first(this.#db, `SELECT ${APP} FROM apps WHERE id = $1`, [id]);
    return row ? toApp(row) : null;
  }

  async getAppByName(name: string): Promise<AppConfig | null> {
    const row = await first(this.#db, `SELECT ${APP} FROM apps WHERE name = $1`, [name]);
    return row ? toApp(row) : null;
  }

  /** `host` may carry a port and any case (a Host header); both are ignored. */
  async findAppByHost(host: string): Promise<AppConfig | null> {
    const row = await first(this.#db, `SELECT ${APP} FROM apps WHERE lower(external_host) = $1`, [hostForLookup(host)]);
    return row ? toApp(row) : null;
  }

  async listApps(filter: { groupId?: string } = {}): Promise<AppConfig[]> {
    const rows =
      filter.groupId === undefined
        ? await this.#db.all(`SELECT ${APP} FROM apps ORDER BY name, id`)
        : await this.#db.all(`SELECT ${APP} FROM apps WHERE group_id = $1 ORDER BY name, id`, [filter.groupId]);
    return rows.map(toApp);
  }

  async updateApp(id: string, patch: AppPatch): Promise<AppConfig> {
    return this.#db.transaction(async (tx) => {
      const row = await first(tx, `SELECT ${APP} FROM apps WHERE id = $1${tx.forUpdate}`, [id]);
      if (!row) throw new StoreNotFoundError(`application ${id} not found; list applications with \`drawbridge-relay app list\``);
      const { id: _, ...current } = toApp(row);
      const merged = { ...current, ...definedOnly(patch) };
      const app = { ...merged, name: requireName(merged.name, 'application name'), externalHost: normalizeHost(merged.externalHost) };
      await checkApp(tx, app, id);
      const sets = appColumns.map((column, i) => `${column} = $${i + 2}`).join(', ');
      const updated = await first(tx, `UPDATE apps SET ${sets}, updated_at = $${appColumns.length + 2} WHERE id = $1 RETURNING ${APP}`, [
        id,
        ...appValues(app),
        this.#now(),
      ]);
      const result = toApp(updated!);
      tx.notify({ type: 'apps-changed', groupId: result.group, appId: id });
      if (current.group !== result.group) tx.notify({ type: 'apps-changed', groupId: current.group, appId: id });
      return result;
    });
  }

  async deleteApp(id: string): Promise<void> {
    await this.#db.transaction(async (tx) => {
      const row = await first(tx, 'DELETE FROM apps WHERE id = $1 RETURNING group_id', [id]);
      if (!row) throw new StoreNotFoundError(`application ${id} not found`);
      tx.notify({ type: 'apps-changed', groupId: String(row.group_id), appId: id });
    });
  }
}

/** Refuses an app whose group is missing or whose name or host another app has. */
async function checkApp(tx: SqlTransaction, app: NewApp, selfId: string | null): Promise<void> {
  if (!(await first(tx, 'SELECT 1 FROM connector_groups WHERE id = $1', [app.group]))) {
    throw new StoreNotFoundError(`connector group ${app.group} not found; create it with \`drawbridge-relay group add NAME\``);
  }
  const self = selfId ?? '';
  if (await first(tx, 'SELECT 1 FROM apps WHERE name = $1 AND id <> $2', [app.name, self])) {
    throw new StoreConflictError(`an application named "${app.name}" already exists; choose another name`);
  }
  const other = await first(tx, 'SELECT name FROM apps WHERE lower(external_host) = $1 AND id <> $2', [app.externalHost, self]);
  if (other) {
    throw new StoreConflictError(
      `host ${app.externalHost} is already published by application "${String(other.name)}"; each external host serves one application`,
    );
  }
}
