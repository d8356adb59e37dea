/**
 * A tunnel session: one WebSocket connection between a connector and the
 * relay, carrying many request streams. It reacts to decoded frames and emits
 * encoded ones through a `Transport`; it never sees a socket, so the same code
 * runs on both sides and in tests without a network.
 *
 * Only the relay opens streams (each is one user request); the connector
 * answers them. Both sides send HELLO first and agree on the highest common
 * protocol version.
 */
import {
  CloseCode,
  ErrorCode,
  FRAME_HEADER_SIZE,
  Flags,
  FrameType,
  MAX_MAX_FRAME_SIZE,
  MAX_STREAM_ID,
  MAX_WINDOW,
  MIN_MAX_FRAME_SIZE,
  NoticeKind,
  PROTOCOL_VERSION_MAX,
  PROTOCOL_VERSION_MIN,
  errorCodeName,
} from '../protocol/constants.ts';
import { FrameDecoder } from '../protocol/decode.ts';
import {
  encodeFrameHeader,
  encodeGoaway,
  encodeHello,
  encodeNotice,
  encodePing,
  encodeRequest,
  encodeReset,
  encodeResponse,
  encodeTrailers,
  encodeWindowUpdate,
} from '../protocol/encode.ts';
import { DrawbridgeError, ProtocolError } from '../protocol/errors.ts';
import type { Frame, HeaderList, Hello, RequestHead, ResponseHead } from '../protocol/frames.ts';
import { Stream, StreamError, type StreamHandler, type StreamHost } from './stream.ts';
import { StreamTable } from './stream-table.ts';

/**
 * The connection under a session. Each `send` is one binary message: the
 * concatenation of `parts`, `bytes` long in all. The parts are handed over as
 * they are (frame headers and payloads, never copied by the session) so the
 * transport can build the message in a single copy, its own framing
 * included (shared/node/ws-transport.ts). The parts are the transport's once
 * sent: the session does not touch them again.
 */
export interface Transport {
  send(parts: readonly Uint8Array[], bytes: number): void;
  close(code: number, reason: string): void;
}

export interface SessionLimits {
  /** Largest frame payload this side accepts. */
  maxFrameSize: number;
  /** Per-stream receive window this side grants. */
  initialWindow: number;
  /** Streams this side accepts at once (meaningful on the connector). */
  maxStreams: number;
  /**
   * Largest receive window a fast stream grows to (it starts at
   * `initialWindow` and doubles while it keeps up; see WINDOW_GROWTH_MS).
   * Not below `initialWindow`; equal to it, windows never grow.
   */
  maxWindow: number;
  /** Growth beyond `initialWindow` all streams of the session may hold at once. */
  windowBudget: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  maxFrameSize: 64 * 1024,
  initialWindow: 256 * 1024,
  maxStreams: 256,
  maxWindow: 4 * 1024 * 1024,
  windowBudget: 32 * 1024 * 1024,
};

export interface SessionOptions {
  role: 'relay' | 'connector';
  transport: Transport;
  limits?: Partial<SessionLimits>;
  agent?: string;
  /** Send a PING after this much silence; 0 disables keepalive. */
  pingIntervalMs?: number;
  /** Close the connection when nothing arrived for this long. */
  pingTimeoutMs?: number;
  /** Close the connection when the peer's HELLO does not arrive in time. */
  handshakeTimeoutMs?: number;
  /** Monotonic milliseconds (`performance.now` by default); tests move it. */
  clock?: () => number;
  /** Protocol versions this side offers (tests use this to force a mismatch). */
  versions?: { min: number; max: number };
  /** Connector side: a request arrived. Set `stream.handler` before returning. */
  onStream?(stream: Stream): void;
  onReady?(peer: Hello, version: number): void;
  onNotice?(kind: number, body: Uint8Array): void;
  /** The peer will open no more streams / accept no more streams. */
  onGoaway?(errorCode: number, message: string): void;
  /** The session is over; `error` says why when it was not a clean close. */
  onClose?(error: DrawbridgeError | undefined): void;
  /** A stream handler threw; the stream was reset with INTERNAL_ERROR (log it: it is a bug). */
  onHandlerError?(error: unknown, streamId: number): void;
  /** Called whenever the number of open streams changes. */
  onStreamCountChange?(open: number): void;
}

