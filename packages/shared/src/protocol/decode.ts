/**
 * Incremental frame decoder: bytes in, frames out. It never touches a socket,
 * so it can be fed any chunking of a byte stream (and fuzzed).
 *
 * Framing errors (a length over the limit, an unknown type, a stream id on the
 * wrong kind of frame) make the byte stream unusable: `push` throws a
 * connection-scope `ProtocolError` and the decoder stays failed. A frame whose
 * framing is sound but whose payload is malformed only spoils its own stream: it
 * comes out as a stream-scope `ProtocolError` among the frames, and decoding
 * goes on.
 */
import { ErrorCode, FRAME_HEADER_SIZE, FrameType, MAX_STREAM_ID, MAX_WINDOW } from './constants.ts';
import { LONG_VALUE, TOKEN_BYTES, hasForbiddenInValue, readLatin1, readUtf8 } from './bytes.ts';
import { ProtocolError } from './errors.ts';
import type { Frame, HeaderList } from './frames.ts';

const CONTROL_TYPES = new Set<number>([FrameType.HELLO, FrameType.PING, FrameType.GOAWAY, FrameType.NOTICE]);
const STREAM_TYPES = new Set<number>([
  FrameType.REQUEST,
  FrameType.RESPONSE,
  FrameType.DATA,
  FrameType.TRAILERS,
  FrameType.WINDOW_UPDATE,
  FrameType.RESET,
]);

/** What the decoder yields: a frame, or a stream-scope error for one malformed frame. */
export type DecodeItem = Frame | ProtocolError;

// Field kinds: which bytes a Latin-1 field may hold (see bytes.ts).
const VALUE = 0;
const TOKEN = 1;
const TARGET = 2;

function badByte(kind: number, b: number): boolean {
  if (kind === VALUE) return b === 0x0a || b === 0x0d || b === 0x00;
  if (kind === TOKEN) return TOKEN_BYTES[b] !== 1;
  return b <= 0x20 || b === 0x7f;
}

/**
 * Reads a payload front to back. Names of fields are passed as functions so
 * that the text of an error message is only built when there is an error:
 * this runs for every header of every request.
 */
class PayloadReader {
  offset = 0;
  private readonly buf: Uint8Array;
  private readonly streamId: number;
  constructor(buf: Uint8Array, streamId: number) {
    this.buf = buf;
    this.streamId = streamId;
  }
  fail(message: string): ProtocolError {
    return new ProtocolError('ERR_MALFORMED_FRAME', ErrorCode.PROTOCOL_ERROR, message, 'stream', this.streamId);
  }
  need(n: number, what: string): void {
    if (this.offset + n > this.buf.length) throw this.fail(`frame payload ends inside ${what}`);
  }
  u16(what: string): number {
    this.need(2, what);
    const b = this.buf;
    const v = (b[this.offset]! << 8) | b[this.offset + 1]!;
    this.offset += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const b = this.buf;
    const o = this.offset;
    const v = b[o]! * 0x100_0000 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
    this.offset += 4;
    return v;
  }
  /** A u16-length-prefixed Latin-1 string of the given kind. */
  field(kind: number, what: () => string): string {
    const b = this.buf;
    if (this.offset + 2 > b.length) throw this.fail(`frame payload ends inside ${what()} length`);
    const n = (b[this.offset]! << 8) | b[this.offset + 1]!;
    const start = this.offset + 2;
    const end = start + n;
    if (end > b.length) throw this.fail(`frame payload ends inside ${what()}`);
    if (kind === VALUE && n >= LONG_VALUE) {
      const s = readLatin1(b, start, end);
      if (!hasForbiddenInValue(s)) {
        this.offset = end;
        return s;
      }
      // Falls through to the byte loop, which names the byte.
    }
    for (let j = start; j < end; j++) {
      if (badByte(kind, b[j]!)) throw this.fail(`${what()} has a byte (0x${b[j]!.toString(16)}) that is not allowed there`);
    }
    this.offset = end;
    return readLatin1(b, start, end);
  }
  token(what: () => string): string {
    const s = this.field(TOKEN, what);
    if (s.length === 0) throw this.fail(`empty ${what()}`);
    return s;
  }
  headerBlock(what: string): HeaderList {
    const count = this.u16(what === 'header' ? 'header count' : `${what} count`);
    const out: HeaderList = new Array<[string, string]>(count);
    for (let i = 0; i < count; i++) {
      const name = this.token(() => `${what} name`);
      out[i] = [name, this.field(VALUE, () => `${what} value of ${name.slice(0, 64)}`)];
    }
    return out;
  }
  rest(): Uint8Array {
    const r = this.buf.subarray(this.offset);
    this.offset = this.buf.length;
    return r;
  }
  end(what: string): void {
    if (this.offset !== this.buf.length) throw this.fail(`${this.buf.length - this.offset} unexpected bytes after ${what}`);
  }
}

