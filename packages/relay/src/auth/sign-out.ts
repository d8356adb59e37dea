/**
 * Sign-out, on an app host or the central sign-in host. The relay ends its
 * session (revocation, `user.signout`, open exchanges closed, cookies cleared
 * on the app host and then the central host); then, for a browser that signed
 * in with OIDC, it sends the browser to the provider's `end_session_endpoint`
 * (OpenID Connect RP-Initiated Logout 1.0) so that the provider's session
 * ends too, and the provider sends it back to `signedout`.
 *
 * Only the user's own click ends a session: a navigation or form the browser
 * reports (Fetch Metadata) as started on this very origin or by the user
 * (`userStarted`). Anything else changes nothing, not even a cookie (a
 * cross-site POST does not carry the SameSite=Lax session cookie, yet its
 * answer could delete it): another site's link or form, another app on a
 * sibling host of the same site, an image or frame of a page here (user
 * content). It gets a page that asks, whose button posts from the relay's
 * own origin. HEAD gets that page's answer too, so that link scanners and
 * previews end nothing. With central sign-in the app host sees the user's
 * click and vouches for it to the central host with a sealed, short-lived hop
 * token bound to the session, since the redirect between them arrives from
 * another host.
 *
 * Once the session has ended, the rest (its `user.signout` record, the
 * cleared cookies, the page or redirect) must happen even if the provider
 * step fails: that step cannot throw, and its failure is only a note.
 *
 * The provider step carries the session's ID token as `id_token_hint` when the
 * relay could keep it: sealed in a cookie of the relay's own path on the host
 * that ran the sign-in, never in the session cookie. With a hint a provider
 * may end its session without asking the user, which is one more reason a
 * sign-out must be the user's own.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppConfig } from '@drawbridge/shared';
import { clientAddress } from '../proxy/http-proxy.ts';
import type { AuthContext, SessionRead, Site } from './context.ts';
import { AuthError, AuthErrorCode } from './errors.ts';
import { isSecure, originFor, readCookie, redirect, RELAY_PATH, sendHtml, serializeCookie, userStarted } from './http.ts';
import { accountName } from './identity.ts';
import { type SignedOutNote, signedOutPage, signOutConfirmPage } from './pages.ts';
import { returnTargetFor, safeReturnPath } from './redirects.ts';
import { MAX_COOKIE_VALUE } from './session-fit.ts';
import type { SessionData } from './sessions.ts';

/**
 * What became of the step to the provider, as `user.signout` records it
 * (`details.provider`; absent for local sessions): the browser was sent to
 * the provider, sent on to the central host (which takes the step), or not,
 * because the operator turned it off, the provider names no
 * `end_session_endpoint`, or it could not be reached (`details.reason`).
 */
type ProviderStep = 'redirected' | 'central' | 'off' | 'unsupported' | 'unavailable';

/** The provider step's outcome: what to record, and where the browser goes next (`redirected` only). */
interface ProviderOutcome {
  provider?: ProviderStep;
  /** The error code, for `unavailable`. */
  reason?: string;
  url?: string;
}

/** The reason recorded when the provider step fails for something other than the provider (a store behind the key ring). */
const INTERNAL = 'ERR_INTERNAL';

const HINT_COOKIE = 'id_hint';
/** From the app host's redirect to the central host's answer. */
const HOP_TTL_MS = 60_000;

const providerFailed = (code: string): SignedOutNote => ({
  code,
  text: 'Signing out at the identity provider did not work (it could not be reached or is misconfigured), so you may still be signed in there and the next sign-in may not ask for your password. Sign out at the identity provider, or close the browser.',
});

/**
 * The Set-Cookie that keeps `idToken` for the `id_token_hint` of this
 * session's sign-out at the provider; undefined when sign-out does not go to
 * the provider (turned off, no `end_session_endpoint`) or the sealed token
 * would not fit in a cookie (the sign-out then goes without a hint). Its path
 * is the relay's own, so it never travels with an app's requests.
 *
 * @example
 * const hint = await idTokenHintCookie(ctx, req, 'login.example.com', session, idToken);
 * if (hint) cookies.push(hint);
 */
export async function idTokenHintCookie(ctx: AuthContext, req: IncomingMessage, host: string, session: SessionData, idToken: string): Promise<string | undefined> {
  if (!ctx.oidc || !(await ctx.oidc.offersLogout())) return undefined;
  const sealed = await ctx.codec.sealIdTokenHint({ sid: session.sid, idToken }, host, session.expiresAt);
  if (sealed.length > MAX_COOKIE_VALUE) {
    ctx.logger.info({ sub: session.sub, length: sealed.length }, 'the ID token is too large to keep for the sign-out hint; sign-out at the provider will go without it');
    return undefined;
  }
  return serializeCookie(HINT_COOKIE, sealed, { secure: isSecure(req), path: RELAY_PATH, maxAge: (session.expiresAt - ctx.clock()) / 1000 });
}

