/**
 * Wire constants of the Drawbridge tunnel protocol. `docs/protocol.md` is the
 * normative description; this file must stay in step with it.
 */

/** Protocol versions this implementation speaks. */
export const PROTOCOL_VERSION_MIN = 1;
export const PROTOCOL_VERSION_MAX = 1;

/** Bytes in every frame header: length u32, type u8, flags u8, stream id u32. */
export const FRAME_HEADER_SIZE = 10;

/** Smallest and largest maximum frame payload a peer may advertise. */
export const MIN_MAX_FRAME_SIZE = 16 * 1024;
export const MAX_MAX_FRAME_SIZE = 16 * 1024 * 1024;
/** Largest stream id and window value (31 bits, as in HTTP/2). */
export const MAX_STREAM_ID = 0x7fff_ffff;
export const MAX_WINDOW = 0x7fff_ffff;

export const FrameType = {
  HELLO: 0x01,
  REQUEST: 0x02,
  RESPONSE: 0x03,
  DATA: 0x04,
  TRAILERS: 0x05,
  WINDOW_UPDATE: 0x06,
  RESET: 0x07,
  PING: 0x08,
  GOAWAY: 0x09,
  NOTICE: 0x0a,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const Flags = {
  /** REQUEST, RESPONSE, DATA: the sender's half of the stream ends with this frame. */
  END_STREAM: 0x01,
  /** REQUEST: the request asks for a protocol upgrade (WebSocket); after a 101 RESPONSE, DATA carries raw bytes. */
  UPGRADE: 0x02,
  /** PING: this is the answer to a PING. */
  ACK: 0x01,
} as const;

/** Notice kinds carried by NOTICE frames (stream 0). */
export const NoticeKind = {
  /** Relay → connector: configuration changed, pull it again. Payload: revision (UTF-8). */
  CONFIG_CHANGED: 1,
} as const;

/**
 * Error codes carried by RESET and GOAWAY frames. 0x00–0xff are protocol errors,
 * 0x100 and up describe what happened to the upstream request.
 */
export const ErrorCode = {
  NO_ERROR: 0x00,
  PROTOCOL_ERROR: 0x01,
  INTERNAL_ERROR: 0x02,
  FLOW_CONTROL_ERROR: 0x03,
  STREAM_CLOSED: 0x04,
  FRAME_SIZE_ERROR: 0x05,
  REFUSED_STREAM: 0x06,
  CANCEL: 0x07,
  VERSION_MISMATCH: 0x08,
  PING_TIMEOUT: 0x09,
  UPSTREAM_CONNECT_FAILED: 0x100,
  UPSTREAM_TIMEOUT: 0x101,
  UPSTREAM_RESET: 0x102,
  TARGET_NOT_ALLOWED: 0x103,
  UPSTREAM_IDLE_TIMEOUT: 0x104,
  UPSTREAM_TLS_FAILED: 0x105,
  RESPONSE_HEADERS_TOO_LARGE: 0x106,
  BODY_TOO_LARGE: 0x107,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const errorNames = new Map<number, string>(Object.entries(ErrorCode).map(([k, v]) => [v, k]));
/** Name of a wire error code, or `UNKNOWN(0x…)` for one this version does not know. */
export function errorCodeName(code: number): string {
  return errorNames.get(code) ?? `UNKNOWN(0x${code.toString(16)})`;
}

/** WebSocket close codes the tunnel uses (4000–4999 are for applications). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 4000,
  VERSION_MISMATCH: 4001,
  PING_TIMEOUT: 4002,
  REVOKED: 4003,
  HANDSHAKE_TIMEOUT: 4004,
  INTERNAL_ERROR: 4005,
} as const;