/**
 * Coalesce frames into one message until it holds this many bytes. The frame
 * that crosses it still joins, so a message stays under 262144 + 10 + the
 * peer's maxFrameSize, the bound every receiver accepts (protocol.md §2.2).
 * 256 KiB rather than 64 KiB: a stream that gets credit back sends several
 * 64 KiB pieces at once, and one message for all of them cut relay and
 * connector CPU per MiB by 15–20 % (bench, alternating runs).
 */
const MAX_BATCH = 256 * 1024;

/**
 * ...and until it holds this many frames. A round of I/O on a loaded connector
 * can end 50 responses of 1 KiB (about 150 frames); held for one message, the
 * first ones wait for the processing of all the others, and relay, connector
 * and app then work in waves, one after the other, leaving a third of two
 * cores idle. Sending every 24 frames lets the relay forward the first
 * responses while the connector handles the rest: 1 KiB requests/s rose by
 * about 10 %, with no more CPU per request, and per-message costs are still
 * shared by 8 or more responses. Bulk transfers never reach it (four 64 KiB
 * DATA frames fill MAX_BATCH first).
 */
const MAX_BATCH_FRAMES = 24;

/**
 * The largest WebSocket message a peer may send to a side whose frame limit is
 * `limits.maxFrameSize`: a full batch plus the frame that crossed it, header
 * included. Both ends size their WebSocket receiver with this.
 */
export function maxMessageSize(limits: Pick<SessionLimits, 'maxFrameSize'>): number {
  return MAX_BATCH + FRAME_HEADER_SIZE + limits.maxFrameSize;
}

/**
 * Under load, frames are flushed once the current round of I/O callbacks is
 * over, not at the end of each callback: one poll phase then handles many
 * sockets (user requests on the relay, app responses on the connector), and
 * all the frames they produce leave in one message, one TLS record run and
 * one write system call instead of one each.
 */
const afterIo: (task: () => void) => void =
  typeof globalThis.setImmediate === 'function' ? (task) => void globalThis.setImmediate(task) : (task) => void setTimeout(task, 0);

/**
 * A session that sent nothing for this long is not under load: its next
 * frames leave at the end of the callback that produced them. Waiting for the
 * whole round of I/O there only delays the first requests of a burst behind
 * the processing of the others (about 40 µs each; 10 requests arriving
 * together made the first wait about 260 µs on the relay).
 */
const IDLE_FLUSH_MS = 1;

export class Session implements StreamHost {
  readonly role: 'relay' | 'connector';
  readonly limits: SessionLimits;
  /** The peer's HELLO, once received. */
  peer: Hello | undefined;
  version = 0;

  private readonly opts: SessionOptions;
  private readonly decoder: FrameDecoder;
  /** Not a `Map`: see stream-table.ts for what a `Map` here cost. */
  private readonly streams = new StreamTable<Stream>();
  private nextStreamId = 1;
  private highestPeerStreamId = 0;
  private state: 'handshake' | 'open' | 'closed' = 'handshake';
  private goawaySent = false;
  private goawayReceived = false;
  private out: Uint8Array[] = [];
  private outBytes = 0;
  private outFrames = 0;
  private flushScheduled = false;
  /** When the last message left (`now()` clock), to tell a busy session from an idle one. */
  private lastFlushAt = -Infinity;
  private lastReceived = Date.now();
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  private pingSeq = 0;
  private started = false;
  /** Receive-window growth the open streams hold (bounded by limits.windowBudget). */
  private windowGrown = 0;
  private bulk = 0;
  readonly now: () => number;