function connectionError(code: string, wireCode: number, message: string): ProtocolError {
  return new ProtocolError(code, wireCode, message, 'connection');
}

/** Parses one frame's payload. Throws a stream- or connection-scope ProtocolError. */
export function parseFrame(type: number, flags: number, streamId: number, payload: Uint8Array): Frame {
  const r = new PayloadReader(payload, streamId);
  switch (type) {
    case FrameType.HELLO: {
      if (payload.length < 16) throw connectionError('ERR_MALFORMED_FRAME', ErrorCode.FRAME_SIZE_ERROR, `HELLO payload is ${payload.length} bytes, at least 16 required`);
      const minVersion = r.u16('min version');
      const maxVersion = r.u16('max version');
      const maxFrameSize = r.u32('max frame size');
      const initialWindow = r.u32('initial window');
      const maxStreams = r.u32('max streams');
      const agentBytes = r.rest();
      return { type, flags, streamId, hello: { minVersion, maxVersion, maxFrameSize, initialWindow, maxStreams, agent: readUtf8(agentBytes, 0, agentBytes.length) } };
    }
    case FrameType.REQUEST: {
      const method = r.token(() => 'method');
      const target = r.field(TARGET, () => 'request target');
      if (target.length === 0) throw r.fail('empty request target');
      const app = r.field(VALUE, () => 'app id');
      const requestId = r.field(VALUE, () => 'request id');
      const headers = r.headerBlock('header');
      const meta = r.headerBlock('meta');
      r.end('REQUEST');
      return { type, flags, streamId, head: { method, target, app, requestId, headers, meta } };
    }
    case FrameType.RESPONSE: {
      const status = r.u16('status');
      if (status < 100 || status > 999) throw r.fail(`RESPONSE status ${status} is not a 3-digit HTTP status`);
      const reason = r.field(VALUE, () => 'reason');
      const headers = r.headerBlock('header');
      r.end('RESPONSE');
      return { type, flags, streamId, head: { status, reason, headers } };
    }
    case FrameType.DATA:
      return { type, flags, streamId, data: payload };
    case FrameType.TRAILERS: {
      const trailers = r.headerBlock('trailer');
      r.end('TRAILERS');
      return { type, flags, streamId, trailers };
    }
    case FrameType.WINDOW_UPDATE: {
      if (payload.length !== 4) throw r.fail(`WINDOW_UPDATE payload is ${payload.length} bytes, not 4`);
      const increment = r.u32('increment');
      if (increment === 0 || increment > MAX_WINDOW) throw r.fail(`WINDOW_UPDATE increment ${increment} out of range`);
      return { type, flags, streamId, increment };
    }
    case FrameType.RESET: {
      const errorCode = r.u32('error code');
      const text = r.rest();
      return { type, flags, streamId, errorCode, message: readUtf8(text, 0, text.length) };
    }
    case FrameType.PING:
      if (payload.length !== 8) throw connectionError('ERR_MALFORMED_FRAME', ErrorCode.FRAME_SIZE_ERROR, `PING payload is ${payload.length} bytes, not 8`);
      return { type, flags, streamId, opaque: payload };
    case FrameType.GOAWAY: {
      if (payload.length < 8) throw connectionError('ERR_MALFORMED_FRAME', ErrorCode.FRAME_SIZE_ERROR, `GOAWAY payload is ${payload.length} bytes, at least 8 required`);
      const lastStreamId = r.u32('last stream id');
      if (lastStreamId > MAX_STREAM_ID) throw connectionError('ERR_MALFORMED_FRAME', ErrorCode.PROTOCOL_ERROR, `GOAWAY last stream id ${lastStreamId} is above ${MAX_STREAM_ID}`);
      const errorCode = r.u32('error code');
      const text = r.rest();
      return { type, flags, streamId, lastStreamId, errorCode, message: readUtf8(text, 0, text.length) };
    }
    case FrameType.NOTICE: {
      if (payload.length < 2) throw connectionError('ERR_MALFORMED_FRAME', ErrorCode.FRAME_SIZE_ERROR, 'NOTICE payload shorter than 2 bytes');
      const kind = r.u16('kind');
      return { type, flags, streamId, kind, body: r.rest() };
    }
    default:
      throw connectionError('ERR_UNKNOWN_FRAME_TYPE', ErrorCode.PROTOCOL_ERROR, `unknown frame type 0x${type.toString(16)}`);
  }
}

/**
 * Feed it chunks; it returns the frames completed by each chunk.
 *
 * @example
 * const decoder = new FrameDecoder(64 * 1024);
 * for (const item of decoder.push(bytes)) {
 *   if (item instanceof ProtocolError) resetStream(item.streamId, item.wireCode);
 *   else handle(item);
 * }
 */
export class FrameDecoder {
  /** Largest payload accepted; may be raised or lowered after the handshake. */
  maxFrameSize: number;
  private failure: ProtocolError | undefined;
  // Partial frame state: header bytes collected so far, then the payload buffer.
  private readonly header = new Uint8Array(FRAME_HEADER_SIZE);
  private headerFill = 0;
  private payload: Uint8Array | undefined;
  private payloadFill = 0;
  private type = 0;
  private flags = 0;
  private streamId = 0;

