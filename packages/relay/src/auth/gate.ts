/**
 * The access gate of pre-authenticated applications: for each request, who
 * the user is (session cookie or bearer token), whether they are assigned to
 * the app, and the identity that travels to the connector (SSO header inputs
 * and the signed assertion). Also the pages the relay serves itself under
 * `/.well-known/drawbridge/` and on the central sign-in host, and the reaction
 * to store changes that must close open streams (user disabled, assignment
 * removed, sign-out on another relay).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type AppConfig, SsoRuleError } from '@drawbridge/shared';
import type { AccessGate } from '../access.ts';
import { routingHost } from '../proxy/headers.ts';
import { clientAddress, type RequestIdentity } from '../proxy/http-proxy.ts';
import { type ErrorPage, Pages, sendErrorPage } from '../proxy/pages.ts';
import { rejectUpgrade } from '../proxy/upgrade-proxy.ts';
import type { ChangeEvent } from '../store/types.ts';
import { type AccessGateOptions, AuthContext, type SessionRead } from './context.ts';
import { AuthError, AuthErrorCode } from './errors.ts';
import type { ExchangeFilter } from './exchanges.ts';
import { RecentGrants } from './grants.ts';
import { isNavigation, RELAY_PATH, sendHtml, sendJson } from './http.ts';
import { accountName, forwardedIdentity, identityMeta, isAssigned, localIdentity, ruleHeaderNames, type UserIdentity } from './identity.ts';
import { identityFromClaims } from './oidc.ts';
import { forbiddenPage, homePage } from './pages.ts';
import { safeReturnPath } from './redirects.ts';
import { SignInFlows } from './sign-in.ts';
import { SignOutFlows } from './sign-out.ts';

export type { AccessGateOptions } from './context.ts';

/** The gate plus what the relay's composition and admin API need from it. */
export interface UserAccessGate extends AccessGate {
  /** Pass to `startRelay` as `relayRoutes` (a bound function): sign-in pages, callback, handoff, sign-out, JWKS. */
  readonly routes: (req: IncomingMessage, res: ServerResponse, requestId: string) => boolean;
  /** Closes the open exchanges of a user (local user id or provider subject), a session or an app; returns how many. */
  readonly closeStreams: (filter: ExchangeFilter) => number;
  /** Number of open exchanges of signed-in users (metrics). */
  readonly openExchanges: number;
  /** Stops listening to the store. */
  close(): void;
}

type Verdict =
  | { ok: RequestIdentity; identity: UserIdentity }
  /** No usable identity; `clear` drops a stale cookie. */
  | { status: 401; code: string; clear: boolean; bearer: boolean }
  | { status: 403; identity: UserIdentity }
  | { status: 500; page: ErrorPage };

const TAMPERING = new Set<string>([AuthErrorCode.sessionInvalid, AuthErrorCode.sessionWrongHost]);

/**
 * Builds the access gate. Loads (or creates) the keys in the store first, so
 * a broken store fails the start rather than the first sign-in.
 *
 * @example
 * const gate = await createAccessGate({ store, catalog, logger, oidc: config.oidc, signInHost: 'login.example.com' });
 * const relay = await startRelay({ ...listeners, catalog, gate, relayRoutes: gate.routes });
 */
