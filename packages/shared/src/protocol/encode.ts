/**
 * Frame encoders: pure functions from values to exact bytes (see
 * docs/protocol.md). They validate what they are given and throw a
 * `ProtocolError` with code `ERR_ENCODE` rather than put a frame on the wire
 * that the peer would have to reject.
 */
import { ErrorCode, FRAME_HEADER_SIZE, Flags, FrameType, MAX_STREAM_ID, MAX_WINDOW, MIN_MAX_FRAME_SIZE } from './constants.ts';
import { TOKEN_BYTES, isForbiddenInTarget, isForbiddenInValue, latin1Length, utf8, writeLatin1 } from './bytes.ts';
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

/** Writes the 10-byte frame header into `buf` at `offset`. */
export function writeFrameHeader(buf: Uint8Array, offset: number, length: number, type: number, flags: number, streamId: number): void {
  const view = new DataView(buf.buffer, buf.byteOffset + offset, FRAME_HEADER_SIZE);
  view.setUint32(0, length);
  view.setUint8(4, type);
  view.setUint8(5, flags);
  view.setUint32(6, streamId);
}

/** The 10-byte header of a frame whose payload the caller sends separately (DATA without a copy). */
export function encodeFrameHeader(length: number, type: number, flags: number, streamId: number): Uint8Array {
  const buf = new Uint8Array(FRAME_HEADER_SIZE);
  writeFrameHeader(buf, 0, length, type, flags, streamId);
  return buf;
}

function frame(type: number, flags: number, streamId: number, payloadLength: number): { buf: Uint8Array; view: DataView } {
  const buf = new Uint8Array(FRAME_HEADER_SIZE + payloadLength);
  writeFrameHeader(buf, 0, payloadLength, type, flags, streamId);
  return { buf, view: new DataView(buf.buffer, buf.byteOffset, buf.byteLength) };
}

function checkUint(what: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw encodeError(`${what} ${v} is not an integer in 0..${max}`);
}

/** Byte length of a Latin-1 field; also refuses what the decoder would refuse. */
function latin1Field(name: string, s: string, forbidden?: (c: number) => boolean): number {
  const n = latin1Length(s);
  if (n < 0) throw encodeError(`${name} has a character outside Latin-1`);
  if (n > 0xffff) throw encodeError(`${name} is ${n} bytes, more than the 65535 a frame field holds`);
  if (forbidden) {
    for (let i = 0; i < n; i++) if (forbidden(s.charCodeAt(i))) throw encodeError(`${name} has a character (0x${s.charCodeAt(i).toString(16)}) that is not allowed there`);
  }
  return n;
}

const notToken = (c: number): boolean => TOKEN_BYTES[c] !== 1;

function tokenField(name: string, s: string): number {
  if (s.length === 0) throw encodeError(`${name} is empty`);
  return latin1Field(name, s, notToken);
}

function headerBlockLength(headers: HeaderList, what: string): number {
  if (headers.length > 0xffff) throw encodeError(`${what}: ${headers.length} fields, more than 65535`);
  let n = 2;
  for (const [name, value] of headers) {
    n += 4 + tokenField(`${what} name`, name) + latin1Field(`${what} value of ${name.slice(0, 64)}`, value, isForbiddenInValue);
  }
  return n;
}

function writeHeaderBlock(buf: Uint8Array, view: DataView, offset: number, headers: HeaderList): number {
  view.setUint16(offset, headers.length);
  offset += 2;
  for (const [name, value] of headers) {
    view.setUint16(offset, name.length);
    offset = writeLatin1(buf, offset + 2, name);
    view.setUint16(offset, value.length);
    offset = writeLatin1(buf, offset + 2, value);
  }
  return offset;
}

function writeShortString(buf: Uint8Array, view: DataView, offset: number, s: string): number {
  view.setUint16(offset, s.length);
  return writeLatin1(buf, offset + 2, s);
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
  const { buf, view } = frame(FrameType.HELLO, 0, 0, 16 + agent.length);
  view.setUint16(10, hello.minVersion);
  view.setUint16(12, hello.maxVersion);
  view.setUint32(14, hello.maxFrameSize);
  view.setUint32(18, hello.initialWindow);
  view.setUint32(22, hello.maxStreams);
  buf.set(agent, 26);
  return buf;
}