  constructor(maxFrameSize: number) {
    this.maxFrameSize = maxFrameSize;
  }

  /** Bytes held for a frame not yet complete. */
  get buffered(): number {
    return this.headerFill + this.payloadFill;
  }

  /** Decodes `chunk`. Throws a connection-scope ProtocolError on a framing error. */
  push(chunk: Uint8Array): DecodeItem[] {
    if (this.failure) throw this.failure;
    const out: DecodeItem[] = [];
    try {
      let off = 0;
      if (this.headerFill > 0) off = this.continuePartial(chunk, out);
      const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      // Fast path: whole frames straight out of the chunk, payloads as views.
      while (chunk.length - off >= FRAME_HEADER_SIZE) {
        const length = view.getUint32(off);
        this.startFrame(length, view.getUint8(off + 4), view.getUint8(off + 5), view.getUint32(off + 6));
        if (chunk.length - off - FRAME_HEADER_SIZE < length) break;
        this.emit(chunk.subarray(off + FRAME_HEADER_SIZE, off + FRAME_HEADER_SIZE + length), out);
        off += FRAME_HEADER_SIZE + length;
      }
      if (off < chunk.length) this.stash(chunk.subarray(off), out);
    } catch (err) {
      if (err instanceof ProtocolError && err.scope === 'connection') this.failure = err;
      throw err;
    }
    return out;
  }

  /** Call at end of input: a frame cut short is an error. */
  finish(): void {
    if (this.failure) throw this.failure;
    if (this.buffered > 0) {
      this.failure = connectionError('ERR_TRUNCATED_FRAME', ErrorCode.PROTOCOL_ERROR, `input ended inside a frame (${this.buffered} bytes held)`);
      throw this.failure;
    }
  }

  private startFrame(length: number, type: number, flags: number, streamId: number): void {
    if (length > this.maxFrameSize) {
      throw connectionError('ERR_FRAME_TOO_LARGE', ErrorCode.FRAME_SIZE_ERROR, `frame payload of ${length} bytes exceeds the limit of ${this.maxFrameSize}`);
    }
    if (CONTROL_TYPES.has(type)) {
      if (streamId !== 0) throw connectionError('ERR_BAD_STREAM_ID', ErrorCode.PROTOCOL_ERROR, `frame type 0x${type.toString(16)} must be on stream 0, got ${streamId}`);
    } else if (STREAM_TYPES.has(type)) {
      if (streamId === 0 || streamId > MAX_STREAM_ID) throw connectionError('ERR_BAD_STREAM_ID', ErrorCode.PROTOCOL_ERROR, `frame type 0x${type.toString(16)} needs a stream id in 1..${MAX_STREAM_ID}, got ${streamId}`);
    } else {
      throw connectionError('ERR_UNKNOWN_FRAME_TYPE', ErrorCode.PROTOCOL_ERROR, `unknown frame type 0x${type.toString(16)}`);
    }
    this.type = type;
    this.flags = flags;
    this.streamId = streamId;
  }

  private emit(payload: Uint8Array, out: DecodeItem[]): void {
    try {
      out.push(parseFrame(this.type, this.flags, this.streamId, payload));
    } catch (err) {
      if (err instanceof ProtocolError && err.scope === 'stream') out.push(err);
      else throw err;
    }
  }

  /** Keeps the tail of a chunk that holds an incomplete frame. */
  private stash(tail: Uint8Array, out: DecodeItem[]): void {
    this.headerFill = 0;
    this.payload = undefined;
    this.payloadFill = 0;
    this.continuePartial(tail, out);
  }

  /** Continues a partial frame with `chunk`; returns how many bytes it used. */
  private continuePartial(chunk: Uint8Array, out: DecodeItem[]): number {
    let off = 0;
    if (this.headerFill < FRAME_HEADER_SIZE) {
      const take = Math.min(FRAME_HEADER_SIZE - this.headerFill, chunk.length);
      this.header.set(chunk.subarray(0, take), this.headerFill);
      this.headerFill += take;
      off = take;
      if (this.headerFill < FRAME_HEADER_SIZE) return off;
      const view = new DataView(this.header.buffer);
      const length = view.getUint32(0);
      this.startFrame(length, view.getUint8(4), view.getUint8(5), view.getUint32(6));
      this.payload = new Uint8Array(length);
      this.payloadFill = 0;
    }
    const payload = this.payload!;
    const take = Math.min(payload.length - this.payloadFill, chunk.length - off);
    payload.set(chunk.subarray(off, off + take), this.payloadFill);
    this.payloadFill += take;
    off += take;
    if (this.payloadFill === payload.length) {
      this.headerFill = 0;
      this.payload = undefined;
      this.payloadFill = 0;
      this.emit(payload, out);
    }
    return off;
  }
}