  constructor(opts: SessionOptions) {
    this.opts = opts;
    this.role = opts.role;
    this.limits = { ...DEFAULT_SESSION_LIMITS, ...opts.limits };
    this.decoder = new FrameDecoder(this.limits.maxFrameSize);
    this.now = opts.clock ?? (() => performance.now());
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }
  get isClosed(): boolean {
    return this.state === 'closed';
  }
  /** Streams open right now. */
  get openStreams(): number {
    return this.streams.size;
  }
  /** Open streams that are bulk transfers (`Stream.isBulk`): routing keeps small requests off such a connection. */
  get bulkStreams(): number {
    return this.bulk;
  }
  /** True while the relay may place new streams on this session. */
  get acceptsStreams(): boolean {
    return this.state === 'open' && !this.goawayReceived && !this.goawaySent && this.streams.size < (this.peer?.maxStreams ?? 0);
  }
  get peerMaxFrameSize(): number {
    return this.peer?.maxFrameSize ?? MIN_MAX_FRAME_SIZE;
  }

  /** Sends HELLO and starts the timers. Call once the transport is open, before the first `receive`. */
  start(): void {
    if (this.started || this.state === 'closed') return;
    this.started = true;
    const versions = this.opts.versions ?? { min: PROTOCOL_VERSION_MIN, max: PROTOCOL_VERSION_MAX };
    this.enqueue(
      encodeHello({
        minVersion: versions.min,
        maxVersion: versions.max,
        maxFrameSize: this.limits.maxFrameSize,
        initialWindow: this.limits.initialWindow,
        maxStreams: this.limits.maxStreams,
        agent: this.opts.agent ?? `drawbridge-${this.role}`,
      }),
    );
    if (this.state === 'handshake') {
      this.handshakeTimer = unref(
        setTimeout(() => {
          this.fail(new ProtocolError('ERR_HANDSHAKE_TIMEOUT', ErrorCode.PROTOCOL_ERROR, 'peer sent no HELLO in time'), CloseCode.HANDSHAKE_TIMEOUT);
        }, this.opts.handshakeTimeoutMs ?? 10_000),
      );
    }
    const interval = this.opts.pingIntervalMs ?? 15_000;
    if (interval > 0) {
      const timeout = this.opts.pingTimeoutMs ?? interval * 3;
      this.pingTimer = unref(setInterval(() => this.keepalive(interval, timeout), Math.min(interval, timeout) / 2));
    }
  }

  /** Feeds one received message: one or more whole frames. */
  receive(message: Uint8Array): void {
    if (this.state === 'closed') return;
    this.lastReceived = Date.now();
    let items;
    try {
      items = this.decoder.push(message);
      // A message must end on a frame boundary; finish() names the violation.
      if (this.decoder.buffered > 0) this.decoder.finish();
    } catch (err) {
      this.fail(asProtocolError(err), CloseCode.PROTOCOL_ERROR);
      return;
    }
    for (const item of items) {
      if (this.isClosed) return;
      try {
        if (item instanceof ProtocolError) this.onMalformed(item);
        else this.onFrame(item);
      } catch (err) {
        // A handler that throws while handling one stream's frame is our bug,
        // not the peer's: that stream is reset and the others carry on.
        if (!(err instanceof ProtocolError) && item.streamId !== 0 && this.streams.has(item.streamId)) {
          this.resetStream(item.streamId, ErrorCode.INTERNAL_ERROR, 'stream handler failed');
          this.opts.onHandlerError?.(err, item.streamId);
          continue;
        }
        const error = asProtocolError(err);
        this.fail(error, error.code === 'ERR_INTERNAL' ? CloseCode.INTERNAL_ERROR : CloseCode.PROTOCOL_ERROR);
        return;
      }
    }
  }

