/**
 * `/v1/audit`: the audit trail, filtered. `after` is a cursor: pass the
 * `next` of one answer to get only newer events (`audit --follow`).
 */
import type { AuditEvent, AuditQuery } from '../store/index.ts';
import { AdminErrorCode, invalid } from './errors.ts';
import type { Router } from './router.ts';
import { iso, parseTime } from './validate.ts';

export const DEFAULT_AUDIT_LIMIT = 100;
export const MAX_AUDIT_LIMIT = 1000;

const TEXT_FILTERS = ['type', 'actor', 'app', 'connector', 'outcome', 'requestId'] as const;
const KNOWN = new Set<string>(['after', 'before', 'since', 'until', 'limit', 'order', ...TEXT_FILTERS]);

export type AuditEventView = Omit<AuditEvent, 'at'> & { at: string | null };

function view(event: AuditEvent): AuditEventView {
  return { ...event, at: iso(event.at) };
}

function cursor(value: string, field: string): number {
  if (!/^\d{1,15}$/.test(value)) throw invalid(AdminErrorCode.invalidQuery, `"${field}" must be an event id (a whole number)`);
  return Number(value);
}

/** The store query of a request's search parameters; every parameter is checked. */
export function readAuditQuery(query: URLSearchParams): AuditQuery {
  const out: AuditQuery = {};
  for (const key of query.keys()) {
    if (!KNOWN.has(key)) throw invalid(AdminErrorCode.invalidQuery, `unknown query parameter "${key}"; allowed: ${[...KNOWN].join(', ')}`);
  }
  const get = (key: string): string | null => query.get(key);
  const after = get('after');
  const before = get('before');
  const since = get('since');
  const until = get('until');
  const limit = get('limit');
  const order = get('order');
  if (after !== null) out.afterId = cursor(after, 'after');
  if (before !== null) out.beforeId = cursor(before, 'before');
  if (since !== null) out.since = parseTime(since, 'since');
  if (until !== null) out.until = parseTime(until, 'until');
  if (limit !== null) {
    const n = /^\d{1,4}$/.test(limit) ? Number(limit) : NaN;
    if (!(n >= 1 && n <= MAX_AUDIT_LIMIT)) throw invalid(AdminErrorCode.invalidQuery, `"limit" must be a whole number from 1 to ${MAX_AUDIT_LIMIT}`);
    out.limit = n;
  } else {
    out.limit = DEFAULT_AUDIT_LIMIT;
  }
  if (order !== null) {
    if (order !== 'asc' && order !== 'desc') throw invalid(AdminErrorCode.invalidQuery, '"order" must be asc or desc');
    out.order = order;
  }
  for (const key of TEXT_FILTERS) {
    const value = get(key);
    if (value === null) continue;
    if (value === '' || value.length > 256) throw invalid(AdminErrorCode.invalidQuery, `"${key}" must be 1 to 256 characters`);
    out[key] = value;
  }
  return out;
}

export function auditRoutes(router: Router): void {
  router.add('GET', '/v1/audit', async ({ ctx, query }) => {
    const q = readAuditQuery(query);
    // Operators name apps; events record their id.
    if (q.app !== undefined) q.app = (await ctx.store.getAppByName(q.app))?.id ?? q.app;
    const events = await ctx.store.listAudit(q);
    const maxId = events.reduce((m, e) => Math.max(m, e.id), q.afterId ?? 0);
    return { status: 200, body: { events: events.map(view), next: maxId } };
  });
}