/** For a sealed token that does not open: treated as absent. Anything else (a store failure) still throws. */
function ignoreAuthError(err: unknown): undefined {
  if (err instanceof AuthError) return undefined;
  throw err;
}

export class SignOutFlows {
  private readonly ctx: AuthContext;

  constructor(ctx: AuthContext) {
    this.ctx = ctx;
  }

  private get providerLogout(): boolean {
    return this.ctx.oidc !== undefined && this.ctx.oidc.opts.providerLogout !== false;
  }

  /** GET, HEAD or POST signout. */
  async signOut(site: Site, app: AppConfig | undefined, req: IncomingMessage, res: ServerResponse, requestId: string, q: URLSearchParams): Promise<void> {
    const read = await this.ctx.readSession(req, site.host, app?.preauth);
    const own = await this.cookieSession(req, site.host, read);
    if (req.method === 'HEAD' || !(await this.startedHere(req, site.host, own, q))) return this.confirm(site, app, req, res, requestId, q, read);
    const cookies = [this.ctx.clearSessionCookie(req)];
    const ended = 'session' in read ? { session: read.session, closed: await this.ctx.endSession(read.session) } : undefined;
    // From here on the session has ended: nothing below may keep the user from
    // learning it, from getting the cleared cookies, or the sign-out from its record.
    const oidc = own?.kind === 'oidc';
    if (!site.central && this.ctx.signInHost !== undefined) {
      await this.record(ended, app, req, requestId, { provider: !oidc ? undefined : this.providerLogout ? 'central' : 'off' });
      return this.toCentralHost(site, req, res, requestId, cookies, ended?.session);
    }
    const { name, back: again } = this.landing(site, app, req, q);
    const hint = this.takeIdTokenHint(req, cookies);
    const step: ProviderOutcome = !oidc ? {} : this.providerLogout ? await this.providerStep(req, site.host, again ?? '', own.sid, hint, requestId) : { provider: 'off' };
    await this.record(ended, app, req, requestId, step);
    if (step.url !== undefined) return redirect(res, step.url, requestId, cookies);
    const note = step.reason !== undefined ? providerFailed(step.reason) : undefined;
    const headers: Record<string, string> = note?.code ? { 'x-drawbridge-error': note.code } : {};
    sendHtml(res, signedOutPage(name, again, requestId, note), requestId, { status: 200, cookies, headers });
  }

  /**
   * The app a sign-out is from, and where its page leads back to: on the
   * central host the app of `rd` (checked by the redirect rules), on an app
   * host that app and its root.
   */
  private landing(site: Site, app: AppConfig | undefined, req: IncomingMessage, q: URLSearchParams): { name: string | undefined; back: string | undefined } {
    if (!site.central) return { name: app?.name, back: '/' };
    const target = returnTargetFor(req, q.get('rd'), this.ctx.catalog);
    return { name: target?.app.name, back: target?.url.href };
  }

  /** `user.signout` of the session this sign-out ended, if it ended one (the audit never throws). */
  private async record(ended: { session: SessionData; closed: number } | undefined, app: AppConfig | undefined, req: IncomingMessage, requestId: string, step: ProviderOutcome): Promise<void> {
    if (!ended) return;
    const { provider, reason } = step;
    const details = { method: ended.session.kind, closedStreams: ended.closed, ...(provider && { provider }), ...(reason && { reason }) };
    await this.ctx.audit.record({ type: 'user.signout', outcome: 'success', actor: ended.session.sub, app: app?.id ?? null, address: clientAddress(req), requestId, details });
  }

  /**
   * The answer to a sign-out that is not (or, for HEAD, may not be) the
   * user's own: a page that asks, and no change at all. Its form posts the
   * same query (without the hop, which a same-origin post does not need) to
   * the same path.
   */
  private confirm(site: Site, app: AppConfig | undefined, req: IncomingMessage, res: ServerResponse, requestId: string, q: URLSearchParams, read: SessionRead): void {
    const { name, back: stay } = this.landing(site, app, req, q);
    const query = new URLSearchParams(q);
    query.delete('hop');
    const action = `${RELAY_PATH}signout${query.size > 0 ? `?${query.toString()}` : ''}`;
    const account = 'identity' in read ? accountName(read.identity) : undefined;
    sendHtml(res, signOutConfirmPage(name, account, action, stay, requestId), requestId, { status: 200 });
  }

  /**
   * An app host of a central deployment, after its own part: the central
   * host clears its cookie and goes on to the provider. The hop token tells
   * it that this was the user's own sign-out even when the redirect arrives
   * there as cross-site; it is bound to the session that just ended, so it
   * vouches for nothing in another browser.
   */
  private async toCentralHost(site: Site, req: IncomingMessage, res: ServerResponse, requestId: string, cookies: string[], ended: SessionData | undefined): Promise<void> {
    const signInHost = this.ctx.signInHost!;
    const next = new URLSearchParams({ rd: `${originFor(req, site.host)}/` });
    const hop = ended && (await this.ctx.codec.sealSignOutHop({ sid: ended.sid }, signInHost, HOP_TTL_MS).catch((err: unknown) => this.hopFailed(err, requestId)));
    if (hop) next.set('hop', hop);
    redirect(res, `${originFor(req, signInHost)}${RELAY_PATH}signout?${next.toString()}`, requestId, cookies);
  }