  /** Relay side: opens a stream carrying `head`. */
  openStream(head: RequestHead, handler: StreamHandler, options: { endStream?: boolean; upgrade?: boolean } = {}): Stream {
    if (this.role !== 'relay') throw new DrawbridgeError('ERR_WRONG_ROLE', 'only the relay opens streams');
    if (!this.acceptsStreams) throw new DrawbridgeError('ERR_SESSION_UNAVAILABLE', 'this tunnel connection takes no new streams');
    const id = this.nextStreamId;
    this.nextStreamId += 1;
    if (this.nextStreamId > MAX_STREAM_ID) this.drain('stream ids exhausted');
    let flags = 0;
    if (options.endStream) flags |= Flags.END_STREAM;
    if (options.upgrade) flags |= Flags.UPGRADE;
    // Encode before registering: a head the codec refuses must not leave a stream behind.
    const frame = encodeRequest(id, head, flags);
    if (frame.length - FRAME_HEADER_SIZE > this.peerMaxFrameSize) {
      throw new DrawbridgeError('ERR_REQUEST_HEAD_TOO_LARGE', `request head of ${frame.length} bytes exceeds the connector's frame limit of ${this.peerMaxFrameSize}`);
    }
    const stream = new Stream(this, id, head, options.upgrade === true, this.peer!.initialWindow, this.limits.initialWindow);
    stream.handler = handler;
    this.streams.set(id, stream);
    this.enqueue(frame);
    // END_STREAM rode on the REQUEST itself; the stream must not send another.
    if (options.endStream) stream.endedWithHead();
    this.opts.onStreamCountChange?.(this.streams.size);
    return stream;
  }

  /** Sends a NOTICE to the peer (the relay tells connectors that configuration changed). */
  notify(kind: number, body: Uint8Array = new Uint8Array(0)): void {
    if (this.state !== 'open') return;
    if (2 + body.length > this.peerMaxFrameSize) throw new DrawbridgeError('ERR_NOTICE_TOO_LARGE', `notice body of ${body.length} bytes exceeds the peer's frame limit`);
    this.enqueue(encodeNotice(kind, body));
  }

  /**
   * Graceful shutdown: the peer must send no new streams here. Streams in flight
   * finish; close the session when `openStreams` reaches zero.
   */
  drain(message = 'draining'): void {
    if (this.state !== 'open' || this.goawaySent) return;
    this.goawaySent = true;
    this.enqueue(encodeGoaway(this.role === 'relay' ? 0 : this.highestPeerStreamId, ErrorCode.NO_ERROR, clip(message)));
  }

  /** Closes the session; open streams fail with `error` (or a connection-lost error). */
  close(code: number = CloseCode.NORMAL, reason = 'closing', error?: DrawbridgeError): void {
    if (this.state === 'closed') return;
    this.flush();
    this.state = 'closed';
    this.stopTimers();
    this.failAll(error);
    this.opts.transport.close(code, reason);
    this.opts.onClose?.(error);
  }

  /** The transport closed underneath us. */
  transportClosed(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.stopTimers();
    const clean = code === CloseCode.NORMAL || code === CloseCode.GOING_AWAY;
    const error = clean ? undefined : new DrawbridgeError('ERR_CONNECTION_LOST', `tunnel connection closed (${code}${reason ? `: ${reason}` : ''})`);
    this.failAll(error);
    this.opts.onClose?.(error);
  }

  // ---- StreamHost ----

  sendData(streamId: number, chunk: Uint8Array, end: boolean): void {
    this.enqueue(encodeFrameHeader(chunk.length, FrameType.DATA, end ? Flags.END_STREAM : 0, streamId), chunk);
  }
  sendTrailers(streamId: number, trailers: HeaderList): void {
    this.enqueue(encodeTrailers(streamId, trailers));
  }
  sendResponse(streamId: number, head: ResponseHead, end: boolean): void {
    const frame = encodeResponse(streamId, head, end ? Flags.END_STREAM : 0);
    // Too large a frame would make the relay drop the whole connection, not just this stream.
    if (frame.length - FRAME_HEADER_SIZE > this.peerMaxFrameSize) {
      throw new DrawbridgeError('ERR_RESPONSE_HEAD_TOO_LARGE', `response head of ${frame.length - FRAME_HEADER_SIZE} bytes exceeds the relay's frame limit of ${this.peerMaxFrameSize}`);
    }
    this.enqueue(frame);
  }
  sendWindowUpdate(streamId: number, increment: number): void {
    this.enqueue(encodeWindowUpdate(streamId, Math.min(increment, MAX_WINDOW)));
  }
  sendReset(streamId: number, code: number, message: string): void {
    this.enqueue(encodeReset(streamId, code, clip(message)));
  }
  growWindow(current: number): number {
    const cap = Math.min(Math.max(this.limits.maxWindow, this.limits.initialWindow), MAX_WINDOW);
    const extra = Math.max(0, Math.min(current, cap - current, this.limits.windowBudget - this.windowGrown));
    this.windowGrown += extra;
    return extra;
  }
  bulkChanged(delta: 1 | -1): void {
    this.bulk += delta;
  }
  releaseWindow(bytes: number): void {
    this.windowGrown = Math.max(0, this.windowGrown - bytes);
  }
  streamClosed(stream: Stream): void {
    if (this.streams.delete(stream.id)) this.opts.onStreamCountChange?.(this.streams.size);
  }

