/**
 * Header-based single sign-on rules and the identity that fills them. Both
 * sides need the same reading of a rule: the relay checks that the headers of
 * a request will fit before it sends the request (and records the failure in
 * its audit trail), the connector builds the headers it injects. Pure
 * functions, no Node imports.
 */
import { DrawbridgeError } from '../protocol/errors.ts';
import type { HeaderList } from '../protocol/frames.ts';
import type { HeaderRule } from './types.ts';

/** Who the user is, as the relay established it, in the shape rules read. */
export interface SsoIdentity {
  /** Stable subject: a local user id (`usr_…`) or the provider's `sub`. */
  sub: string;
  email?: string;
  name?: string;
  groups?: string[];
  /** Further claims of the identity token that rules name with `{claim:NAME}`. */
  claims?: Record<string, ClaimValue>;
}

export type ClaimValue = string | number | boolean | string[];

/** Meta entry (tunnel REQUEST frame) that carries the identity as JSON. */
export const META_IDENTITY = 'identity';
/** Meta entry that carries the relay-signed assertion JWT. */
export const META_ASSERTION = 'assertion';
/** Header the connector sets from `META_ASSERTION`. */
export const ASSERTION_HEADER = 'x-drawbridge-assertion';
/** Default bound on one rendered header value, in bytes. */
export const DEFAULT_SSO_HEADER_MAX_BYTES = 8 * 1024;

export const SsoErrorCode = {
  /** A rule's name or template cannot be used (unknown placeholder, reserved name). */
  ruleInvalid: 'ERR_SSO_RULE_INVALID',
  /** A rendered value is larger than the header limit; never truncated. */
  headerTooLarge: 'ERR_SSO_HEADER_TOO_LARGE',
  /** A claim holds characters a header cannot carry (CR, LF, other controls). */
  headerInvalid: 'ERR_SSO_HEADER_INVALID',
} as const;

export class SsoRuleError extends DrawbridgeError {
  /** Name of the header rule that failed. */
  readonly header: string;
  constructor(code: string, header: string, message: string) {
    super(code, message);
    this.header = header;
  }
}

type Part = { text: string } | { field: 'email' | 'sub' | 'name' | 'groups' } | { claim: string };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const PLACEHOLDER = /\{([^{}]*)\}/g;
/** Names a rule may not set: the relay and the connector own them. */
const RESERVED = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'keep-alive', 'te', 'trailer', 'cookie', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded']);
const parsed = new Map<string, Part[]>();

function parseTemplate(rule: HeaderRule): Part[] {
  const cached = parsed.get(rule.value);
  if (cached) return cached;
  const parts: Part[] = [];
  let last = 0;
  for (const m of rule.value.matchAll(PLACEHOLDER)) {
    if (m.index > last) parts.push({ text: rule.value.slice(last, m.index) });
    const inner = m[1]!;
    if (inner === 'email' || inner === 'sub' || inner === 'name' || inner === 'groups') parts.push({ field: inner });
    else if (inner.startsWith('claim:') && inner.length > 6) parts.push({ claim: inner.slice(6) });
    else throw new SsoRuleError(SsoErrorCode.ruleInvalid, rule.name, `header rule ${rule.name}: unknown placeholder {${inner}}; use {email}, {sub}, {name}, {groups} or {claim:NAME}`);
    last = m.index + m[0].length;
  }
  if (last < rule.value.length) parts.push({ text: rule.value.slice(last) });
  for (const p of parts) {
    if ('text' in p && /[{}]/.test(p.text)) throw new SsoRuleError(SsoErrorCode.ruleInvalid, rule.name, `header rule ${rule.name}: unbalanced brace in ${JSON.stringify(rule.value)}`);
  }
  if (parsed.size > 10_000) parsed.clear();
  parsed.set(rule.value, parts);
  return parts;
}

/**
 * Throws `ERR_SSO_RULE_INVALID` unless the rule can be used: a valid header
 * name that neither the relay nor the connector owns, a template with known
 * placeholders only. Call it where rules enter the system (CLI, admin API).
 *
 * @example validateHeaderRule({ name: 'X-Remote-User', value: '{email}' });
 */
export function validateHeaderRule(rule: HeaderRule): void {
  const lower = rule.name.toLowerCase();
  if (!TOKEN.test(rule.name)) throw new SsoRuleError(SsoErrorCode.ruleInvalid, rule.name, `header rule name ${JSON.stringify(rule.name)} is not a valid HTTP field name`);
  if (RESERVED.has(lower) || lower.startsWith('x-drawbridge-')) throw new SsoRuleError(SsoErrorCode.ruleInvalid, rule.name, `header ${rule.name} is set by Drawbridge itself and cannot be a rule`);
  parseTemplate(rule);
  if (/[\0\r\n]/.test(rule.value)) throw new SsoRuleError(SsoErrorCode.ruleInvalid, rule.name, `header rule ${rule.name}: the template has a control character`);
}

