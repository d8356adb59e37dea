/**
 * Checks of what an application publishes: its external host, its internal
 * URL, its header-based SSO rules and its assignments. Pure functions; each
 * refusal is a 400 with its own code.
 */
import { HOP_BY_HOP, validateHeaderRule, type Assignment, type HeaderRule } from '@drawbridge/shared';
import { AdminErrorCode, invalid } from './errors.ts';
import { asArray, asString, readObject, requireField } from './validate.ts';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** A DNS host name (lower-cased, no trailing dot), without scheme or port. */
export function asExternalHost(value: unknown, field: string): string {
  const raw = asString(value, field, 300);
  const host = raw.trim().toLowerCase().replace(/\.$/, '');
  if (host.length === 0 || host.length > 253 || !host.split('.').every((label) => LABEL.test(label))) {
    throw invalid(AdminErrorCode.invalidHost, `"${field}" must be a host name like app.example.com, without scheme, port or path; got ${JSON.stringify(raw)}`);
  }
  return host;
}

/** A Host header value for the internal app: a host name or address, with an optional port. */
export function asHostHeader(value: unknown, field: string): string {
  const raw = asString(value, field, 300);
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(raw);
  const hostOk = m && (m[1]!.startsWith('[') || m[1]!.toLowerCase().split('.').every((label) => LABEL.test(label)));
  if (!m || !hostOk || (m[2] !== undefined && Number(m[2]) > 65535)) {
    throw invalid(AdminErrorCode.invalidHost, `"${field}" must be a host name with an optional port, like intranet.corp:8080; got ${JSON.stringify(raw)}`);
  }
  return raw.toLowerCase();
}

/**
 * The URL the connector sends requests to: http or https, with a host, and
 * without credentials (which would sit in the store and in every log in clear)
 * or a fragment (which never reaches a server).
 */
export function asInternalUrl(value: unknown, field: string): string {
  const raw = asString(value, field, 2048);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid(AdminErrorCode.invalidUrl, `"${field}" is not a URL; use an absolute URL like http://10.0.0.5:8080/; got ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(AdminErrorCode.invalidUrl, `"${field}" must be an http:// or https:// URL; got ${url.protocol}`);
  }
  if (url.hostname === '') throw invalid(AdminErrorCode.invalidUrl, `"${field}" has no host`);
  if (url.username !== '' || url.password !== '') {
    throw invalid(AdminErrorCode.invalidUrl, `"${field}" must not carry a user name or password; use a header rule or the app's own sign-in`);
  }
  if (url.hash !== '') throw invalid(AdminErrorCode.invalidUrl, `"${field}" must not have a #fragment`);
  return url.toString();
}

/** Fields that describe one connection, or that the relay itself sets; a rule may not set them. */
const RESERVED_HEADERS = new Set([
  ...HOP_BY_HOP,
  'host',
  'content-length',
  'cookie',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
]);

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const SIMPLE_PLACEHOLDERS = new Set(['email', 'sub', 'name', 'groups']);

/** `{email}`-style placeholders of a rule value; throws on an unknown or unbalanced one. */
export function checkPlaceholders(value: string, field: string): void {
  let i = 0;
  while (i < value.length) {
    const open = value.indexOf('{', i);
    const close = value.indexOf('}', i);
    if (open < 0 && close < 0) return;
    if (open < 0 || (close >= 0 && close < open)) {
      throw invalid(AdminErrorCode.invalidHeaderRule, `"${field}" has a '}' without '{'; placeholders are {email}, {sub}, {name}, {groups}, {claim:NAME}`);
    }
    const end = value.indexOf('}', open);
    if (end < 0) throw invalid(AdminErrorCode.invalidHeaderRule, `"${field}" has a '{' without '}'`);
    const inner = value.slice(open + 1, end);
    if (inner.includes('{')) throw invalid(AdminErrorCode.invalidHeaderRule, `"${field}" has a '{' inside a placeholder`);
    const ok = SIMPLE_PLACEHOLDERS.has(inner) || (inner.startsWith('claim:') && inner.length > 6);
    if (!ok) {
      throw invalid(AdminErrorCode.unknownPlaceholder, `"${field}" uses unknown placeholder {${inner}}; use {email}, {sub}, {name}, {groups} or {claim:NAME}`);
    }
    i = end + 1;
  }
}

/** One SSO header rule: a valid field name the relay does not own, and a value of known placeholders. */
export function asHeaderRule(value: unknown, field: string): HeaderRule {
  const input = readObject(value, ['name', 'value'], field);
  const name = asString(requireField(input, 'name', field), `${field}.name`, 256);
  const text = asString(requireField(input, 'value', field), `${field}.value`, 4096);
  if (!TOKEN.test(name)) throw invalid(AdminErrorCode.invalidHeaderRule, `"${field}.name" is not a valid header name: ${JSON.stringify(name)}`);
  const lower = name.toLowerCase();
  if (RESERVED_HEADERS.has(lower)) {
    throw invalid(AdminErrorCode.invalidHeaderRule, `"${field}.name": ${name} is set by HTTP or by the relay and cannot be a rule${lower === 'host' ? '; use hostHeader' : ''}`);
  }
  if (lower.startsWith('x-drawbridge-')) {
    throw invalid(AdminErrorCode.invalidHeaderRule, `"${field}.name": X-Drawbridge-* headers are reserved for the relay`);
  }
  // eslint-disable-next-line no-control-regex -- a line break in a value would split the header
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(text)) {
    throw invalid(AdminErrorCode.invalidHeaderRule, `"${field}.value" must not contain control characters or line breaks`);
  }
  checkPlaceholders(text, `${field}.value`);
  const rule = { name, value: text };
  // The shared reading of rules (the connector's) has the last word.
  try {
    validateHeaderRule(rule);
  } catch (err) {
    throw invalid(AdminErrorCode.invalidHeaderRule, `"${field}": ${(err as Error).message}`);
  }
  return rule;
}

export function asHeaderRules(value: unknown, field: string): HeaderRule[] {
  const rules = asArray(value, field, 64).map((v, i) => asHeaderRule(v, `${field}[${i}]`));
  const seen = new Set<string>();
  for (const rule of rules) {
    const lower = rule.name.toLowerCase();
    if (seen.has(lower)) throw invalid(AdminErrorCode.invalidHeaderRule, `"${field}" sets ${rule.name} twice`);
    seen.add(lower);
  }
  return rules;
}

// eslint-disable-next-line no-control-regex -- an id with controls could not be matched or shown safely
const SUBJECT = /^[^\s\x00-\x1f\x7f]{1,256}$/;

/** `{kind: 'user'|'group', id}`: who may use the app. Duplicates are dropped. */
export function asAssignments(value: unknown, field: string): Assignment[] {
  const out: Assignment[] = [];
  const seen = new Set<string>();
  asArray(value, field, 1000).forEach((entry, i) => {
    const where = `${field}[${i}]`;
    const input = readObject(entry, ['kind', 'id'], where);
    const kind = requireField(input, 'kind', where);
    const id = requireField(input, 'id', where);
    if (kind !== 'user' && kind !== 'group') throw invalid(AdminErrorCode.invalidAssignment, `"${where}.kind" must be "user" or "group"`);
    if (typeof id !== 'string' || !SUBJECT.test(id)) {
      throw invalid(AdminErrorCode.invalidAssignment, `"${where}.id" must be a user or group id of 1 to 256 characters without spaces`);
    }
    const key = `${kind}:${id}`;
    if (!seen.has(key)) out.push({ kind, id });
    seen.add(key);
  });
  return out;
}