  // ---- internals ----

  private onFrame(frame: Frame): void {
    if (this.state === 'handshake') {
      if (frame.type !== FrameType.HELLO) throw new ProtocolError('ERR_HANDSHAKE', ErrorCode.PROTOCOL_ERROR, `expected HELLO, got frame type 0x${frame.type.toString(16)}`);
      this.onHello(frame.hello);
      return;
    }
    switch (frame.type) {
      case FrameType.HELLO:
        throw new ProtocolError('ERR_HANDSHAKE', ErrorCode.PROTOCOL_ERROR, 'HELLO received twice');
      case FrameType.REQUEST:
        this.onRequest(frame.streamId, frame.head, frame.flags);
        return;
      case FrameType.RESPONSE: {
        if (this.role !== 'relay') throw new ProtocolError('ERR_UNEXPECTED_FRAME', ErrorCode.PROTOCOL_ERROR, 'RESPONSE sent to the connector');
        const stream = this.liveStream(frame.streamId);
        const code = stream?.receiveResponse(frame.head, (frame.flags & Flags.END_STREAM) !== 0) ?? ErrorCode.NO_ERROR;
        if (code !== ErrorCode.NO_ERROR) this.resetStream(frame.streamId, code, `RESPONSE ${frame.head.status} not allowed here (${errorCodeName(code)})`);
        return;
      }
      case FrameType.DATA: {
        const stream = this.liveStream(frame.streamId);
        if (!stream) return;
        if (this.awaitsResponse(stream)) return;
        const code = stream.receiveData(frame.data, (frame.flags & Flags.END_STREAM) !== 0);
        if (code !== ErrorCode.NO_ERROR) this.resetStream(frame.streamId, code, `DATA violates ${errorCodeName(code)}`);
        return;
      }
      case FrameType.TRAILERS: {
        const stream = this.liveStream(frame.streamId);
        if (!stream || this.awaitsResponse(stream)) return;
        const code = stream.receiveTrailers(frame.trailers);
        if (code !== ErrorCode.NO_ERROR) this.resetStream(frame.streamId, code, 'TRAILERS after end of stream');
        return;
      }
      case FrameType.WINDOW_UPDATE: {
        const stream = this.liveStream(frame.streamId);
        const code = stream?.receiveWindowUpdate(frame.increment) ?? ErrorCode.NO_ERROR;
        if (code !== ErrorCode.NO_ERROR) this.resetStream(frame.streamId, code, 'send window overflow');
        return;
      }
      case FrameType.RESET: {
        const stream = this.liveStream(frame.streamId);
        stream?.fail(StreamError.fromReset(frame.errorCode, frame.message));
        return;
      }
      case FrameType.PING:
        if ((frame.flags & Flags.ACK) === 0) this.enqueue(encodePing(frame.opaque, true));
        return;
      case FrameType.GOAWAY:
        this.goawayReceived = true;
        this.opts.onGoaway?.(frame.errorCode, frame.message);
        if (frame.errorCode !== ErrorCode.NO_ERROR) {
          this.close(CloseCode.NORMAL, 'peer sent GOAWAY', new ProtocolError('ERR_PEER_GOAWAY', frame.errorCode, `peer closed the tunnel: ${errorCodeName(frame.errorCode)} ${frame.message}`));
        } else if (this.role === 'relay') {
          // Streams the connector never saw can safely go elsewhere.
          for (const stream of this.streams.values()) {
            if (stream.id > frame.lastStreamId) stream.fail(new StreamError('ERR_STREAM_REFUSED', ErrorCode.REFUSED_STREAM, 'connector is draining', true));
          }
        }
        return;
      case FrameType.NOTICE:
        this.opts.onNotice?.(frame.kind, frame.body);
        return;
    }
  }