/** REQUEST: opens stream `streamId` (relay → connector). */
export function encodeRequest(streamId: number, head: RequestHead, flags = 0): Uint8Array {
  checkStreamId(streamId, false);
  if (head.target.length === 0) throw encodeError('request target is empty');
  const length =
    8 +
    tokenField('method', head.method) +
    latin1Field('request target', head.target, isForbiddenInTarget) +
    latin1Field('app id', head.app, isForbiddenInValue) +
    latin1Field('request id', head.requestId, isForbiddenInValue) +
    headerBlockLength(head.headers, 'header') +
    headerBlockLength(head.meta, 'meta');
  const { buf, view } = frame(FrameType.REQUEST, flags & (Flags.END_STREAM | Flags.UPGRADE), streamId, length);
  let o = FRAME_HEADER_SIZE;
  o = writeShortString(buf, view, o, head.method);
  o = writeShortString(buf, view, o, head.target);
  o = writeShortString(buf, view, o, head.app);
  o = writeShortString(buf, view, o, head.requestId);
  o = writeHeaderBlock(buf, view, o, head.headers);
  writeHeaderBlock(buf, view, o, head.meta);
  return buf;
}

/** RESPONSE: a response head (connector → relay); status 100–199 except 101 is informational. */
export function encodeResponse(streamId: number, head: ResponseHead, flags = 0): Uint8Array {
  checkStreamId(streamId, false);
  if (!Number.isInteger(head.status) || head.status < 100 || head.status > 999) throw encodeError(`status ${head.status} is not a 3-digit HTTP status`);
  const length = 4 + latin1Field('reason', head.reason, isForbiddenInValue) + headerBlockLength(head.headers, 'header');
  const { buf, view } = frame(FrameType.RESPONSE, flags & Flags.END_STREAM, streamId, length);
  view.setUint16(10, head.status);
  const o = writeShortString(buf, view, 12, head.reason);
  writeHeaderBlock(buf, view, o, head.headers);
  return buf;
}

/** DATA with its payload copied in; see `encodeFrameHeader` to avoid the copy. */
export function encodeData(streamId: number, data: Uint8Array, flags = 0): Uint8Array {
  checkStreamId(streamId, false);
  const { buf } = frame(FrameType.DATA, flags & Flags.END_STREAM, streamId, data.length);
  buf.set(data, FRAME_HEADER_SIZE);
  return buf;
}

/** TRAILERS: ends the sender's half of the stream with trailer fields. */
export function encodeTrailers(streamId: number, trailers: HeaderList): Uint8Array {
  checkStreamId(streamId, false);
  const { buf, view } = frame(FrameType.TRAILERS, 0, streamId, headerBlockLength(trailers, 'trailer'));
  writeHeaderBlock(buf, view, FRAME_HEADER_SIZE, trailers);
  return buf;
}

export function encodeWindowUpdate(streamId: number, increment: number): Uint8Array {
  checkStreamId(streamId, false);
  if (!Number.isInteger(increment) || increment < 1 || increment > MAX_WINDOW) throw encodeError(`window increment ${increment} out of range`);
  const { buf, view } = frame(FrameType.WINDOW_UPDATE, 0, streamId, 4);
  view.setUint32(10, increment);
  return buf;
}

export function encodeReset(streamId: number, errorCode: number, message = ''): Uint8Array {
  checkStreamId(streamId, false);
  checkUint('error code', errorCode, 0xffff_ffff);
  const text = utf8(message);
  const { buf, view } = frame(FrameType.RESET, 0, streamId, 4 + text.length);
  view.setUint32(10, errorCode);
  buf.set(text, 14);
  return buf;
}

export function encodePing(opaque: Uint8Array, ack = false): Uint8Array {
  if (opaque.length !== 8) throw encodeError('PING payload must be 8 bytes');
  const { buf } = frame(FrameType.PING, ack ? Flags.ACK : 0, 0, 8);
  buf.set(opaque, FRAME_HEADER_SIZE);
  return buf;
}

export function encodeGoaway(lastStreamId: number, errorCode: number, message = ''): Uint8Array {
  checkUint('last stream id', lastStreamId, MAX_STREAM_ID);
  checkUint('error code', errorCode, 0xffff_ffff);
  const text = utf8(message);
  const { buf, view } = frame(FrameType.GOAWAY, 0, 0, 8 + text.length);
  view.setUint32(10, lastStreamId);
  view.setUint32(14, errorCode);
  buf.set(text, 18);
  return buf;
}

export function encodeNotice(kind: number, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  checkUint('notice kind', kind, 0xffff);
  const { buf, view } = frame(FrameType.NOTICE, 0, 0, 2 + body.length);
  view.setUint16(10, kind);
  buf.set(body, 12);
  return buf;
}
