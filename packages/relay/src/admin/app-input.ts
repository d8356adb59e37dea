/**
 * The body of `POST /v1/apps` and `PATCH /v1/apps/:ref`, checked field by
 * field into what the store keeps. Defaults come from @drawbridge/shared.
 */
import { DEFAULT_APP_LIMITS, DEFAULT_APP_TIMEOUTS, type AppConfig, type AppLimits, type AppTimeouts, type Preauth } from '@drawbridge/shared';
import type { AppPatch, NewApp, Store } from '../store/index.ts';
import { asAssignments, asExternalHost, asHeaderRules, asHostHeader, asInternalUrl } from './app-rules.ts';
import { AdminError, AdminErrorCode, invalid } from './errors.ts';
import { groupOfInput } from './resolve.ts';
import { asBoolean, asDuration, asName, asSize, readObject, requireField, type Input } from './validate.ts';

export const APP_FIELDS = [
  'name',
  'externalHost',
  'internalUrl',
  'group',
  'preauth',
  'hostHeader',
  'headers',
  'assignments',
  'timeouts',
  'limits',
  'insecureSkipVerify',
  'denyRobots',
  'bearerAudience',
] as const;

const PREAUTH: readonly Preauth[] = ['oidc', 'local', 'passthrough'];
/** Pre-authentication by default: publishing an app must not make it public by accident. */
export const DEFAULT_PREAUTH: Preauth = 'local';
export const DEFAULT_GROUP = 'default';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function asPreauth(value: unknown): Preauth {
  if (!PREAUTH.includes(value as Preauth)) throw invalid(AdminErrorCode.invalidField, `"preauth" must be one of ${PREAUTH.join(', ')}`);
  return value as Preauth;
}

function asTimeouts(value: unknown, base: AppTimeouts): AppTimeouts {
  const input = readObject(value, ['connectMs', 'headMs', 'idleMs', 'totalMs'], 'timeouts');
  return {
    connectMs: input.connectMs === undefined ? base.connectMs : asDuration(input.connectMs, 'timeouts.connectMs', 100, 10 * 60_000),
    headMs: input.headMs === undefined ? base.headMs : asDuration(input.headMs, 'timeouts.headMs', 1000, DAY),
    idleMs: input.idleMs === undefined ? base.idleMs : asDuration(input.idleMs, 'timeouts.idleMs', 0, DAY),
    totalMs: input.totalMs === undefined ? base.totalMs : asTotal(input.totalMs),
  };
}

/** 0 (none), or a whole exchange's longest duration: at least a second, at most a week. */
function asTotal(value: unknown): number {
  const ms = asDuration(value, 'timeouts.totalMs', 0, 7 * DAY);
  if (ms !== 0 && ms < 1000) throw invalid(AdminErrorCode.invalidDuration, '"timeouts.totalMs" must be 0 (no limit) or from 1s to 7d');
  return ms;
}

function asLimits(value: unknown, base: AppLimits): AppLimits {
  const input = readObject(value, ['maxRequestBodyBytes'], 'limits');
  return { maxRequestBodyBytes: input.maxRequestBodyBytes === undefined ? base.maxRequestBodyBytes : asSize(input.maxRequestBodyBytes, 'limits.maxRequestBodyBytes') };
}

/** The fields present in `input`, checked; `current` supplies the base of nested objects on update. */
async function readFields(store: Store, input: Input, current: AppConfig | null): Promise<AppPatch> {
  const out: AppPatch = {};
  if (input.name !== undefined) out.name = asName(input.name, 'name');
  if (input.externalHost !== undefined) out.externalHost = asExternalHost(input.externalHost, 'externalHost');
  if (input.internalUrl !== undefined) out.internalUrl = asInternalUrl(input.internalUrl, 'internalUrl');
  if (input.group !== undefined) out.group = (await groupOfInput(store, asName(input.group, 'group'), 'group')).id;
  if (input.preauth !== undefined) out.preauth = asPreauth(input.preauth);
  if (input.hostHeader !== undefined) out.hostHeader = input.hostHeader === null ? null : asHostHeader(input.hostHeader, 'hostHeader');
  if (input.headers !== undefined) out.headers = asHeaderRules(input.headers, 'headers');
  if (input.assignments !== undefined) out.assignments = asAssignments(input.assignments, 'assignments');
  if (input.timeouts !== undefined) out.timeouts = asTimeouts(input.timeouts, current?.timeouts ?? DEFAULT_APP_TIMEOUTS);
  if (input.limits !== undefined) out.limits = asLimits(input.limits, current?.limits ?? DEFAULT_APP_LIMITS);
  if (input.insecureSkipVerify !== undefined) out.insecureSkipVerify = asBoolean(input.insecureSkipVerify, 'insecureSkipVerify');
  if (input.denyRobots !== undefined) out.denyRobots = asBoolean(input.denyRobots, 'denyRobots');
  if (input.bearerAudience !== undefined) {
    if (input.bearerAudience === null) out.bearerAudience = null;
    else if (typeof input.bearerAudience !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(input.bearerAudience)) {
      throw invalid(AdminErrorCode.invalidField, '"bearerAudience" must be the audience (1 to 256 printable characters, no spaces) that bearer tokens for this app carry, or null');
    } else out.bearerAudience = input.bearerAudience;
  }
  return out;
}

/** 409 when another app has the name or the host (the store re-checks in its transaction). */
async function checkUnique(store: Store, fields: AppPatch, selfId: string | null): Promise<void> {
  if (fields.name !== undefined) {
    const other = await store.getAppByName(fields.name);
    if (other && other.id !== selfId) throw new AdminError(409, AdminErrorCode.nameTaken, `an application named "${fields.name}" already exists; choose another name`);
  }
  if (fields.externalHost !== undefined) {
    const other = await store.findAppByHost(fields.externalHost);
    if (other && other.id !== selfId) {
      throw new AdminError(409, AdminErrorCode.hostTaken, `host ${fields.externalHost} is already published by application "${other.name}"; each external host serves one application`);
    }
  }
}

export async function readNewApp(store: Store, body: unknown): Promise<NewApp> {
  const input = readObject(body, APP_FIELDS);
  for (const key of ['name', 'externalHost', 'internalUrl']) requireField(input, key);
  const fields = await readFields(store, input, null);
  await checkUnique(store, fields, null);
  return {
    name: fields.name!,
    externalHost: fields.externalHost!,
    internalUrl: fields.internalUrl!,
    group: fields.group ?? (await store.ensureGroup(DEFAULT_GROUP)).id,
    preauth: fields.preauth ?? DEFAULT_PREAUTH,
    hostHeader: fields.hostHeader ?? null,
    headers: fields.headers ?? [],
    assignments: fields.assignments ?? [],
    timeouts: fields.timeouts ?? { ...DEFAULT_APP_TIMEOUTS },
    limits: fields.limits ?? { ...DEFAULT_APP_LIMITS },
    insecureSkipVerify: fields.insecureSkipVerify ?? false,
    denyRobots: fields.denyRobots ?? true,
    bearerAudience: fields.bearerAudience ?? null,
  };
}

export async function readAppPatch(store: Store, body: unknown, current: AppConfig): Promise<AppPatch> {
  const input = readObject(body, APP_FIELDS);
  if (Object.keys(input).length === 0) throw invalid(AdminErrorCode.missingField, `nothing to change; send at least one of ${APP_FIELDS.join(', ')}`);
  const fields = await readFields(store, input, current);
  await checkUnique(store, fields, current.id);
  return fields;
}
