/**
 * Errors with stable codes. Callers and tests match on `code`, never on the
 * message; messages say what was wrong and, where a person can act, what to do.
 */
export class DrawbridgeError extends Error {
  /** Stable machine-readable code, `ERR_*`. */
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Scope of a protocol error: a whole connection, or just one stream on it. */
export type ProtocolErrorScope = 'connection' | 'stream';

/** A violation of the tunnel protocol, with the wire error code it maps to. */
export class ProtocolError extends DrawbridgeError {
  readonly wireCode: number;
  readonly scope: ProtocolErrorScope;
  readonly streamId: number;
  constructor(code: string, wireCode: number, message: string, scope: ProtocolErrorScope = 'connection', streamId = 0) {
    super(code, message);
    this.wireCode = wireCode;
    this.scope = scope;
    this.streamId = streamId;
  }
}
