/**
 * Browsers keep cookies of about 4 KiB. A provider that sends many groups or
 * claims can exceed that, so a session is sealed in the largest form that
 * fits: everything; then only the claims the app's rules read; then only the
 * groups the app's assignments and rules need. If even that does not fit,
 * sign-in fails with `ERR_SESSION_TOO_LARGE` rather than a cookie the browser
 * silently drops.
 */
import { type AppConfig, rulesNeed } from '@drawbridge/shared';
import type { SessionCodec, SessionData } from './sessions.ts';

/** Longest cookie value sealed; leaves room for the name and attributes under 4096. */
export const MAX_COOKIE_VALUE = 3800;

function variants(session: SessionData, app: AppConfig | undefined): SessionData[] {
  const out = [session];
  const need = app ? rulesNeed(app.headers) : { groups: false, claims: new Set<string>() };
  if (session.claims) {
    const claims: SessionData['claims'] = {};
    for (const c of need.claims) if (session.claims[c] !== undefined) claims[c] = session.claims[c];
    out.push({ ...session, claims });
  }
  if (app && session.groups && !need.groups) {
    const assigned = new Set(app.assignments.filter((a) => a.kind === 'group').map((a) => a.id));
    const last = out[out.length - 1]!;
    out.push({ ...last, groups: session.groups.filter((g) => assigned.has(g)) });
  }
  return out;
}

export async function fitSession(codec: SessionCodec, session: SessionData, host: string, app: AppConfig | undefined): Promise<{ session: SessionData; token: string } | undefined> {
  for (const candidate of variants(session, app)) {
    const token = await codec.sealSession(candidate, host);
    if (token.length <= MAX_COOKIE_VALUE) return { session: candidate, token };
  }
  return undefined;
}
