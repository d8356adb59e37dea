/**
 * Errors of the store. Callers and tests match on `code`; messages say what was
 * wrong and what an operator can do about it.
 */
import { DrawbridgeError } from '@drawbridge/shared';
import type { TokenRefusal } from './types.ts';

export const StoreErrorCode = {
  /** A unique name or host is already taken, or the object is still in use. */
  conflict: 'ERR_STORE_CONFLICT',
  /** The object addressed by id does not exist. */
  notFound: 'ERR_STORE_NOT_FOUND',
  /** The caller passed a value the store cannot keep (not a SHA-256 hex hash, an empty name). */
  invalid: 'ERR_STORE_INVALID',
  /** The database cannot be reached, is locked for too long, or its file cannot be opened. */
  unavailable: 'ERR_STORE_UNAVAILABLE',
  /** The database was migrated by a newer relay than this one. */
  schemaTooNew: 'ERR_STORE_SCHEMA_TOO_NEW',
  /** A certificate was requested for a revoked connector. */
  connectorRevoked: 'ERR_CONNECTOR_REVOKED',
  tokenUnknown: 'ERR_TOKEN_UNKNOWN',
  tokenExpired: 'ERR_TOKEN_EXPIRED',
  tokenUsedUp: 'ERR_TOKEN_USED_UP',
  tokenGroupDeleted: 'ERR_TOKEN_GROUP_DELETED',
} as const;

export type StoreErrorCode = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

/** Base class of every error the store throws on purpose. */
export class StoreError extends DrawbridgeError {}

export class StoreConflictError extends StoreError {
  constructor(message: string, options?: ErrorOptions) {
    super(StoreErrorCode.conflict, message, options);
  }
}

export class StoreNotFoundError extends StoreError {
  constructor(message: string, options?: ErrorOptions) {
    super(StoreErrorCode.notFound, message, options);
  }
}

export class StoreInvalidError extends StoreError {
  constructor(message: string, options?: ErrorOptions) {
    super(StoreErrorCode.invalid, message, options);
  }
}

export class StoreUnavailableError extends StoreError {
  constructor(message: string, options?: ErrorOptions) {
    super(StoreErrorCode.unavailable, message, options);
  }
}

export class StoreSchemaTooNewError extends StoreError {
  constructor(message: string, options?: ErrorOptions) {
    super(StoreErrorCode.schemaTooNew, message, options);
  }
}

export class ConnectorRevokedError extends StoreError {
  constructor(message: string, options?: ErrorOptions) {
    super(StoreErrorCode.connectorRevoked, message, options);
  }
}

const refusalCodes = {
  unknown: StoreErrorCode.tokenUnknown,
  expired: StoreErrorCode.tokenExpired,
  'used-up': StoreErrorCode.tokenUsedUp,
  'group-deleted': StoreErrorCode.tokenGroupDeleted,
} as const satisfies Record<TokenRefusal, StoreErrorCode>;

const refusalMessages: Record<TokenRefusal, string> = {
  unknown: 'registration token is not known to this relay; check for a typo or create one with `drawbridge-relay token create`',
  expired: 'registration token has expired; create a new one with `drawbridge-relay token create`',
  'used-up': 'registration token has no uses left; create a new one with `drawbridge-relay token create`',
  'group-deleted':
    'the connector group of this registration token was removed; create a token for an existing group with `drawbridge-relay token create --group NAME`',
};

/** A registration token was refused; `reason` says why and `code` is `ERR_TOKEN_*`. */
export class TokenRefusedError extends StoreError {
  readonly reason: TokenRefusal;
  constructor(reason: TokenRefusal) {
    super(refusalCodes[reason], refusalMessages[reason]);
    this.reason = reason;
  }
}
