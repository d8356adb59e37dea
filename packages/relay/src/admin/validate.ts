/**
 * Reading request bodies and queries field by field. Every check throws a 400
 * `AdminError` whose message names the field (`timeouts.headMs`) and the rule.
 * Unknown fields are refused, so a typo never silently does nothing.
 */
import { formatDuration, parseDuration, parseSize } from '@drawbridge/shared';
import { AdminErrorCode, invalid } from './errors.ts';

export type Input = Record<string, unknown>;

/** `value` as an object with only `allowed` keys. */
export function readObject(value: unknown, allowed: readonly string[], where = 'request body'): Input {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(AdminErrorCode.invalidField, `${where} must be a JSON object`);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw invalid(AdminErrorCode.unknownField, `unknown field ${qualify(where, key)}; allowed: ${allowed.join(', ')}`);
    }
  }
  return value as Input;
}

function qualify(where: string, key: string): string {
  return where === 'request body' ? `"${key}"` : `"${where}.${key}"`;
}

export function requireField(input: Input, key: string, where = 'request body'): unknown {
  const value = input[key];
  if (value === undefined || value === null) throw invalid(AdminErrorCode.missingField, `missing field ${qualify(where, key)}`);
  return value;
}

export function asString(value: unknown, field: string, maxLength = 1024): string {
  if (typeof value !== 'string') throw invalid(AdminErrorCode.invalidField, `"${field}" must be a string`);
  if (value.length > maxLength) throw invalid(AdminErrorCode.invalidField, `"${field}" must be at most ${maxLength} characters`);
  return value;
}

export function asBoolean(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw invalid(AdminErrorCode.invalidField, `"${field}" must be true or false`);
  return value;
}

export function asInteger(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(AdminErrorCode.invalidField, `"${field}" must be a whole number from ${min} to ${max}`);
  }
  return value;
}

export function asArray(value: unknown, field: string, maxItems: number): unknown[] {
  if (!Array.isArray(value)) throw invalid(AdminErrorCode.invalidField, `"${field}" must be an array`);
  if (value.length > maxItems) throw invalid(AdminErrorCode.invalidField, `"${field}" may hold at most ${maxItems} entries`);
  return value;
}

/** The result of `parse`, or `undefined` where it throws. */
function attempt<T>(parse: () => T): T | undefined {
  try {
    return parse();
  } catch {
    return undefined;
  }
}

/** Milliseconds from `85s`-style text or a number of milliseconds, within bounds. */
export function asDuration(value: unknown, field: string, min: number, max: number): number {
  const ms = typeof value === 'string' || typeof value === 'number' ? attempt(() => parseDuration(value)) : undefined;
  if (ms === undefined) {
    throw invalid(AdminErrorCode.invalidDuration, `"${field}" must be a duration like 250ms, 85s, 10m, 1h, 7d or a number of milliseconds`);
  }
  if (ms < min || ms > max) {
    throw invalid(AdminErrorCode.invalidDuration, `"${field}" must be from ${formatDuration(min)} to ${formatDuration(max)}`);
  }
  return ms;
}

/** Bytes from `10MiB`-style text or a number of bytes. */
export function asSize(value: unknown, field: string): number {
  const bytes = typeof value === 'string' || typeof value === 'number' ? attempt(() => parseSize(value)) : undefined;
  if (bytes === undefined || !Number.isSafeInteger(bytes)) {
    throw invalid(AdminErrorCode.invalidSize, `"${field}" must be a size like 16KiB, 10MiB, 1GiB or a number of bytes`);
  }
  return bytes;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Names of groups and applications: what operators type on the command line. */
export function asName(value: unknown, field: string): string {
  const s = asString(value, field, 256);
  if (!NAME.test(s)) {
    throw invalid(AdminErrorCode.invalidName, `"${field}" must be 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit; got ${JSON.stringify(s)}`);
  }
  return s;
}

const TIME_MAX = 8.64e15;

/** A point in time from ISO 8601 text or epoch milliseconds (query parameters). */
export function parseTime(value: string, field: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isSafeInteger(ms) || ms > TIME_MAX) {
    throw invalid(AdminErrorCode.invalidQuery, `"${field}" must be an ISO 8601 time (2025-01-31T12:00:00Z) or epoch milliseconds`);
  }
  return ms;
}

export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
