/**
 * A real OpenID Connect provider for tests: `oidc-provider` from npm on a
 * loopback port, with its own RSA signing key, a user directory the test
 * fills, JWT access tokens for resource indicators (bearer tests), and a
 * login page: it signs the next user in at once when `autoLogin` is set
 * (HTTP-level tests), or shows a form a browser fills in. Its
 * `end_session_endpoint` (RP-initiated logout) asks the user to confirm, as
 * the specification requires without an `id_token_hint`.
 */
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { type ClientMetadata } from 'oidc-provider';
import { request } from 'undici';

export interface IdpUser {
  email?: string;
  email_verified?: boolean;
  name?: string;
  groups?: string[];
  [claim: string]: unknown;
}

export interface TestIdp {
  issuer: string;
  /** Set by `configure` (or `startIdp` with options). */
  provider: Provider;
  users: Map<string, IdpUser>;
  /** When set, the login interaction signs this account in without a page. */
  autoLogin: string | undefined;
  /** A JWT access token for `resource` via the client credentials grant. */
  clientToken(clientId: string, secret: string, resource: string): Promise<string>;
  /** Creates the provider; separate from listening so clients can name a relay port known only later. */
  configure(opts: IdpOptions): void;
  close(): Promise<void>;
}

export interface IdpOptions {
  clients: ClientMetadata[];
  idTokenTtlSec?: number;
  /** RP-initiated logout (`end_session_endpoint` in discovery); default on, as in oidc-provider. */
  rpInitiatedLogout?: boolean;
}

function loginPage(uid: string): string {
  return `<!doctype html><html><head><title>Test IdP sign-in</title></head><body><h1>Test IdP</h1>
<form method="post" action="/interaction/${uid}/login"><label>Login <input name="login" id="idp-login"></label>
<button type="submit" id="idp-submit">Sign in at IdP</button></form></body></html>`;
}

/** The provider's "sign out here too?" question; `form` is oidc-provider's own (it carries the XSRF token). */
function logoutPage(form: string): string {
  return `<!doctype html><html><head><title>Test IdP sign-out</title></head><body><h1>Sign out of the test IdP?</h1>${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes" id="idp-logout-yes">Yes, sign me out</button>
<button type="submit" form="op.logoutForm" id="idp-logout-no">No, stay signed in</button></body></html>`;
}

async function readBody(req: http.IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
  return new URLSearchParams(Buffer.concat(chunks).toString());
}

/** Starts listening; pass `opts` to configure at once, or call `configure` later. */
export async function startIdp(opts?: IdpOptions): Promise<TestIdp> {
  const server = http.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signing = { ...(await exportJWK(privateKey)), kid: 'idp-key-1', alg: 'RS256', use: 'sig' } as JWK;
  const users = new Map<string, IdpUser>();

  const create = (opts: IdpOptions): Provider =>
    new Provider(issuer, {
      clients: opts.clients,
      jwks: { keys: [signing] },
      cookies: { keys: ['test-idp-cookie-key'] },
      findAccount: (_ctx, id) => {
        const user = users.get(id);
        if (!user) return undefined;
        return { accountId: id, claims: () => ({ sub: id, ...user }) };
      },
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username', 'department'], groups: ['groups'] },
      scopes: ['openid', 'email', 'profile', 'groups', 'offline_access', 'api'],
      conformIdTokenClaims: false,
      pkce: { required: () => true },
      ttl: { IdToken: opts.idTokenTtlSec ?? 3600, AccessToken: 3600, ClientCredentials: 3600, Interaction: 600, Session: 3600, Grant: 3600 },
      features: {
        devInteractions: { enabled: false },
        rpInitiatedLogout: {
          enabled: opts.rpInitiatedLogout ?? true,
          logoutSource: (ctx, form) => {
            ctx.body = logoutPage(form);
          },
        },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => undefined,
          useGrantedResource: () => false,
          getResourceServerInfo: (_ctx, resource) => ({ scope: 'api', audience: resource, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
        },
      },
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    });

  let handler: ReturnType<Provider['callback']>;
  const idp: TestIdp = {
    issuer,
    provider: undefined as unknown as Provider,
    users,
    autoLogin: undefined,
    async clientToken(clientId, secret, resource) {
      const res = await request(`${issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'api' }).toString(),
      });
      const body = (await res.body.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!body.access_token) throw new Error(`client credentials failed: ${body.error} ${body.error_description}`);
      return body.access_token;
    },
    configure(o) {
      idp.provider = create(o);
      handler = idp.provider.callback();
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const finishLogin = async (req: http.IncomingMessage, res: http.ServerResponse, accountId: string): Promise<void> => {
    await idp.provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
  };
  const grantConsent = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const details = await idp.provider.interactionDetails(req, res);
    const grant = new idp.provider.Grant({ accountId: details.session!.accountId, clientId: details.params.client_id as string });
    grant.addOIDCScope(String(details.params.scope));
    const grantId = await grant.save();
    await idp.provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  };

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const m = /^\/interaction\/([^/?]+)(\/login)?/.exec(req.url ?? '');
    if (!m) {
      void handler(req, res);
      return;
    }
    void (async () => {
      const details = await idp.provider.interactionDetails(req, res);
      if (details.prompt.name === 'consent') return grantConsent(req, res);
      if (m[2] && req.method === 'POST') {
        const login = (await readBody(req)).get('login') ?? '';
        return finishLogin(req, res, login);
      }
      if (idp.autoLogin !== undefined) return finishLogin(req, res, idp.autoLogin);
      const html = loginPage(m[1]!);
      res.writeHead(200, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(html) });
      res.end(html);
    })().catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
  });
  if (opts) idp.configure(opts);
  return idp;
}
