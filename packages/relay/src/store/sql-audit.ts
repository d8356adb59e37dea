/** The audit trail: append-only events with ids that increase in commit order. */
import type { SqlDriver, SqlValue } from './sql.ts';
import { toAudit } from './rows.ts';
import type { AuditEvent, AuditQuery, NewAuditEvent } from './types.ts';
import { requireName, requireTime } from './validate.ts';

const AUDIT = 'id, occurred_at, type, actor, app, connector, address, request_id, outcome, details';
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

const filters = [
  ['type', 'type'],
  ['actor', 'actor'],
  ['app', 'app'],
  ['connector', 'connector'],
  ['outcome', 'outcome'],
  ['requestId', 'request_id'],
] as const;

export class SqlAuditLog {
  readonly #db: SqlDriver;
  readonly #now: () => number;

  constructor(db: SqlDriver, now: () => number) {
    this.#db = db;
    this.#now = now;
  }

  async append(event: NewAuditEvent): Promise<AuditEvent> {
    requireName(event.type, 'audit event type');
    requireName(event.outcome, 'audit event outcome');
    const at = event.at === undefined ? this.#now() : requireTime(event.at, 'audit event time');
    return this.#db.transaction(async (tx) => {
      // On PostgreSQL a sequence hands out ids at insert, not at commit, so an
      // `audit --follow` reading "after id N" could miss a smaller id that
      // commits late. Serializing appends makes ids visible in order.
      await tx.lock('audit');
      const rows = await tx.all(
        `INSERT INTO audit_events (occurred_at, type, actor, app, connector, address, request_id, outcome, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${AUDIT}`,
        [
          at,
          event.type,
          event.actor ?? null,
          event.app ?? null,
          event.connector ?? null,
          event.address ?? null,
          event.requestId ?? null,
          event.outcome,
          JSON.stringify(event.details ?? {}),
        ],
      );
      return toAudit(rows[0]!);
    });
  }

  async list(query: AuditQuery): Promise<AuditEvent[]> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    const add = (clause: string, value: SqlValue): void => {
      params.push(value);
      where.push(clause.replace('?', `$${params.length}`));
    };
    if (query.afterId !== undefined) add('id > ?', query.afterId);
    if (query.beforeId !== undefined) add('id < ?', query.beforeId);
    if (query.since !== undefined) add('occurred_at >= ?', query.since);
    if (query.until !== undefined) add('occurred_at < ?', query.until);
    for (const [key, column] of filters) {
      const value = query[key];
      if (value !== undefined) add(`${column} = ?`, value);
    }
    const requested = query.limit !== undefined && Number.isFinite(query.limit) ? Math.trunc(query.limit) : DEFAULT_LIMIT;
    const limit = Math.min(Math.max(requested, 1), MAX_LIMIT);
    const order = query.order === 'desc' ? 'DESC' : 'ASC';
    const sql = `SELECT ${AUDIT} FROM audit_events${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id ${order} LIMIT ${limit}`;
    return (await this.#db.all(sql, params)).map(toAudit);
  }

  async prune(before: number): Promise<number> {
    return this.#db.run('DELETE FROM audit_events WHERE occurred_at < $1', [requireTime(before, 'prune time')]);
  }
}
