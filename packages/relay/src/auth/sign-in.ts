/**
 * The sign-in flows, on the central sign-in host or on an app's own host:
 * local form, OIDC authorization code flow, and the handoff of a central
 * session to an app host. Sign-out is sign-out.ts.
 *
 * Central sign-in, step by step: the app host A sets a one-time state cookie
 * (`hs_<st>`) and sends the browser to S/signin?rd=<A URL>&st=<st>; S signs
 * the user in (or finds its own session) and redirects to
 * A/.well-known/drawbridge/handoff?token=<JWE for A>; A accepts the token only
 * with the matching state cookie, once, within a minute, and sets its own
 * host-only session cookie. A session therefore never sits in a cookie another
 * host can read, and nobody can plant their session in someone else's browser.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppConfig } from '@drawbridge/shared';
import { clientAddress } from '../proxy/http-proxy.ts';
import type { AuthContext, Site } from './context.ts';
import { AuthError, AuthErrorCode, RateLimitedError } from './errors.ts';
import { isSecure, originFor, readCookie, readForm, redirect, RELAY_PATH, sendHtml, serializeCookie } from './http.ts';
import { identityFromClaims } from './oidc.ts';
import { signInErrorPage, signInPage } from './pages.ts';
import { returnTargetFor, type ReturnTarget, safeReturnPath } from './redirects.ts';
import { fitSession } from './session-fit.ts';
import { newSessionId, type SessionData } from './sessions.ts';
import { pruneExpired } from './revocations.ts';
import { idTokenHintCookie } from './sign-out.ts';

/** Where the user goes once signed in: an app URL (central) or a path on the app host. */
interface Destination {
  app: AppConfig;
  /** Central: absolute URL on the app host. App host: a path. */
  returnTo: string;
  handoffState?: string;
}

const STATE = /^[A-Za-z0-9_-]{20,64}$/;
const HANDOFF_TTL_MS = 60_000;
const newState = (): string => randomBytes(18).toString('base64url');

/** Handoff token ids already used, in the store so that a token works once on every relay: `auth.handoff.<jti>` = `<expiresAt>.<nonce>`. */
const HANDOFF_PREFIX = 'auth.handoff.';

export class SignInFlows {
  private readonly ctx: AuthContext;

  constructor(ctx: AuthContext) {
    this.ctx = ctx;
  }

  private relayPathCookie(req: IncomingMessage, base: string, value: string, maxAgeMs: number): string {
    return serializeCookie(base, value, { secure: isSecure(req), path: RELAY_PATH, maxAge: maxAgeMs / 1000 });
  }

  private fail(res: ServerResponse, requestId: string, status: number, code: string, detail: string, retry?: string, extra: { cookies?: string[]; headers?: Record<string, string> } = {}): void {
    sendHtml(res, signInErrorPage(code, detail, retry, requestId), requestId, { status, headers: { 'x-drawbridge-error': code, ...extra.headers }, cookies: extra.cookies ?? [] });
  }

  private returnUrl(req: IncomingMessage, value: string | null | undefined): ReturnTarget | undefined {
    return returnTargetFor(req, value, this.ctx.catalog);
  }

  /** Sends an unauthenticated browser to sign in, remembering where it wanted to go. */
  challenge(app: AppConfig, req: IncomingMessage, res: ServerResponse, requestId: string, cookies: string[], path: string): void {
    const { signInHost } = this.ctx;
    if (signInHost === undefined) {
      redirect(res, `${RELAY_PATH}signin?rd=${encodeURIComponent(path)}`, requestId, cookies);
      return;
    }
    const st = newState();
    cookies.push(this.relayPathCookie(req, `hs_${st}`, st, this.ctx.signInTimeoutMs));
    const rd = originFor(req, app.externalHost) + path;
    redirect(res, `${originFor(req, signInHost)}${RELAY_PATH}signin?rd=${encodeURIComponent(rd)}&st=${st}`, requestId, cookies);
  }

