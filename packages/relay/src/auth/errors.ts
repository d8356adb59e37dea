/**
 * Errors of user access. Each has a stable code that tests, audit events and
 * the `X-Drawbridge-Error` header carry; messages say what was wrong without
 * echoing secrets (never a token, a cookie or a password).
 */
import { DrawbridgeError } from '@drawbridge/shared';

export const AuthErrorCode = {
  /** No session and the request cannot be redirected (API call, upgrade, POST). */
  authRequired: 'ERR_AUTH_REQUIRED',
  /** Signed in, but neither the user nor a group of theirs is assigned to the app. */
  accessDenied: 'ERR_ACCESS_DENIED',
  /** The cookie does not decrypt, was altered, or is not a session cookie. */
  sessionInvalid: 'ERR_SESSION_INVALID',
  sessionExpired: 'ERR_SESSION_EXPIRED',
  /** Sealed with a key this relay does not hold (rotated out, another deployment). */
  sessionForeignKey: 'ERR_SESSION_FOREIGN_KEY',
  /** Issued for another host. */
  sessionWrongHost: 'ERR_SESSION_WRONG_HOST',
  /** Ended by sign-out. */
  sessionRevoked: 'ERR_SESSION_REVOKED',
  /** The local user behind the session was disabled or deleted. */
  sessionUserGone: 'ERR_SESSION_USER_GONE',
  /** The identity does not fit in a cookie (too many groups or claims). */
  sessionTooLarge: 'ERR_SESSION_TOO_LARGE',
  badCredentials: 'ERR_SIGNIN_BAD_CREDENTIALS',
  userDisabled: 'ERR_SIGNIN_USER_DISABLED',
  rateLimited: 'ERR_SIGNIN_RATE_LIMITED',
  /** The sign-in form did not carry the token of its cookie (cross-site post). */
  csrf: 'ERR_SIGNIN_CSRF',
  /** The sign-in state (OIDC state, handoff state) is missing, expired or does not match. */
  badState: 'ERR_SIGNIN_STATE',
  /** A return-to URL that is not on a configured application's host. */
  redirectNotAllowed: 'ERR_REDIRECT_NOT_ALLOWED',
  /** The session handoff token is invalid, expired, replayed or for another host. */
  handoffInvalid: 'ERR_HANDOFF_INVALID',
  /** The app wants a sign-in method the relay is not configured for. */
  methodNotConfigured: 'ERR_SIGNIN_METHOD_NOT_CONFIGURED',
  oidcUnavailable: 'ERR_OIDC_UNAVAILABLE',
  /** The provider answered the authorization request with an error. */
  oidcProviderError: 'ERR_OIDC_PROVIDER_ERROR',
  oidcTokenExchange: 'ERR_OIDC_TOKEN_EXCHANGE',
  oidcBadSignature: 'ERR_OIDC_BAD_SIGNATURE',
  oidcBadAudience: 'ERR_OIDC_BAD_AUDIENCE',
  oidcBadIssuer: 'ERR_OIDC_BAD_ISSUER',
  oidcTokenExpired: 'ERR_OIDC_TOKEN_EXPIRED',
  oidcBadNonce: 'ERR_OIDC_BAD_NONCE',
  /** Any other reason a JWT from the provider is refused (malformed, no `sub`, not yet valid). */
  oidcInvalidToken: 'ERR_OIDC_INVALID_TOKEN',
  /** A stored password hash this relay cannot read. */
  passwordHashInvalid: 'ERR_PASSWORD_HASH_INVALID',
  /** An empty or oversized password given to `hashPassword`. */
  passwordInvalid: 'ERR_PASSWORD_INVALID',
  /** Invalid settings passed to `createAccessGate`. */
  configInvalid: 'ERR_AUTH_CONFIG_INVALID',
} as const;

export type AuthErrorCode = (typeof AuthErrorCode)[keyof typeof AuthErrorCode];

/** Base class of every error user access throws on purpose. */
export class AuthError extends DrawbridgeError {
  declare readonly code: AuthErrorCode;
  constructor(code: AuthErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/** Rate limiting carries when the caller may try again. */
export class RateLimitedError extends AuthError {
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number) {
    super(AuthErrorCode.rateLimited, message);
    this.retryAfterMs = retryAfterMs;
  }
}
