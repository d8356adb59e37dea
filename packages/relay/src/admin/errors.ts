/**
 * Errors of the admin API. Each carries a stable `code` (what scripts and tests
 * match on) and the HTTP status it is answered with; the message says what was
 * wrong and what to do. Store errors are translated here, in one place.
 */
import { DrawbridgeError } from '@drawbridge/shared';
import { StoreErrorCode } from '../store/index.ts';

export const AdminErrorCode = {
  unauthorized: 'ERR_UNAUTHORIZED',
  routeNotFound: 'ERR_ROUTE_NOT_FOUND',
  methodNotAllowed: 'ERR_METHOD_NOT_ALLOWED',
  badJson: 'ERR_BAD_JSON',
  bodyTooLarge: 'ERR_BODY_TOO_LARGE',
  missingField: 'ERR_MISSING_FIELD',
  unknownField: 'ERR_UNKNOWN_FIELD',
  invalidField: 'ERR_INVALID_FIELD',
  invalidName: 'ERR_INVALID_NAME',
  invalidUrl: 'ERR_INVALID_URL',
  invalidHost: 'ERR_INVALID_HOST',
  invalidHeaderRule: 'ERR_INVALID_HEADER_RULE',
  unknownPlaceholder: 'ERR_UNKNOWN_PLACEHOLDER',
  invalidAssignment: 'ERR_INVALID_ASSIGNMENT',
  invalidDuration: 'ERR_INVALID_DURATION',
  invalidSize: 'ERR_INVALID_SIZE',
  invalidPassword: 'ERR_INVALID_PASSWORD',
  invalidQuery: 'ERR_INVALID_QUERY',
  unknownGroup: 'ERR_UNKNOWN_GROUP',
  notFound: 'ERR_NOT_FOUND',
  nameTaken: 'ERR_NAME_TAKEN',
  hostTaken: 'ERR_HOST_TAKEN',
  groupInUse: 'ERR_GROUP_IN_USE',
  conflict: 'ERR_CONFLICT',
  storeUnavailable: 'ERR_STORE_UNAVAILABLE',
  internal: 'ERR_INTERNAL',
} as const;

export type AdminErrorCode = (typeof AdminErrorCode)[keyof typeof AdminErrorCode];

/** An answer other than success: `status` and `{ error: { code, message } }`. */
export class AdminError extends DrawbridgeError {
  readonly status: number;
  /** Extra response headers (`Allow`, `WWW-Authenticate`). */
  readonly headers: Record<string, string>;
  constructor(status: number, code: AdminErrorCode, message: string, options?: ErrorOptions & { headers?: Record<string, string> }) {
    super(code, message, options);
    this.status = status;
    this.headers = options?.headers ?? {};
  }
}

/** A 400 naming the offending input. */
export function invalid(code: AdminErrorCode, message: string): AdminError {
  return new AdminError(400, code, message);
}

export function notFound(what: string, ref: string, hint: string): AdminError {
  return new AdminError(404, AdminErrorCode.notFound, `${what} "${ref}" not found; ${hint}`);
}

/**
 * Maps anything thrown by a handler to the error it is answered with. Store
 * errors keep their message (written for operators); anything unexpected is a
 * 500 whose details go to the log, not to the client.
 */
export function toAdminError(err: unknown): AdminError {
  if (err instanceof AdminError) return err;
  if (err instanceof DrawbridgeError) {
    switch (err.code) {
      case StoreErrorCode.notFound:
        return new AdminError(404, AdminErrorCode.notFound, err.message, { cause: err });
      case StoreErrorCode.conflict:
      case StoreErrorCode.connectorRevoked:
        return new AdminError(409, AdminErrorCode.conflict, err.message, { cause: err });
      case StoreErrorCode.invalid:
        return new AdminError(400, AdminErrorCode.invalidField, err.message, { cause: err });
      case StoreErrorCode.unavailable:
        return new AdminError(503, AdminErrorCode.storeUnavailable, err.message, { cause: err });
    }
  }
  return new AdminError(500, AdminErrorCode.internal, 'internal error of the relay; see its log', { cause: err });
}