/** What of the identity an app's rules read, so only that travels and is stored. */
export function rulesNeed(rules: readonly HeaderRule[]): { groups: boolean; claims: Set<string> } {
  const out = { groups: false, claims: new Set<string>() };
  for (const rule of rules) {
    let parts: Part[];
    try {
      parts = parseTemplate(rule);
    } catch {
      continue;
    }
    for (const p of parts) {
      if ('field' in p && p.field === 'groups') out.groups = true;
      else if ('claim' in p) out.claims.add(p.claim);
    }
  }
  return out;
}

function claimText(v: ClaimValue | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return v.length > 0 ? v.join(',') : undefined;
  const s = String(v);
  return s === '' ? undefined : s;
}

function fieldText(identity: SsoIdentity, part: Part): string | undefined {
  if ('text' in part) return part.text;
  if ('claim' in part) return claimText(identity.claims?.[part.claim]);
  if (part.field === 'groups') return identity.groups && identity.groups.length > 0 ? identity.groups.join(',') : undefined;
  const v = identity[part.field];
  return v === undefined || v === '' ? undefined : v;
}

/** UTF-8 bytes as a Latin-1 string: what Node and undici put on the wire byte for byte. */
function toWire(s: string): string {
  let ascii = true;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7e) ascii = false;
  if (ascii) return s;
  let out = '';
  for (const b of new TextEncoder().encode(s)) out += String.fromCharCode(b);
  return out;
}

/**
 * The headers the rules produce for `identity`, in rule order. A rule whose
 * placeholders have no value (no email claim, say) yields no header at all,
 * never an empty one. Values are sent as UTF-8 bytes. Throws `SsoRuleError`
 * with `ERR_SSO_HEADER_TOO_LARGE` when a value exceeds `maxBytes` (never
 * truncated), `ERR_SSO_HEADER_INVALID` when a claim holds a control character,
 * `ERR_SSO_RULE_INVALID` for a rule that cannot be parsed.
 *
 * @example
 * renderHeaderRules([{ name: 'X-Remote-User', value: '{email}' }], { sub: 'u1', email: 'ada@example.com' });
 * // [['X-Remote-User', 'ada@example.com']]
 */
export function renderHeaderRules(rules: readonly HeaderRule[], identity: SsoIdentity, maxBytes = DEFAULT_SSO_HEADER_MAX_BYTES): HeaderList {
  const out: HeaderList = [];
  for (const rule of rules) {
    let value = '';
    let complete = true;
    for (const part of parseTemplate(rule)) {
      const text = fieldText(identity, part);
      if (text === undefined) {
        complete = false;
        break;
      }
      value += text;
    }
    if (!complete) continue;
    // eslint-disable-next-line no-control-regex -- controls are exactly what must not reach a header
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) {
      throw new SsoRuleError(SsoErrorCode.headerInvalid, rule.name, `header ${rule.name}: the identity's value contains a control character`);
    }
    const wire = toWire(value);
    if (wire.length > maxBytes) {
      throw new SsoRuleError(SsoErrorCode.headerTooLarge, rule.name, `header ${rule.name} would be ${wire.length} bytes, over the limit of ${maxBytes}; it is not sent truncated`);
    }
    out.push([rule.name, wire]);
  }
  return out;
}

/** JSON with every non-ASCII character escaped: meta values travel as Latin-1. */
export function encodeIdentityMeta(identity: SsoIdentity): string {
  return JSON.stringify(identity).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function isClaimValue(v: unknown): v is ClaimValue {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
}

/** The identity from a meta value, or undefined when it is absent or malformed. */
export function decodeIdentityMeta(value: string | undefined): SsoIdentity | undefined {
  if (value === undefined) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const o = raw as Record<string, unknown>;
  if (typeof o.sub !== 'string') return undefined;
  const id: SsoIdentity = { sub: o.sub };
  if (typeof o.email === 'string') id.email = o.email;
  if (typeof o.name === 'string') id.name = o.name;
  if (Array.isArray(o.groups)) id.groups = o.groups.filter((g): g is string => typeof g === 'string');
  if (typeof o.claims === 'object' && o.claims !== null) {
    id.claims = {};
    for (const [k, v] of Object.entries(o.claims)) if (isClaimValue(v)) id.claims[k] = v;
  }
  return id;
}
