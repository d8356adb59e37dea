/**
 * Every setting of the relay: its key, type, default and meaning. The loader,
 * the `DRAWBRIDGE_*` environment overrides and docs/configuration.md all come
 * from this one table (`pnpm docs:config` regenerates the doc; a test checks it).
 */

export type SettingType = 'string' | 'duration' | 'size' | 'int' | 'bool' | 'listen' | 'strings' | 'url' | 'enum' | 'path';

export interface Setting {
  key: string;
  type: SettingType;
  default: string | number | boolean | string[] | null;
  doc: string;
  values?: readonly string[];
  min?: number;
  max?: number;
}

export const SETTINGS: readonly Setting[] = [
  { key: 'dataDir', type: 'path', default: './drawbridge-data', doc: 'Directory for the SQLite store, the CA (when not in PostgreSQL), the admin credential and generated certificates. Created with mode 0700.' },
  { key: 'database', type: 'string', default: null, doc: 'A `postgres://` URL selects PostgreSQL (required for several relays); empty means SQLite in the data dir.' },
  { key: 'log.level', type: 'enum', default: 'info', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], doc: 'Log level of the JSON logs on standard output.' },

  { key: 'public.listen', type: 'listen', default: '0.0.0.0:8080', doc: 'Address users reach (`host:port`).' },
  { key: 'public.tlsCertFile', type: 'path', default: null, doc: 'PEM certificate (chain) for HTTPS on the public listener; reloaded when the file changes. Without it the listener speaks HTTP (put a TLS-terminating load balancer in front).' },
  { key: 'public.tlsKeyFile', type: 'path', default: null, doc: 'PEM private key for `public.tlsCertFile`.' },
  { key: 'public.trustedProxies', type: 'strings', default: [], doc: 'Addresses or CIDR ranges of load balancers in front of the public listener. Only from these does the relay believe `X-Forwarded-For` (the user\'s address, for logs, audit and rate limits) and `X-Forwarded-Proto` (so sign-in URLs and `Secure` cookies stay right when the balancer terminates TLS).' },
  { key: 'public.maxHeaderSize', type: 'size', default: 16384, min: 1024, max: 1048576, doc: 'Largest request head a user may send; larger gets 431.' },
  { key: 'public.headersTimeout', type: 'duration', default: 30000, min: 1000, doc: 'Time a client has to send its request head (slowloris guard).' },
  { key: 'public.keepAliveTimeout', type: 'duration', default: 65000, min: 1000, doc: 'Idle keep-alive time of user connections (longer than typical load balancer idle timeouts).' },
  { key: 'public.unreadBodyLinger', type: 'duration', default: 30000, min: 0, doc: 'When the relay answers before a request body has ended (413, 504, a failed exchange), how long it goes on reading and dropping the rest, so that the client is not left blocked mid-upload and can read the answer, before it closes the connection (like nginx\'s `lingering_time`).' },

  { key: 'connector.listen', type: 'listen', default: '0.0.0.0:8443', doc: 'Address connectors dial (TLS; client certificates requested).' },
  { key: 'connector.url', type: 'url', default: null, doc: 'URL connectors use to reach this relay, printed by `token create` (default: `https://<first host>:<port>`).' },
  { key: 'connector.hosts', type: 'strings', default: ['localhost', '127.0.0.1', '::1'], doc: 'Host names and addresses the generated connector-listener certificate is valid for. Add the name connectors dial.' },
  { key: 'connector.tlsCertFile', type: 'path', default: null, doc: 'Operator-supplied certificate for the connector listener instead of one issued by the relay CA (connectors then need no `--ca-pin`).' },
  { key: 'connector.tlsKeyFile', type: 'path', default: null, doc: 'Key for `connector.tlsCertFile`.' },
  { key: 'connector.connections', type: 'int', default: 2, min: 1, max: 16, doc: 'Tunnel connections each connector keeps open.' },
  { key: 'connector.configPullInterval', type: 'duration', default: 300000, min: 5000, doc: 'Periodic configuration pull of connectors (change notices make most pulls immediate).' },
  { key: 'connector.rotationAge', type: 'duration', default: 15552000000, min: 60000, doc: 'Certificate age at which a connector renews (180 days).' },
  { key: 'connector.certificateValidity', type: 'duration', default: 31536000000, min: 120000, doc: 'Validity of connector certificates (365 days); must exceed `connector.rotationAge`.' },
  { key: 'connector.registrationRate', type: 'int', default: 10, min: 1, doc: 'Registration attempts per source address per minute.' },

  { key: 'ca.certFile', type: 'path', default: null, doc: 'Operator-supplied CA certificate for connector identities (with `ca.keyFile`); default: a CA the relay creates on first start.' },
  { key: 'ca.keyFile', type: 'path', default: null, doc: 'Key of `ca.certFile`.' },

  { key: 'auth.signInHost', type: 'string', default: null, doc: 'Host of a central sign-in page (e.g. `login.example.com`, pointing at the public listener, not an app host): users sign in there once and the relay hands a session to each app host, so the identity provider needs one redirect URI. Empty: each app host signs users in itself.' },
  { key: 'auth.sessionMaxAge', type: 'duration', default: 43200000, min: 60000, doc: 'Longest a sign-in session lasts, whatever the identity token says.' },
  { key: 'auth.loginAttemptsPerUser', type: 'int', default: 5, min: 1, doc: 'Failed local sign-ins per user name in 15 minutes before that name is refused for the rest of the window.' },
  { key: 'auth.loginAttemptsPerAddress', type: 'int', default: 20, min: 1, doc: 'Failed local sign-ins per client address in 15 minutes.' },
  { key: 'oidc.issuer', type: 'string', default: null, doc: 'OpenID Connect issuer URL for `--preauth oidc` apps and bearer tokens (discovery at `<issuer>/.well-known/openid-configuration`). Works with Entra ID, Okta, Google, Keycloak, Dex.' },
  { key: 'oidc.clientId', type: 'string', default: null, doc: 'Client id registered at the provider; its redirect URI is `https://<sign-in host or app host>/.well-known/drawbridge/callback`.' },
  { key: 'oidc.clientSecret', type: 'string', default: null, doc: 'Client secret (confidential client); empty for a public client using PKCE only. Prefer the environment variable to the config file.' },
  { key: 'oidc.scopes', type: 'strings', default: ['openid', 'email', 'profile'], doc: 'Scopes requested at sign-in.' },
  { key: 'oidc.fetchUserinfo', type: 'bool', default: false, doc: 'Also read the provider\'s userinfo endpoint after sign-in (providers that keep claims such as groups out of the ID token).' },
  { key: 'auth.assertionIssuer', type: 'string', default: 'drawbridge', doc: '`iss` of the `X-Drawbridge-Assertion` JWT; set it to the relay\'s public URL. Applications verify it with `/.well-known/drawbridge/jwks.json` on any app host.' },
  { key: 'auth.assertionTtl', type: 'duration', default: 120000, min: 10000, doc: 'Lifetime of one identity assertion.' },
  { key: 'auth.assertionReuse', type: 'duration', default: 60000, min: 0, doc: 'How long a signed assertion is reused for the same user and app (at most half of `auth.assertionTtl`); `0` signs one per request, at a cost in throughput.' },
  { key: 'oidc.groupsClaim', type: 'string', default: 'groups', doc: 'Claim holding the user\'s groups (a dotted path reads nested claims, e.g. `realm_access.roles`).' },
  { key: 'oidc.providerLogout', type: 'bool', default: true, doc: 'After sign-out, send the browser to the provider\'s `end_session_endpoint` (RP-initiated logout) so the provider\'s session ends too; register `https://<sign-in host or app host>/.well-known/drawbridge/signedout` as a post-logout redirect URI there. Ignored when discovery names no such endpoint; `false` ends only the relay\'s session.' },

  { key: 'cluster.advertiseUrl', type: 'string', default: null, doc: 'Several relays on one PostgreSQL: the URL at which the other relays reach this relay\'s public listener (`http://10.0.0.4:8080`). A relay with no tunnel of an app\'s connector group forwards the request to a relay that has one. Default: the public listener\'s address when it is a specific one; forwarding is off when it listens on all addresses and this is not set.' },

  { key: 'admin.listen', type: 'listen', default: '127.0.0.1:8081', doc: 'Admin API, `/metrics`, `/healthz`, `/readyz`. Keep it on loopback or a private network.' },

  { key: 'tunnel.maxStreams', type: 'int', default: 256, min: 1, max: 65535, doc: 'Concurrent requests per tunnel connection (the connector announces it).' },
  { key: 'tunnel.streamWindow', type: 'size', default: 262144, min: 16384, max: 16777216, doc: 'Per-stream flow-control window a response starts with: bytes in flight from the connector per request.' },
  { key: 'tunnel.maxStreamWindow', type: 'size', default: 4194304, min: 16384, max: 1073741824, doc: 'Largest window a fast response grows to (it doubles while the user keeps up; a slow reader keeps `tunnel.streamWindow`). Equal to `tunnel.streamWindow`: no growth.' },
  { key: 'tunnel.windowBudget', type: 'size', default: 33554432, min: 0, max: 1073741824, doc: 'Window growth all responses on one tunnel connection may hold at once, on top of `tunnel.streamWindow` each: bounds the relay memory fast streams can claim.' },
  { key: 'tunnel.maxFrameSize', type: 'size', default: 65536, min: 16384, max: 16777216, doc: 'Largest tunnel frame payload accepted.' },
  { key: 'tunnel.pingInterval', type: 'duration', default: 15000, min: 1000, doc: 'Keepalive ping interval on idle tunnels.' },
  { key: 'tunnel.pingTimeout', type: 'duration', default: 45000, min: 2000, doc: 'A tunnel silent for this long is closed as dead.' },

  { key: 'queue.maxLength', type: 'int', default: 1000, min: 0, doc: 'Requests that may wait per connector group when no connection has capacity; beyond it 503 at once.' },
  { key: 'queue.maxWait', type: 'duration', default: 10000, min: 0, doc: 'How long a request waits for a connector before 503 with Retry-After.' },

  { key: 'shutdown.grace', type: 'duration', default: 10000, min: 0, doc: 'Time streams in flight get to finish on SIGTERM.' },
];

export const SETTING_BY_KEY = new Map(SETTINGS.map((s) => [s.key, s]));

/** `public.tlsCertFile` → `DRAWBRIDGE_PUBLIC_TLS_CERT_FILE`. */
export function envName(key: string): string {
  return `DRAWBRIDGE_${key
    .split('.')
    .map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
    .join('_')}`;
}
