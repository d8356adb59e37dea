/**
 * Header-based single sign-on at the connector: the headers an application
 * receives about its user, built from the identity the relay put in the
 * request's meta and the app's rules (`X-Remote-User={email}` …), plus the
 * relay-signed `X-Drawbridge-Assertion`. The relay already removed client
 * copies of these headers; `upstreamHeaders` drops them again by name.
 */
import { ASSERTION_HEADER, type AppConfig, decodeIdentityMeta, DEFAULT_SSO_HEADER_MAX_BYTES, ErrorCode, type HeaderList, META_ASSERTION, META_IDENTITY, renderHeaderRules, SsoRuleError, type Stream } from '@drawbridge/shared';
import { metaValue } from './headers.ts';

/**
 * The SSO headers for one request of `app`. No identity (a passthrough app)
 * means no headers. Throws `SsoRuleError` when a value would exceed
 * `maxBytes` or holds a control character: such a request must not reach the
 * app with a truncated or missing identity.
 *
 * @example
 * ssoHeaders(app, [['identity', '{"sub":"usr_1","email":"ada@example.com"}'], ['assertion', jwt]]);
 * // [['X-Remote-User', 'ada@example.com'], ['x-drawbridge-assertion', jwt]]
 */
export function ssoHeaders(app: AppConfig, meta: HeaderList, maxBytes = DEFAULT_SSO_HEADER_MAX_BYTES): HeaderList {
  const encoded = metaValue(meta, META_IDENTITY);
  if (encoded === undefined) return [];
  const rendered = renderedFor(app, encoded, maxBytes);
  if (rendered === undefined) return [];
  const assertion = metaValue(meta, META_ASSERTION);
  return assertion === undefined ? rendered.slice() : [...rendered, [ASSERTION_HEADER, assertion]];
}

/**
 * A signed-in user's requests carry the same identity text until their
 * session changes, so the headers rendered from it are kept per app
 * configuration object (a changed app is a new object, and starts empty) and
 * per identity text: JSON parsing and rule rendering per request were about
 * 0.6 µs of the connector's 28 µs on the pre-authenticated bench load.
 * Bounded: the map is emptied when it reaches `RENDERED_MAX` identities.
 * Failures are not kept; they throw again on every request.
 */
const renderedByApp = new WeakMap<AppConfig, { maxBytes: number; byIdentity: Map<string, HeaderList | undefined> }>();
const RENDERED_MAX = 1_000;

function renderedFor(app: AppConfig, encoded: string, maxBytes: number): HeaderList | undefined {
  let entry = renderedByApp.get(app);
  if (entry === undefined || entry.maxBytes !== maxBytes) {
    entry = { maxBytes, byIdentity: new Map() };
    renderedByApp.set(app, entry);
  }
  const cached = entry.byIdentity.get(encoded);
  if (cached !== undefined || entry.byIdentity.has(encoded)) return cached;
  const identity = decodeIdentityMeta(encoded);
  const headers = identity === undefined ? undefined : renderHeaderRules(app.headers, identity, maxBytes);
  if (entry.byIdentity.size >= RENDERED_MAX) entry.byIdentity.clear();
  entry.byIdentity.set(encoded, headers);
  return headers;
}

/**
 * Runs an injector for a stream; on a rule that cannot be filled, resets the
 * stream with a message the relay shows and logs, and returns undefined.
 */
export function injectOrRefuse(stream: Stream, app: AppConfig, inject: ((app: AppConfig, meta: HeaderList) => HeaderList) | undefined): HeaderList | undefined {
  if (!inject) return [];
  try {
    return inject(app, stream.request.meta);
  } catch (err) {
    const why = err instanceof SsoRuleError ? `${err.code}: ${err.message}` : `SSO headers could not be built (${(err as Error).message})`;
    stream.reset(ErrorCode.TARGET_NOT_ALLOWED, why);
    return undefined;
  }
}
