/**
 * Row ↔ object mapping shared by both dialects. PostgreSQL returns BIGINT as
 * strings and booleans as booleans; SQLite returns numbers for both; these
 * helpers accept either.
 */
import type { AppConfig, Assignment, HeaderRule, Preauth } from '@drawbridge/shared';
import type { Row, SqlValue } from './sql.ts';
import type {
  AuditEvent,
  CaRecord,
  Connector,
  ConnectorCertificate,
  ConnectorGroup,
  LocalUser,
  NewApp,
  RegistrationToken,
} from './types.ts';

function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

function optNum(v: unknown): number | null {
  return v === null || v === undefined ? null : num(v);
}

function text(v: unknown): string {
  if (typeof v !== 'string') throw new TypeError(`expected a string column, got ${typeof v}`);
  return v;
}

function optText(v: unknown): string | null {
  return v === null || v === undefined ? null : text(v);
}

function bool(v: unknown): boolean {
  return v === true || v === 1 || v === 1n;
}

function json<T>(v: unknown): T {
  return (typeof v === 'string' ? JSON.parse(v) : v) as T;
}

export function toCa(r: Row): CaRecord {
  return { keyPem: text(r.key_pem), certPem: text(r.cert_pem), createdAt: num(r.created_at) };
}

export function toGroup(r: Row): ConnectorGroup {
  return { id: text(r.id), name: text(r.name), createdAt: num(r.created_at) };
}

export function toConnector(r: Row): Connector {
  return {
    id: text(r.id),
    name: text(r.name),
    groupId: text(r.group_id),
    version: text(r.version),
    createdAt: num(r.created_at),
    lastSeenAt: optNum(r.last_seen_at),
    revokedAt: optNum(r.revoked_at),
  };
}

export function toCertificate(r: Row): ConnectorCertificate {
  return {
    serial: text(r.serial),
    connectorId: text(r.connector_id),
    notBefore: num(r.not_before),
    notAfter: num(r.not_after),
    revokedAt: optNum(r.revoked_at),
  };
}

export function toToken(r: Row): RegistrationToken {
  return {
    id: text(r.id),
    groupId: optText(r.group_id),
    expiresAt: num(r.expires_at),
    usesLeft: num(r.uses_left),
    createdAt: num(r.created_at),
  };
}

export function toApp(r: Row): AppConfig {
  return {
    id: text(r.id),
    name: text(r.name),
    externalHost: text(r.external_host),
    internalUrl: text(r.internal_url),
    group: text(r.group_id),
    preauth: text(r.preauth) as Preauth,
    hostHeader: optText(r.host_header),
    headers: json<HeaderRule[]>(r.headers),
    assignments: json<Assignment[]>(r.assignments),
    timeouts: { connectMs: num(r.connect_timeout_ms), headMs: num(r.head_timeout_ms), idleMs: num(r.idle_timeout_ms), totalMs: num(r.total_timeout_ms) },
    limits: { maxRequestBodyBytes: num(r.max_request_body_bytes) },
    insecureSkipVerify: bool(r.insecure_skip_verify),
    denyRobots: bool(r.deny_robots),
    bearerAudience: optText(r.bearer_audience),
  };
}

/** Column values of an app, in the order of `appColumns`. */
export function appValues(app: NewApp): SqlValue[] {
  return [
    app.name,
    app.externalHost,
    app.internalUrl,
    app.group,
    app.preauth,
    app.hostHeader,
    JSON.stringify(app.headers),
    JSON.stringify(app.assignments),
    app.timeouts.connectMs,
    app.timeouts.headMs,
    app.timeouts.idleMs,
    app.timeouts.totalMs,
    app.limits.maxRequestBodyBytes,
    app.insecureSkipVerify,
    app.denyRobots,
    app.bearerAudience ?? null,
  ];
}

export const appColumns = [
  'name',
  'external_host',
  'internal_url',
  'group_id',
  'preauth',
  'host_header',
  'headers',
  'assignments',
  'connect_timeout_ms',
  'head_timeout_ms',
  'idle_timeout_ms',
  'total_timeout_ms',
  'max_request_body_bytes',
  'insecure_skip_verify',
  'deny_robots',
  'bearer_audience',
] as const;

export function toUser(r: Row): LocalUser {
  return {
    id: text(r.id),
    name: text(r.name),
    passwordHash: text(r.password_hash),
    groups: json<string[]>(r.group_names),
    disabled: bool(r.disabled),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

export function toAudit(r: Row): AuditEvent {
  return {
    id: num(r.id),
    at: num(r.occurred_at),
    type: text(r.type),
    actor: optText(r.actor),
    app: optText(r.app),
    connector: optText(r.connector),
    address: optText(r.address),
    requestId: optText(r.request_id),
    outcome: text(r.outcome),
    details: json<Record<string, unknown>>(r.details),
  };
}
