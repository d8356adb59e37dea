/** Stable codes of the connector's identity module. */
export const IdentityErrorCode = {
  /** The state directory holds no registration: run `drawbridge-connector register`. */
  STATE_MISSING: 'ERR_STATE_MISSING',
  /** State files exist but cannot be used (unreadable, key and certificate do not match). */
  STATE_CORRUPT: 'ERR_STATE_CORRUPT',
  /** A `--ca-pin` value that is not `sha256:` and 64 hex digits. */
  PIN_INVALID: 'ERR_CA_PIN_INVALID',
  /** A certificate given to the identity functions cannot be parsed. */
  CERT_INVALID: 'ERR_CERT_INVALID',
} as const;

export type IdentityErrorCode = (typeof IdentityErrorCode)[keyof typeof IdentityErrorCode];
