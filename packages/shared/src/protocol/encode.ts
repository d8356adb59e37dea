/**
 * Frame encoders: pure functions from values to exact bytes (see
 * docs/protocol.md). They validate what they are given and throw a
 * `ProtocolError` with code `ERR_ENCODE` rather than put a frame on the wire
 * that the peer would have to reject.
 */
import { ErrorCode, FRAME_HEADER_SIZE, Flags, FrameType, MAX_STREAM_ID, MAX_WINDOW } from './constants.ts';
import { latin1Length, utf8, writeLatin1 } from './bytes.ts';
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

function latin1Field(name: string, s: string, max = 0xffff): number {
  const n = latin1Length(s);
  if (n < 0) throw encodeError(`${name} has a character outside Latin-1`);
  if (n > max) throw encodeError(`${name} is ${n} bytes, more than the ${max} a frame field holds`);
  return n;
}

function headerBlockLength(headers: HeaderList, what: string): number {
  if (headers.length > 0xffff) throw encodeError(`${what}: ${headers.length} fields, more than 65535`);
  let n = 2;
  for (const [name, value] of headers) {
    n += 4 + latin1Field(`${what} name`, name) + latin1Field(`${what} value of ${name}`, value);
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
  const agent = utf8(hello.agent);
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
  const length =
    8 +
    latin1Field('method', head.method) +
    latin1Field('request target', head.target) +
    latin1Field('app id', head.app) +
    latin1Field('request id', head.requestId) +
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
  const length = 4 + latin1Field('reason', head.reason) + headerBlockLength(head.headers, 'header');
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
  const text = utf8(message);
  const { buf, view } = frame(FrameType.GOAWAY, 0, 0, 8 + text.length);
  view.setUint32(10, lastStreamId);
  view.setUint32(14, errorCode);
  buf.set(text, 18);
  return buf;
}

export function encodeNotice(kind: number, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const { buf, view } = frame(FrameType.NOTICE, 0, 0, 2 + body.length);
  view.setUint16(10, kind);
  buf.set(body, 12);
  return buf;
}