export async function createAccessGate(opts: AccessGateOptions): Promise<UserAccessGate> {
  const ctx = new AuthContext(opts);
  await ctx.codec.ready();
  await ctx.signer.jwks();
  const flows = new SignInFlows(ctx);
  const signOut = new SignOutFlows(ctx);
  const acceptedTokens = new Map<string, number>();
  const grants = new RecentGrants({
    clock: ctx.clock,
    ttlMs: opts.recentGrantMs ?? 1_000,
    checks: { revoked: (sid) => ctx.revocations.peek(sid), user: (id) => ctx.users.peek(id) },
  });

  function acceptsBearer(app: AppConfig): boolean {
    return app.preauth === 'oidc' && !!app.bearerAudience && ctx.oidc !== undefined;
  }
  /** The bearer token of a request to an app that accepts them; such a request is checked by its token, whatever cookie it carries. */
  function bearerOf(app: AppConfig, req: IncomingMessage): string | undefined {
    if (!acceptsBearer(app)) return undefined;
    const auth = req.headers.authorization;
    return auth !== undefined && /^bearer\s/i.test(auth) ? auth.slice(7).trim() : undefined;
  }

  /**
   * The identity of a recent grant for the request's session, when every fact
   * it was made of still holds (grants.ts), with the exchange of `target`
   * tracked as a full check would; undefined when the request needs one.
   */
  function granted(app: AppConfig, req: IncomingMessage, target: ServerResponse | Duplex, requestId: string): RequestIdentity | undefined {
    if (bearerOf(app, req) !== undefined) return undefined;
    const token = ctx.sessionToken(req);
    const grant = token === undefined ? undefined : grants.find(token, app);
    if (grant === undefined) return undefined;
    ctx.exchanges.track(target, app.id, grant.identity, requestId);
    return grant.ok;
  }

  async function bearerIdentity(app: AppConfig, token: string, req: IncomingMessage, requestId: string): Promise<UserIdentity> {
    const claims = await ctx.oidc!.verifyAccessToken(token, app.bearerAudience!);
    const identity: UserIdentity = { ...identityFromClaims(claims, ctx.oidc!.opts.groupsClaim), method: 'bearer' };
    // One audit event per token, not per API call: the first time this relay sees it.
    const hash = createHash('sha256').update(token).digest('base64url');
    if (!acceptedTokens.has(hash)) {
      if (acceptedTokens.size >= 10_000) acceptedTokens.delete(acceptedTokens.keys().next().value!);
      acceptedTokens.set(hash, (claims.exp ?? 0) * 1000);
      await ctx.audit.record({ type: 'token.accepted', outcome: 'success', actor: identity.sub, app: app.id, address: clientAddress(req), requestId, details: { method: 'bearer', audience: app.bearerAudience } });
    }
    return identity;
  }

  async function decide(app: AppConfig, req: IncomingMessage, requestId: string): Promise<Verdict> {
    const host = app.externalHost.toLowerCase();
    const bearer = bearerOf(app, req);
    let identity: UserIdentity | undefined;
    let read: SessionRead | undefined;
    if (bearer !== undefined) {
      try {
        identity = await bearerIdentity(app, bearer, req, requestId);
      } catch (err) {
        if (!(err instanceof AuthError)) throw err;
        await ctx.audit.record({ type: 'token.rejected', outcome: 'failure', app: app.id, address: clientAddress(req), requestId, details: { method: 'bearer', reason: err.code } });
        return { status: 401, code: err.code, clear: false, bearer: true };
      }
    }
    if (!identity) {
      read = await ctx.readSession(req, host, app.preauth);
      if (!('identity' in read)) {
        if (read.reason !== undefined && TAMPERING.has(read.reason)) {
          await ctx.audit.record({ type: 'session.rejected', outcome: 'failure', app: app.id, address: clientAddress(req), requestId, details: { reason: read.reason } });
        }
        return { status: 401, code: AuthErrorCode.authRequired, clear: read.reason !== undefined, bearer: acceptsBearer(app) };
      }
      identity = read.identity;
    }
    if (!isAssigned(app, identity)) {
      await ctx.audit.record({ type: 'access.denied', outcome: 'denied', actor: identity.sub, app: app.id, address: clientAddress(req), requestId, details: { method: identity.method, account: accountName(identity) } });
      return { status: 403, identity };
    }
    const assertion = await ctx.signer.sign(identity, app, identity.method);
    try {
      const meta = identityMeta(app, forwardedIdentity(app, identity), assertion, ctx.maxSsoHeaderBytes);
      const ok: RequestIdentity = { meta, strip: ruleHeaderNames(app), user: accountName(identity) };
      if (read !== undefined && 'identity' in read) grants.remember(read.token, app, ok, identity, read.session.expiresAt, read.user);
      return { ok, identity };
    } catch (err) {
      if (!(err instanceof SsoRuleError)) throw err;
      await ctx.audit.record({ type: 'sso.header_failed', outcome: 'failure', actor: identity.sub, app: app.id, address: clientAddress(req), requestId, details: { header: err.header, reason: err.code, message: err.message } });
      return { status: 500, page: { status: 500, code: err.code, title: 'Application misconfigured', detail: `${app.name} expects a ${err.header} header that cannot be built for your account. An administrator can find the details in the audit log.` } };
    }
  }

  const passthrough = new WeakMap<AppConfig, RequestIdentity>();
  function anonymous(app: AppConfig): RequestIdentity {
    let id = passthrough.get(app);
    if (!id) passthrough.set(app, (id = { meta: [], strip: ruleHeaderNames(app) }));
    return id;
  }

  async function checkHttp(app: AppConfig, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<RequestIdentity | undefined> {
    const verdict = await decide(app, req, requestId);
    if ('ok' in verdict) {
      ctx.exchanges.track(res, app.id, verdict.identity, requestId);
      return verdict.ok;
    }
    if (verdict.status === 401) {
      const cookies = verdict.clear ? [ctx.clearSessionCookie(req)] : [];
      if (verdict.code === AuthErrorCode.authRequired && isNavigation(req)) {
        flows.challenge(app, req, res, requestId, cookies, safeReturnPath(req.url) ?? '/');
        return undefined;
      }
      if (cookies.length) res.setHeader('set-cookie', cookies);
      if (verdict.bearer) res.setHeader('www-authenticate', verdict.code === AuthErrorCode.authRequired ? 'Bearer' : 'Bearer error="invalid_token"');
      sendErrorPage(res, { status: 401, code: verdict.code, title: 'Sign-in required', detail: `Sign in to ${app.name} to continue: open ${RELAY_PATH}signin on this host in a browser.` }, requestId);
      return undefined;
    }
    if (verdict.status === 403) {
      const html = forbiddenPage(app.name, accountName(verdict.identity), `${RELAY_PATH}signout`, requestId);
      sendHtml(res, html, requestId, { status: 403, headers: { 'x-drawbridge-error': AuthErrorCode.accessDenied } });
      return undefined;
    }
    sendErrorPage(res, verdict.page, requestId);
    return undefined;
  }

  async function checkUpgrade(app: AppConfig, req: IncomingMessage, socket: Duplex, requestId: string): Promise<RequestIdentity | undefined> {
    const verdict = await decide(app, req, requestId);
    if ('ok' in verdict) {
      ctx.exchanges.track(socket, app.id, verdict.identity, requestId);
      return verdict.ok;
    }
    if (verdict.status === 401) rejectUpgrade(socket, { status: 401, code: verdict.code, title: 'Sign-in required', detail: `Sign in to ${app.name} first.` }, requestId);
    else if (verdict.status === 403) rejectUpgrade(socket, { status: 403, code: AuthErrorCode.accessDenied, title: 'Access denied', detail: `${accountName(verdict.identity)} is not assigned to ${app.name}.` }, requestId);
    else rejectUpgrade(socket, verdict.page, requestId);
    return undefined;
  }

  /** Re-checks open exchanges after a change; closes those that would now be refused. */
  async function revalidate(filter: ExchangeFilter, reason: string, changed?: { appId: string; app: AppConfig | null }): Promise<void> {
    const apps = new Map<string, AppConfig | null>();
    if (changed) apps.set(changed.appId, changed.app);
    for (const e of ctx.exchanges.select(filter)) {
      if (!apps.has(e.appId)) apps.set(e.appId, await ctx.store.getApp(e.appId));
      const app = apps.get(e.appId)!;
      let keep = app !== null;
      if (app && app.preauth !== 'passthrough') {
        let identity = e.identity;
        if (identity.method === 'local') {
          const user = await ctx.users.get(identity.sub);
          identity = user && !user.disabled ? localIdentity(user, identity.sid) : identity;
          keep = !!user && !user.disabled;
        }
        keep &&= isAssigned(app, identity);
      }
      if (keep) continue;
      ctx.exchanges.closeOne(e);
      await ctx.audit.record({ type: 'session.streams_closed', outcome: 'success', actor: e.identity.sub, app: e.appId, requestId: e.requestId, details: { reason } });
    }
  }

  async function onChange(event: ChangeEvent): Promise<void> {
    switch (event.type) {
      case 'user-changed':
        ctx.users.invalidate(event.userId);
        return revalidate({ sub: event.userId }, 'user-changed');
      case 'apps-changed':
        return revalidate({ appId: event.appId }, 'app-changed', { appId: event.appId, app: await ctx.store.getApp(event.appId) });
      case 'setting-changed': {
        const sid = ctx.revocations.noteSettingChanged(event.key);
        if (sid !== undefined) ctx.exchanges.close({ sid });
        return;
      }
      case 'resync':
        ctx.revocations.clear();
        ctx.users.clear();
        grants.clear();
        return revalidate({}, 'resync');
      default:
        return;
    }
  }
  // Sign-out records matter only until the session would have expired anyway, used handoffs until the token would, failed sign-ins only within their window.
  const pruneEvery = opts.pruneIntervalMs ?? 3_600_000;
  const pruneTimer =
    pruneEvery > 0
      ? setInterval(() => {
          ctx.revocations.prune().then(
            (n) => n > 0 && ctx.logger.info({ pruned: n }, 'deleted the sign-out records of expired sessions'),
            (err: unknown) => ctx.logger.warn({ err }, 'pruning sign-out records failed; the next run tries again'),
          );
          ctx.users.pruneFailures().catch((err: unknown) => ctx.logger.warn({ err }, 'pruning old sign-in failures failed; the next run tries again'));
          flows.pruneHandoffs().catch((err: unknown) => ctx.logger.warn({ err }, 'pruning used handoff tokens failed; the next run tries again'));
          grants.prune();
        }, pruneEvery)
      : undefined;
  pruneTimer?.unref();
  const unsubscribe = ctx.store.subscribe((event) => {
    onChange(event).catch((err: unknown) => ctx.logger.error({ err, event: event.type }, 'access re-check after a store change failed'));
  });

  async function route(central: boolean, host: string, app: AppConfig | undefined, action: string, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const q = new URLSearchParams((req.url ?? '').split('?')[1] ?? '');
    const site = { host, central };
    const method = req.method ?? 'GET';
    const get = method === 'GET' || method === 'HEAD';
    if (action === 'jwks.json' && get) return sendJson(res, await ctx.signer.jwks(), { 'cache-control': 'public, max-age=300' });
    if (action === 'signin' && get) return flows.signInPage(site, app, req, res, requestId, q);
    if (action === 'signin' && method === 'POST' && (central || ctx.signInHost === undefined)) return flows.submitLocal(site, app, req, res, requestId);
    const callback = action === 'callback' && (central || ctx.signInHost === undefined);
    const handoff = action === 'handoff' && !central && ctx.signInHost !== undefined;
    // Both spend a one-time value (the provider's code, the handoff token): a HEAD, which must change nothing, does not get to.
    if ((callback || handoff) && method === 'HEAD') return headNotAllowed(res, requestId);
    if (callback && get) return flows.callback(site, req, res, requestId, q);
    if (handoff && get) return flows.acceptHandoff(app!, req, res, requestId, q);
    if (action === 'signout' && (get || method === 'POST')) return signOut.signOut(site, app, req, res, requestId, q);
    if (action === 'signedout' && get && (central || ctx.signInHost === undefined)) return signOut.signedOut(site, app, req, res, requestId, q);
    if (action === '' && central && get) return sendHtml(res, homePage(requestId), requestId, { status: 200 });
    sendErrorPage(res, { status: 404, code: 'ERR_NOT_FOUND', title: 'Not found', detail: 'There is no such page of the relay.' }, requestId);
  }

  function headNotAllowed(res: ServerResponse, requestId: string): void {
    res.setHeader('allow', 'GET');
    sendErrorPage(res, { status: 405, code: 'ERR_METHOD_NOT_ALLOWED', title: 'Method not allowed', detail: 'This step of signing in answers GET only.' }, requestId);
  }

  return {
    check(app, req, res, requestId) {
      if (app.preauth === 'passthrough') return anonymous(app);
      return granted(app, req, res, requestId) ?? checkHttp(app, req, res, requestId);
    },
    checkUpgrade(app, req, socket, requestId) {
      if (app.preauth === 'passthrough') return anonymous(app);
      return granted(app, req, socket, requestId) ?? checkUpgrade(app, req, socket, requestId);
    },
    routes: (req, res, requestId) => {
      const host = routingHost(req.headers.host);
      if (!host) return false;
      const path = (req.url ?? '/').split('?')[0]!;
      const central = host === ctx.signInHost;
      if (!central && !path.startsWith(RELAY_PATH)) return false;
      let app: AppConfig | undefined;
      if (!central && path !== `${RELAY_PATH}jwks.json`) {
        app = ctx.catalog.findByHost(host);
        if (!app || app.preauth === 'passthrough') return false;
      }
      const action = path === '/' ? '' : path.startsWith(RELAY_PATH) ? path.slice(RELAY_PATH.length) : '-';
      route(central, host, app, action, req, res, requestId).catch((err: unknown) => {
        ctx.logger.error({ err, requestId }, 'relay page failed');
        sendErrorPage(res, Pages.upstream(500, 'ERR_INTERNAL', 'The relay could not complete this step. Try again.'), requestId);
      });
      return true;
    },
    closeStreams: (filter) => ctx.exchanges.close(filter),
    get openExchanges() {
      return ctx.exchanges.size;
    },
    close: () => {
      unsubscribe();
      if (pruneTimer) clearInterval(pruneTimer);
    },
  };
}
