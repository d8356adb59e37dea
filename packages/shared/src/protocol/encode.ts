/**
 * Frame encoders: pure functions from values to exact bytes (see
 * docs/protocol.md). They validate what they are given and throw a
 * `ProtocolError` with code `ERR_ENCODE` rather than put a frame on the wire
 * that the peer would have to reject.
 */
import { ErrorCode, FRAME_HEADER_SIZE, Flags, FrameType, MAX_STREAM_ID, MAX_WINDOW, MIN_MAX_FRAME_SIZE } from './constants.ts';
import { LONG_VALUE, TOKEN_BYTES, utf8, writeAsciiValue } from './bytes.ts';
import { ProtocolError } from './errors.ts';
import type { HeaderList, Hello, RequestHead, ResponseHead } from './frames.ts';

function encodeError(message: string): ProtocolError {
  return new ProtocolError('ERR_ENCODE', ErrorCode.INTERNAL_ERROR, message);
}

function checkStreamId(streamId: number, control: boolean): void {
  if (control ? streamId !== 0 : !(Number.isInteger(streamId) && streamId >= 1 && streamId <= MAX_STREAM_ID)) {
    throw encodeError(`stream id ${streamId} is not valid for this frame type`);
  }
}

function putU16(buf: Uint8Array, o: number, v: number): void {
  buf[o] = v >>> 8;
  buf[o + 1] = v & 0xff;
}

function putU32(buf: Uint8Array, o: number, v: number): void {
  buf[o] = v >>> 24;
  buf[o + 1] = (v >>> 16) & 0xff;
  buf[o + 2] = (v >>> 8) & 0xff;
  buf[o + 3] = v & 0xff;
}

/** Writes the 10-byte frame header into `buf` at `offset`. */
export function writeFrameHeader(buf: Uint8Array, offset: number, length: number, type: number, flags: number, streamId: number): void {
  // Plain byte stores: a DataView per frame costs more than the frame.
  putU32(buf, offset, length);
  buf[offset + 4] = type;
  buf[offset + 5] = flags;
  putU32(buf, offset + 6, streamId);
}

/** The 10-byte header of a frame whose payload the caller sends separately (DATA without a copy). */
export function encodeFrameHeader(length: number, type: number, flags: number, streamId: number): Uint8Array {
  const buf = new Uint8Array(FRAME_HEADER_SIZE);
  writeFrameHeader(buf, 0, length, type, flags, streamId);
  return buf;
}

function frame(type: number, flags: number, streamId: number, payloadLength: number): Uint8Array {
  const buf = new Uint8Array(FRAME_HEADER_SIZE + payloadLength);
  writeFrameHeader(buf, 0, payloadLength, type, flags, streamId);
  return buf;
}

function checkUint(what: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw encodeError(`${what} ${v} is not an integer in 0..${max}`);
}

// Field kinds, checked while the field is written: one pass per string, and
// the error message is only built when there is an error.
const VALUE = 0;
const TOKEN = 1;
const TARGET = 2;

function badChar(kind: number, c: number): boolean {
  if (c > 0xff) return true;
  if (kind === VALUE) return c === 0x0a || c === 0x0d || c === 0x00;
  if (kind === TOKEN) return TOKEN_BYTES[c] !== 1;
  return c <= 0x20 || c === 0x7f;
}

/** Byte length of a u16-prefixed Latin-1 field; refuses what cannot be a field. */
function fieldLength(name: () => string, s: string, kind: number): number {
  if (s.length > 0xffff) throw encodeError(`${name()} is ${s.length} bytes, more than the 65535 a frame field holds`);
  if (kind === TOKEN && s.length === 0) throw encodeError(`${name()} is empty`);
  return 2 + s.length;
}

/** Writes a u16-prefixed Latin-1 field, refusing characters the decoder would refuse. */
function putField(buf: Uint8Array, o: number, s: string, kind: number, name: () => string): number {
  const n = s.length;
  buf[o] = n >>> 8;
  buf[o + 1] = n & 0xff;
  o += 2;
  if (kind === VALUE && n >= LONG_VALUE && writeAsciiValue(buf, o, s)) return o + n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (badChar(kind, c)) {
      if (c > 0xff) throw encodeError(`${name()} has a character outside Latin-1`);
      throw encodeError(`${name()} has a character (0x${c.toString(16)}) that is not allowed there`);
    }
    buf[o + i] = c;
  }
  return o + n;
}

function headerBlockLength(headers: HeaderList, what: string): number {
  if (headers.length > 0xffff) throw encodeError(`${what}: ${headers.length} fields, more than 65535`);
  let n = 2;
  for (const [name, value] of headers) {
    n += fieldLength(() => `${what} name`, name, TOKEN) + fieldLength(() => `${what} value of ${name.slice(0, 64)}`, value, VALUE);
  }
  return n;
}

function writeHeaderBlock(buf: Uint8Array, offset: number, headers: HeaderList, what: string): number {
  putU16(buf, offset, headers.length);
  offset += 2;
  for (const [name, value] of headers) {
    offset = putField(buf, offset, name, TOKEN, () => `${what} name`);
    offset = putField(buf, offset, value, VALUE, () => `${what} value of ${name.slice(0, 64)}`);
  }
  return offset;
}