  /** GET signin: a sign-in form, a redirect to the provider, or (central, already signed in) a handoff. */
  async signInPage(site: Site, app: AppConfig | undefined, req: IncomingMessage, res: ServerResponse, requestId: string, q: URLSearchParams): Promise<void> {
    if (!site.central) {
      const path = safeReturnPath(q.get('rd')) ?? '/';
      if (this.ctx.signInHost !== undefined) return this.challenge(app!, req, res, requestId, [], path);
      return this.begin(site, { app: app!, returnTo: path }, req, res, requestId);
    }
    const target = this.returnUrl(req, q.get('rd'));
    if (!target) return this.fail(res, requestId, 400, AuthErrorCode.redirectNotAllowed, 'This sign-in link does not lead to a published application.');
    const st = q.get('st');
    if (!st || !STATE.test(st)) return this.fail(res, requestId, 400, AuthErrorCode.badState, 'This sign-in link is incomplete. Open the application again.', target.url.origin + '/');
    const read = await this.ctx.readSession(req, site.host, target.app.preauth);
    if ('session' in read) return this.handoff(req, res, requestId, read.session, target, st, []);
    return this.begin(site, { app: target.app, returnTo: target.url.href, handoffState: st }, req, res, requestId);
  }

  private async begin(site: Site, dest: Destination, req: IncomingMessage, res: ServerResponse, requestId: string, form: { errorCode?: string; errorText?: string; status?: number; userName?: string } = {}): Promise<void> {
    if (dest.app.preauth === 'local') {
      const csrf = readCookie(req, 'csrf', { secure: isSecure(req), path: RELAY_PATH }) ?? newState();
      const hidden: Record<string, string> = { rd: dest.returnTo, csrf };
      if (dest.handoffState) hidden.st = dest.handoffState;
      const html = signInPage({ appName: dest.app.name, action: `${RELAY_PATH}signin`, hidden, ...(form.userName ? { userName: form.userName } : {}), ...(form.errorText ? { error: form.errorText } : {}) }, requestId);
      const headers: Record<string, string> = form.errorCode ? { 'x-drawbridge-error': form.errorCode } : {};
      sendHtml(res, html, requestId, { status: form.status ?? 200, headers, cookies: [this.relayPathCookie(req, 'csrf', csrf, this.ctx.signInTimeoutMs)] });
      return;
    }
    const { oidc } = this.ctx;
    if (!oidc) return this.fail(res, requestId, 500, AuthErrorCode.methodNotConfigured, `${dest.app.name} signs in with OpenID Connect, but this relay has no identity provider configured.`);
    let start;
    try {
      start = await oidc.authorizationStart(`${originFor(req, site.host)}${RELAY_PATH}callback`);
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      this.ctx.logger.warn({ err, requestId }, 'identity provider unavailable');
      return this.fail(res, requestId, 503, err.code, 'The identity provider cannot be reached right now. Try again in a moment.', undefined, { headers: { 'retry-after': '5' } });
    }
    const flow = { state: start.state, nonce: start.nonce, verifier: start.verifier, returnTo: dest.returnTo, ...(dest.handoffState ? { handoffState: dest.handoffState } : {}) };
    const sealed = await this.ctx.codec.sealFlow(flow, site.host, this.ctx.signInTimeoutMs);
    redirect(res, start.url, requestId, [this.relayPathCookie(req, `oidc_${start.state.slice(0, 16)}`, sealed, this.ctx.signInTimeoutMs)]);
  }

  /** POST signin: the local form. */
  async submitLocal(site: Site, app: AppConfig | undefined, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const form = await readForm(req);
    if (!form) return this.fail(res, requestId, 400, AuthErrorCode.badState, 'The sign-in form was not understood.');
    const csrf = readCookie(req, 'csrf', { secure: isSecure(req), path: RELAY_PATH });
    let dest: Destination;
    if (site.central) {
      const target = this.returnUrl(req, form.get('rd'));
      const st = form.get('st');
      if (!target) return this.fail(res, requestId, 400, AuthErrorCode.redirectNotAllowed, 'This sign-in form does not lead to a published application.');
      if (!st || !STATE.test(st)) return this.fail(res, requestId, 400, AuthErrorCode.badState, 'This sign-in form is incomplete. Open the application again.', target.url.origin + '/');
      dest = { app: target.app, returnTo: target.url.href, handoffState: st };
    } else {
      dest = { app: app!, returnTo: safeReturnPath(form.get('rd')) ?? '/' };
    }
    if (!csrf || form.get('csrf') !== csrf) {
      return this.fail(res, requestId, 403, AuthErrorCode.csrf, 'The sign-in form expired or was sent from another site. Open the application again.', site.central ? new URL(dest.returnTo).origin + '/' : '/');
    }
    if (dest.app.preauth !== 'local') return this.fail(res, requestId, 400, AuthErrorCode.methodNotConfigured, `${dest.app.name} does not sign in with a relay account.`);
    const userName = (form.get('username') ?? '').slice(0, 200);
    const address = clientAddress(req);
    let session: SessionData;
    try {
      const user = await this.ctx.users.authenticate(userName, form.get('password') ?? '', address);
      session = { sid: newSessionId(), kind: 'local', sub: user.id, name: user.name, expiresAt: this.ctx.clock() + this.ctx.maxAgeMs };
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      const limited = err instanceof RateLimitedError;
      await this.ctx.audit.record({ type: 'user.signin', outcome: limited ? 'rate_limited' : 'failure', app: dest.app.id, address, requestId, details: { method: 'local', user: userName, reason: err.code } });
      const message = limited ? 'Too many failed attempts. Wait a few minutes before trying again.' : err.code === AuthErrorCode.userDisabled ? 'This account is disabled.' : 'Wrong user name or password.';
      const status = limited ? 429 : err.code === AuthErrorCode.userDisabled ? 403 : 401;
      if (limited) res.setHeader('retry-after', String(Math.ceil(err.retryAfterMs / 1000)));
      return this.begin(site, dest, req, res, requestId, { errorCode: err.code, errorText: message, status, userName });
    }
    await this.ctx.audit.record({ type: 'user.signin', outcome: 'success', actor: session.sub, app: dest.app.id, address, requestId, details: { method: 'local', user: session.name } });
    return this.signedIn(site, dest, session, req, res, requestId);
  }