  private onHello(peer: Hello): void {
    const versions = this.opts.versions ?? { min: PROTOCOL_VERSION_MIN, max: PROTOCOL_VERSION_MAX };
    const version = Math.min(versions.max, peer.maxVersion);
    if (version < Math.max(versions.min, peer.minVersion)) {
      const message =
        `no common protocol version: ${this.role} speaks ${versions.min}–${versions.max}, peer (${peer.agent}) speaks ${peer.minVersion}–${peer.maxVersion}; ` +
        'upgrade the older of relay and connector';
      this.enqueue(encodeGoaway(0, ErrorCode.VERSION_MISMATCH, clip(message)));
      this.fail(new ProtocolError('ERR_VERSION_MISMATCH', ErrorCode.VERSION_MISMATCH, message), CloseCode.VERSION_MISMATCH, false);
      return;
    }
    if (peer.maxFrameSize < MIN_MAX_FRAME_SIZE || peer.maxFrameSize > MAX_MAX_FRAME_SIZE || peer.initialWindow < 1 || peer.initialWindow > MAX_WINDOW || peer.maxStreams < 1) {
      throw new ProtocolError('ERR_HANDSHAKE', ErrorCode.PROTOCOL_ERROR, `peer HELLO has limits out of range (frame ${peer.maxFrameSize}, window ${peer.initialWindow}, streams ${peer.maxStreams})`);
    }
    this.peer = peer;
    this.version = version;
    this.state = 'open';
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.opts.onReady?.(peer, version);
  }

  private onRequest(id: number, head: RequestHead, flags: number): void {
    if (this.role !== 'connector') throw new ProtocolError('ERR_UNEXPECTED_FRAME', ErrorCode.PROTOCOL_ERROR, 'REQUEST sent to the relay');
    if (id <= this.highestPeerStreamId) throw new ProtocolError('ERR_BAD_STREAM_ID', ErrorCode.PROTOCOL_ERROR, `REQUEST reuses stream id ${id}`);
    this.highestPeerStreamId = id;
    if (this.goawaySent) {
      this.enqueue(encodeReset(id, ErrorCode.REFUSED_STREAM, 'connector is draining'));
      return;
    }
    if (this.streams.size >= this.limits.maxStreams) {
      this.enqueue(encodeReset(id, ErrorCode.REFUSED_STREAM, `connection already carries ${this.limits.maxStreams} streams`));
      return;
    }
    const stream = new Stream(this, id, head, (flags & Flags.UPGRADE) !== 0, this.peer!.initialWindow, this.limits.initialWindow);
    this.streams.set(id, stream);
    this.opts.onStreamCountChange?.(this.streams.size);
    // A request without a body is already half-closed when its owner first sees
    // it (`stream.remoteDone`), so no body source needs to be set up.
    if ((flags & Flags.END_STREAM) !== 0) stream.receiveData(new Uint8Array(0), true);
    this.opts.onStream?.(stream);
  }

  /** The stream for a frame, or undefined for one already closed; unknown ids are a protocol error. */
  private liveStream(id: number): Stream | undefined {
    const stream = this.streams.get(id);
    if (stream) return stream;
    const opened = this.role === 'relay' ? this.nextStreamId - 1 : this.highestPeerStreamId;
    if (id > opened) throw new ProtocolError('ERR_BAD_STREAM_ID', ErrorCode.PROTOCOL_ERROR, `frame for stream ${id}, which was never opened`);
    return undefined;
  }

  /** Relay side: body or trailers before the final response head. Resets the stream and returns true. */
  private awaitsResponse(stream: Stream): boolean {
    if (this.role !== 'relay' || stream.responseReceived) return false;
    this.resetStream(stream.id, ErrorCode.PROTOCOL_ERROR, 'DATA or TRAILERS before the response head');
    return true;
  }