/** HELLO (stream 0): the first frame each side sends. */
export function encodeHello(hello: Hello): Uint8Array {
  checkUint('min version', hello.minVersion, 0xffff);
  checkUint('max version', hello.maxVersion, 0xffff);
  checkUint('max frame size', hello.maxFrameSize, 0xffff_ffff);
  checkUint('initial window', hello.initialWindow, 0xffff_ffff);
  checkUint('max streams', hello.maxStreams, 0xffff_ffff);
  const agent = utf8(hello.agent);
  // The peer's frame limit is unknown before its HELLO; every peer accepts this much.
  if (16 + agent.length > MIN_MAX_FRAME_SIZE) throw encodeError(`HELLO agent is ${agent.length} bytes; the payload must fit in ${MIN_MAX_FRAME_SIZE}`);
  const buf = frame(FrameType.HELLO, 0, 0, 16 + agent.length);
  putU16(buf, 10, hello.minVersion);
  putU16(buf, 12, hello.maxVersion);
  putU32(buf, 14, hello.maxFrameSize);
  putU32(buf, 18, hello.initialWindow);
  putU32(buf, 22, hello.maxStreams);
  buf.set(agent, 26);
  return buf;
}

/** REQUEST: opens stream `streamId` (relay → connector). */
export function encodeRequest(streamId: number, head: RequestHead, flags = 0): Uint8Array {
  checkStreamId(streamId, false);
  if (head.target.length === 0) throw encodeError('request target is empty');
  const length =
    fieldLength(() => 'method', head.method, TOKEN) +
    fieldLength(() => 'request target', head.target, TARGET) +
    fieldLength(() => 'app id', head.app, VALUE) +
    fieldLength(() => 'request id', head.requestId, VALUE) +
    headerBlockLength(head.headers, 'header') +
    headerBlockLength(head.meta, 'meta');
  const buf = frame(FrameType.REQUEST, flags & (Flags.END_STREAM | Flags.UPGRADE), streamId, length);
  let o = FRAME_HEADER_SIZE;
  o = putField(buf, o, head.method, TOKEN, () => 'method');
  o = putField(buf, o, head.target, TARGET, () => 'request target');
  o = putField(buf, o, head.app, VALUE, () => 'app id');
  o = putField(buf, o, head.requestId, VALUE, () => 'request id');
  o = writeHeaderBlock(buf, o, head.headers, 'header');
  writeHeaderBlock(buf, o, head.meta, 'meta');
  return buf;
}

/** RESPONSE: a response head (connector → relay); status 100–199 except 101 is informational. */
export function encodeResponse(streamId: number, head: ResponseHead, flags = 0): Uint8Array {
  checkStreamId(streamId, false);
  if (!Number.isInteger(head.status) || head.status < 100 || head.status > 999) throw encodeError(`status ${head.status} is not a 3-digit HTTP status`);
  const length = 2 + fieldLength(() => 'reason', head.reason, VALUE) + headerBlockLength(head.headers, 'header');
  const buf = frame(FrameType.RESPONSE, flags & Flags.END_STREAM, streamId, length);
  putU16(buf, 10, head.status);
  const o = putField(buf, 12, head.reason, VALUE, () => 'reason');
  writeHeaderBlock(buf, o, head.headers, 'header');
  return buf;
}

/** DATA with its payload copied in; see `encodeFrameHeader` to avoid the copy. */
export function encodeData(streamId: number, data: Uint8Array, flags = 0): Uint8Array {
  checkStreamId(streamId, false);
  const buf = frame(FrameType.DATA, flags & Flags.END_STREAM, streamId, data.length);
  buf.set(data, FRAME_HEADER_SIZE);
  return buf;
}

/** TRAILERS: ends the sender's half of the stream with trailer fields. */
export function encodeTrailers(streamId: number, trailers: HeaderList): Uint8Array {
  checkStreamId(streamId, false);
  const buf = frame(FrameType.TRAILERS, 0, streamId, headerBlockLength(trailers, 'trailer'));
  writeHeaderBlock(buf, FRAME_HEADER_SIZE, trailers, 'trailer');
  return buf;
}

export function encodeWindowUpdate(streamId: number, increment: number): Uint8Array {
  checkStreamId(streamId, false);
  if (!Number.isInteger(increment) || increment < 1 || increment > MAX_WINDOW) throw encodeError(`window increment ${increment} out of range`);
  const buf = frame(FrameType.WINDOW_UPDATE, 0, streamId, 4);
  putU32(buf, 10, increment);
  return buf;
}

export function encodeReset(streamId: number, errorCode: number, message = ''): Uint8Array {
  checkStreamId(streamId, false);
  checkUint('error code', errorCode, 0xffff_ffff);
  const text = utf8(message);
  const buf = frame(FrameType.RESET, 0, streamId, 4 + text.length);
  putU32(buf, 10, errorCode);
  buf.set(text, 14);
  return buf;
}

export function encodePing(opaque: Uint8Array, ack = false): Uint8Array {
  if (opaque.length !== 8) throw encodeError('PING payload must be 8 bytes');
  const buf = frame(FrameType.PING, ack ? Flags.ACK : 0, 0, 8);
  buf.set(opaque, FRAME_HEADER_SIZE);
  return buf;
}

export function encodeGoaway(lastStreamId: number, errorCode: number, message = ''): Uint8Array {
  checkUint('last stream id', lastStreamId, MAX_STREAM_ID);
  checkUint('error code', errorCode, 0xffff_ffff);
  const text = utf8(message);
  const buf = frame(FrameType.GOAWAY, 0, 0, 8 + text.length);
  putU32(buf, 10, lastStreamId);
  putU32(buf, 14, errorCode);
  buf.set(text, 18);
  return buf;
}

export function encodeNotice(kind: number, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  checkUint('notice kind', kind, 0xffff);
  const buf = frame(FrameType.NOTICE, 0, 0, 2 + body.length);
  putU16(buf, 10, kind);
  buf.set(body, 12);
  return buf;
}