  /** Without the hop the central host asks before it signs out (and goes to the provider): one more click, never an error page. */
  private hopFailed(err: unknown, requestId: string): undefined {
    this.ctx.logger.error({ err, requestId }, 'the sign-out token for the central sign-in host could not be sealed; the central host will ask the user to confirm');
    return undefined;
  }

  /**
   * The session of this host's cookie: live, or ended a moment ago (on the
   * central host, by the app host that sent the browser here). Undefined
   * when there is no cookie or it does not open.
   */
  private async cookieSession(req: IncomingMessage, host: string, read: SessionRead): Promise<SessionData | undefined> {
    if ('session' in read) return read.session;
    if (read.reason !== AuthErrorCode.sessionRevoked) return undefined;
    const token = this.ctx.sessionToken(req);
    return token === undefined ? undefined : this.ctx.codec.openSession(token, host).catch(ignoreAuthError);
  }

  /**
   * Whether this sign-out is the user's own: the browser reports the user's
   * own navigation or form on this origin (`userStarted`), or the app host
   * (central sign-in) vouches for it with a hop token of the very session
   * this browser's cookie holds, since its redirect here arrives from
   * another host (`same-site` or `cross-site`).
   */
  private async startedHere(req: IncomingMessage, host: string, session: SessionData | undefined, q: URLSearchParams): Promise<boolean> {
    if (userStarted(req)) return true;
    const hop = q.get('hop');
    if (!hop || !session) return false;
    const vouched = await this.ctx.codec.openSignOutHop(hop, host).catch(ignoreAuthError);
    return vouched?.sid === session.sid;
  }

  /** The sealed ID token this host kept, if the browser sent it; its cookie is cleared either way. */
  private takeIdTokenHint(req: IncomingMessage, cookies: string[]): string | undefined {
    const secure = isSecure(req);
    const raw = readCookie(req, HINT_COOKIE, { secure, path: RELAY_PATH });
    if (raw !== undefined) cookies.push(serializeCookie(HINT_COOKIE, '', { secure, path: RELAY_PATH, maxAge: 0 }));
    return raw;
  }

  /**
   * The step to the provider for the OIDC session `sid` that just ended on
   * `host`: the provider's end-session URL, or why the browser does not go
   * there. It comes back to this host's `signedout` page (the post-logout
   * redirect URI the operator registers) with `state` sealed for this host,
   * holding where "Sign in again" leads. Never throws: a failure here (the
   * provider, or the store behind the key ring) comes after the session
   * ended, so it becomes `unavailable` with its code (`ERR_INTERNAL` for
   * anything that is not an `AuthError`) for the record and the page.
   */
  private async providerStep(req: IncomingMessage, host: string, returnTo: string, sid: string, rawHint: string | undefined, requestId: string): Promise<ProviderOutcome> {
    try {
      const hint = rawHint === undefined ? undefined : await this.ctx.codec.openIdTokenHint(rawHint, host).catch(ignoreAuthError);
      const state = await this.ctx.codec.sealLogout({ returnTo }, host, this.ctx.signInTimeoutMs);
      const url = await this.ctx.oidc!.endSessionUrl(`${originFor(req, host)}${RELAY_PATH}signedout`, state, hint?.sid === sid ? hint.idToken : undefined);
      return url === undefined ? { provider: 'unsupported' } : { provider: 'redirected', url };
    } catch (err) {
      const known = err instanceof AuthError;
      this.ctx.logger[known ? 'warn' : 'error']({ err, requestId }, 'sign-out at the identity provider failed; the relay session has ended');
      return { provider: 'unavailable', reason: known ? err.code : INTERNAL };
    }
  }

  /**
   * GET signedout: where the provider sends the browser after its sign-out.
   * A page, never a redirect: a user who chose to stay signed in at the
   * provider would otherwise be signed straight back in. "Sign in again"
   * leads only where the sealed state says and the redirect rules still allow.
   */
  async signedOut(site: Site, app: AppConfig | undefined, req: IncomingMessage, res: ServerResponse, requestId: string, q: URLSearchParams): Promise<void> {
    const state = q.get('state');
    const logout = state ? await this.ctx.codec.openLogout(state, site.host).catch(ignoreAuthError) : undefined;
    if (!site.central) return sendHtml(res, signedOutPage(app?.name, safeReturnPath(logout?.returnTo) ?? '/', requestId), requestId, { status: 200 });
    const target = returnTargetFor(req, logout?.returnTo, this.ctx.catalog);
    sendHtml(res, signedOutPage(target?.app.name, target?.url.href, requestId), requestId, { status: 200 });
  }
}
