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
  const identity = decodeIdentityMeta(metaValue(meta, META_IDENTITY));
  if (!identity) return [];
  const out = renderHeaderRules(app.headers, identity, maxBytes);
  const assertion = metaValue(meta, META_ASSERTION);
  if (assertion !== undefined) out.push([ASSERTION_HEADER, assertion]);
  return out;
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