  /** A frame whose payload did not parse: it spoils its stream only. */
  private onMalformed(err: ProtocolError): void {
    const id = err.streamId;
    if (!this.streams.has(id)) {
      if (this.role === 'connector') {
        // Most likely a REQUEST that did not parse: the id is used now, so its
        // DATA (already in flight) is ignored instead of taken for an unknown stream.
        if (id > this.highestPeerStreamId) this.highestPeerStreamId = id;
      } else {
        this.liveStream(id);
      }
    }
    this.resetStream(id, err.wireCode, err.message);
  }

  private resetStream(id: number, code: number, message: string): void {
    const stream = this.streams.get(id);
    message = clip(message);
    this.enqueue(encodeReset(id, code, message));
    stream?.fail(new StreamError('ERR_STREAM_PROTOCOL', code, message, false));
  }

  private keepalive(interval: number, timeout: number): void {
    if (this.state === 'closed') return;
    const silent = Date.now() - this.lastReceived;
    if (silent > timeout) {
      this.fail(new ProtocolError('ERR_PING_TIMEOUT', ErrorCode.PING_TIMEOUT, `no traffic from peer for ${timeout} ms`), CloseCode.PING_TIMEOUT);
      return;
    }
    // Traffic from the peer already proves it is alive; and the peer, if it
    // hears nothing from us, pings on its own and our ACK answers it.
    if (silent < interval) return;
    const opaque = new Uint8Array(8);
    new DataView(opaque.buffer).setUint32(4, ++this.pingSeq);
    this.enqueue(encodePing(opaque));
  }

  private fail(error: ProtocolError, closeCode: number, sendGoaway = true): void {
    if (this.state === 'closed') return;
    if (sendGoaway && this.state === 'open') this.enqueue(encodeGoaway(this.highestPeerStreamId, error.wireCode, clip(error.message)));
    this.close(closeCode, error.code, error);
  }

  private failAll(error: DrawbridgeError | undefined): void {
    const streamError = new StreamError(
      'ERR_CONNECTION_LOST',
      ErrorCode.CANCEL,
      error ? `tunnel connection lost: ${error.message}` : 'tunnel connection closed',
      false,
    );
    for (const stream of this.streams.values()) stream.fail(streamError);
    this.streams.clear();
  }

  private stopTimers(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
  }

  private enqueue(frame: Uint8Array, payload?: Uint8Array): void {
    if (this.state === 'closed') return;
    this.out.push(frame);
    this.outFrames++;
    this.outBytes += frame.length;
    if (payload && payload.length > 0) {
      this.out.push(payload);
      this.outBytes += payload.length;
    }
    if (this.outBytes >= MAX_BATCH || this.outFrames >= MAX_BATCH_FRAMES) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      if (this.now() - this.lastFlushAt > IDLE_FLUSH_MS) queueMicrotask(this.flushTask);
      else afterIo(this.flushTask);
    }
  }

  private readonly flushTask = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  private flush(): void {
    if (this.out.length === 0 || this.state === 'closed') {
      this.out.length = 0;
      this.outBytes = 0;
      this.outFrames = 0;
      return;
    }
    const parts = this.out;
    const bytes = this.outBytes;
    this.out = [];
    this.outBytes = 0;
    this.outFrames = 0;
    this.lastFlushAt = this.now();
    this.opts.transport.send(parts, bytes);
  }
}

function asProtocolError(err: unknown): ProtocolError {
  if (err instanceof ProtocolError) return err;
  return new ProtocolError('ERR_INTERNAL', ErrorCode.INTERNAL_ERROR, err instanceof Error ? err.message : String(err));
}

/** Keeps a RESET or GOAWAY text far below any frame limit (it may echo peer-supplied bytes). */
const MAX_TEXT = 512;
function clip(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
}

function unref<T>(timer: T): T {
  (timer as { unref?: () => void }).unref?.();
  return timer;
}

export { NoticeKind };