  /** GET callback: the provider sends the browser back with a code. */
  async callback(site: Site, req: IncomingMessage, res: ServerResponse, requestId: string, q: URLSearchParams): Promise<void> {
    const { oidc } = this.ctx;
    const state = q.get('state') ?? '';
    const base = `oidc_${state.slice(0, 16)}`;
    const raw = STATE.test(state) ? readCookie(req, base, { secure: isSecure(req), path: RELAY_PATH }) : undefined;
    const clear = [this.relayPathCookie(req, base, '', 0)];
    const flow = raw === undefined ? undefined : await this.ctx.codec.openFlow(raw, site.host).catch(() => undefined);
    if (!oidc || !flow || flow.state !== state) {
      return this.fail(res, requestId, 400, AuthErrorCode.badState, 'This sign-in response does not belong to a sign-in started in this browser, or it took too long. Open the application again.', undefined, { cookies: clear });
    }
    const dest = this.destination(site, req, flow.returnTo, flow.handoffState);
    if (!dest) return this.fail(res, requestId, 400, AuthErrorCode.redirectNotAllowed, 'The application of this sign-in is no longer published.', undefined, { cookies: clear });
    const address = clientAddress(req);
    const retry = site.central ? new URL(dest.returnTo).origin + '/' : dest.returnTo;
    let session: SessionData;
    let idToken: string;
    try {
      const error = q.get('error');
      if (error !== null) throw new AuthError(AuthErrorCode.oidcProviderError, `the identity provider refused the sign-in (${error.slice(0, 100)})`);
      const code = q.get('code');
      if (!code) throw new AuthError(AuthErrorCode.badState, 'the sign-in response carries no code');
      const tokens = await oidc.completeSignIn(code, `${originFor(req, site.host)}${RELAY_PATH}callback`, flow);
      const { claims } = tokens;
      idToken = tokens.idToken;
      const id = identityFromClaims(claims, oidc.opts.groupsClaim);
      const expiresAt = Math.min(this.ctx.clock() + this.ctx.maxAgeMs, (claims.exp ?? 0) * 1000);
      session = { sid: newSessionId(), kind: 'oidc', ...id, expiresAt };
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      await this.ctx.audit.record({ type: 'user.signin', outcome: 'failure', app: dest.app.id, address, requestId, details: { method: 'oidc', reason: err.code } });
      const status = err.code === AuthErrorCode.oidcUnavailable || err.code === AuthErrorCode.oidcTokenExchange ? 502 : 401;
      return this.fail(res, requestId, status, err.code, `Signing in with the identity provider failed: ${err.message}.`, retry, { cookies: clear });
    }
    await this.ctx.audit.record({ type: 'user.signin', outcome: 'success', actor: session.sub, app: dest.app.id, address, requestId, details: { method: 'oidc', email: session.email ?? null } });
    const hint = await idTokenHintCookie(this.ctx, req, site.host, session, idToken);
    return this.signedIn(site, dest, session, req, res, requestId, clear, hint);
  }

