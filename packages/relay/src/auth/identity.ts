/**
 * The signed-in user as the access check sees them, whether they may use an
 * application, and what of them travels to the connector.
 */
import { type AppConfig, encodeIdentityMeta, type HeaderList, META_ASSERTION, META_IDENTITY, renderHeaderRules, rulesNeed, type SsoIdentity } from '@drawbridge/shared';
import type { LocalUser } from '../store/types.ts';
import type { SessionData } from './sessions.ts';

export type SignInMethod = 'oidc' | 'local' | 'bearer';

export interface UserIdentity extends SsoIdentity {
  method: SignInMethod;
  /** Session id; absent for bearer tokens. */
  sid?: string;
}

/** How pages and the audit name the account: the email, else the name, else the subject. */
export function accountName(identity: UserIdentity): string {
  return identity.email ?? identity.name ?? identity.sub;
}

/** Assigning `group:*` lets every signed-in user in. */
export const EVERYONE = '*';

export function localIdentity(user: LocalUser, sid?: string): UserIdentity {
  const id: UserIdentity = { method: 'local', sub: user.id, name: user.name, groups: [...user.groups] };
  if (user.name.includes('@')) id.email = user.name;
  if (sid !== undefined) id.sid = sid;
  return id;
}

export function sessionIdentity(session: SessionData): UserIdentity {
  const id: UserIdentity = { method: session.kind, sub: session.sub, sid: session.sid };
  if (session.email !== undefined) id.email = session.email;
  if (session.name !== undefined) id.name = session.name;
  if (session.groups !== undefined) id.groups = session.groups;
  if (session.claims !== undefined) id.claims = session.claims;
  return id;
}

/**
 * Whether the user may use the app. `user:ID` matches the subject (local user
 * id or provider `sub`), the email case-insensitively, or a local user's name;
 * `group:ID` matches a group name or the provider's group value. Display names
 * never match: users can often choose them.
 */
export function isAssigned(app: AppConfig, id: UserIdentity): boolean {
  const email = id.email?.toLowerCase();
  for (const a of app.assignments) {
    if (a.kind === 'group') {
      if (a.id === EVERYONE || id.groups?.includes(a.id)) return true;
    } else if (a.id === id.sub || (email !== undefined && a.id.toLowerCase() === email) || (id.method === 'local' && a.id === id.name)) {
      return true;
    }
  }
  return false;
}

/** Only what the app's rules read travels: the request head must fit one tunnel frame. */
export function forwardedIdentity(app: AppConfig, id: UserIdentity): SsoIdentity {
  const need = rulesNeed(app.headers);
  const out: SsoIdentity = { sub: id.sub };
  if (id.email !== undefined) out.email = id.email;
  if (id.name !== undefined) out.name = id.name;
  if (need.groups && id.groups) out.groups = id.groups;
  if (need.claims.size > 0 && id.claims) {
    out.claims = {};
    for (const c of need.claims) if (id.claims[c] !== undefined) out.claims[c] = id.claims[c];
  }
  return out;
}

/**
 * The meta entries of the tunnel REQUEST frame. Renders the app's rules once
 * here so a value too large for a header fails at the relay with an audit
 * event (`SsoRuleError`), not silently at the connector.
 */
export function identityMeta(app: AppConfig, forwarded: SsoIdentity, assertion: string, maxHeaderBytes: number): HeaderList {
  renderHeaderRules(app.headers, forwarded, maxHeaderBytes);
  return [
    [META_IDENTITY, encodeIdentityMeta(forwarded)],
    [META_ASSERTION, assertion],
  ];
}

const stripCache = new WeakMap<AppConfig, ReadonlySet<string>>();
/** Lower-case names of the app's rule headers: client copies never reach the app. */
export function ruleHeaderNames(app: AppConfig): ReadonlySet<string> {
  let names = stripCache.get(app);
  if (!names) {
    names = new Set(app.headers.map((r) => r.name.toLowerCase()));
    stripCache.set(app, names);
  }
  return names;
}
