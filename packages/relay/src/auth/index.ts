export { createAccessGate, type AccessGateOptions, type UserAccessGate } from './gate.ts';
export { hashPassword, verifyPassword, type PasswordHashOptions } from './local-users.ts';
export { AuthError, AuthErrorCode, RateLimitedError } from './errors.ts';
export type { OidcOptions } from './oidc.ts';
export type { AssertionClaims } from './assertion.ts';
export type { ExchangeFilter } from './exchanges.ts';
export { EVERYONE } from './identity.ts';
export { RELAY_PATH, COOKIE_PREFIX } from './http.ts';