  private destination(site: Site, req: IncomingMessage, returnTo: string, handoffState: string | undefined): Destination | undefined {
    if (!site.central) {
      const app = this.ctx.catalog.findByHost(site.host);
      return app ? { app, returnTo: safeReturnPath(returnTo) ?? '/' } : undefined;
    }
    const target = this.returnUrl(req, returnTo);
    return target && handoffState ? { app: target.app, returnTo: target.url.href, handoffState } : undefined;
  }

  /** A new session: set the cookie of this host (and the kept ID token, `hint`), then go on (handoff from the central host). */
  private async signedIn(site: Site, dest: Destination, session: SessionData, req: IncomingMessage, res: ServerResponse, requestId: string, cookies: string[] = [], hint?: string): Promise<void> {
    const fitted = await fitSession(this.ctx.codec, session, site.host, site.central ? undefined : dest.app);
    if (!fitted) {
      return this.fail(res, requestId, 500, AuthErrorCode.sessionTooLarge, 'Your account carries more groups and claims than fit in a session cookie. An administrator can reduce what the identity provider sends.', undefined, { cookies });
    }
    cookies.push(this.ctx.sessionCookie(req, fitted.token, session.expiresAt));
    if (hint !== undefined) cookies.push(hint);
    if (!site.central) return redirect(res, dest.returnTo, requestId, cookies);
    return this.handoff(req, res, requestId, fitted.session, { url: new URL(dest.returnTo), app: dest.app }, dest.handoffState!, cookies);
  }

  private async handoff(req: IncomingMessage, res: ServerResponse, requestId: string, session: SessionData, target: ReturnTarget, state: string, cookies: string[]): Promise<void> {
    const host = target.url.hostname.toLowerCase();
    const fitted = await fitSession(this.ctx.codec, session, host, target.app);
    if (!fitted) return this.fail(res, requestId, 500, AuthErrorCode.sessionTooLarge, 'Your account carries more groups and claims than fit in a session cookie.', undefined, { cookies });
    const token = await this.ctx.codec.sealHandoff({ session: fitted.session, returnTo: target.url.pathname + target.url.search, state }, host, HANDOFF_TTL_MS);
    redirect(res, `${target.url.origin}${RELAY_PATH}handoff?token=${token}`, requestId, cookies);
  }

  /** GET handoff on an app host: trade a one-time token from the sign-in host for this host's session cookie. */
  async acceptHandoff(app: AppConfig, req: IncomingMessage, res: ServerResponse, requestId: string, q: URLSearchParams): Promise<void> {
    const host = app.externalHost.toLowerCase();
    let handoff;
    try {
      handoff = await this.ctx.codec.openHandoff(q.get('token') ?? '', host);
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      return this.fail(res, requestId, 400, AuthErrorCode.handoffInvalid, 'This sign-in link is invalid or has expired.', '/');
    }
    const stateCookie = readCookie(req, `hs_${handoff.state}`, { secure: isSecure(req), path: RELAY_PATH });
    if (stateCookie !== handoff.state) return this.fail(res, requestId, 400, AuthErrorCode.badState, 'This sign-in was not started in this browser. Open the application again.', '/');
    if ((await this.ctx.revocations.isRevoked(handoff.session.sid)) || !(await this.claimHandoff(handoff.jti, handoff.expiresAt))) {
      return this.fail(res, requestId, 400, AuthErrorCode.handoffInvalid, 'This sign-in link was already used.', '/');
    }
    const token = await this.ctx.codec.sealSession(handoff.session, host);
    const cookies = [this.ctx.sessionCookie(req, token, handoff.session.expiresAt), this.relayPathCookie(req, `hs_${handoff.state}`, '', 0)];
    redirect(res, safeReturnPath(handoff.returnTo) ?? '/', requestId, cookies);
  }

  /** True for the first use of handoff `jti` on any relay: one insert that only one caller can win. */
  private async claimHandoff(jti: string, expiresAt: number): Promise<boolean> {
    const mine = `${expiresAt}.${randomBytes(9).toString('base64url')}`;
    return (await this.ctx.store.setSettingIfAbsent(HANDOFF_PREFIX + jti, mine)) === mine;
  }

  /** Deletes the records of handoff tokens that have expired anyway; returns how many. */
  async pruneHandoffs(): Promise<number> {
    return (await pruneExpired(this.ctx.store, HANDOFF_PREFIX, this.ctx.clock())).length;
  }
}
