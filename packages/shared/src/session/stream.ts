/**
 * One request stream on a tunnel session: a send half with credit-based flow
 * control and a receive half that grants credit as the consumer takes data.
 *
 * Backpressure is the `write` return value: `false` means "pause your source",
 * and `onWritable` says when to resume.
 */
import { ErrorCode, FRAME_HEADER_SIZE, errorCodeName } from '../protocol/constants.ts';
import { encodeTrailers } from '../protocol/encode.ts';
import { DrawbridgeError } from '../protocol/errors.ts';
import type { HeaderList, RequestHead, ResponseHead } from '../protocol/frames.ts';

/** Why a stream ended early: reset by the peer, by us, or its connection went away. */
export class StreamError extends DrawbridgeError {
  /** Wire error code (see ErrorCode). */
  readonly wireCode: number;
  /** True when the peer sent the reset; false for connection loss or local causes. */
  readonly remote: boolean;
  constructor(code: string, wireCode: number, message: string, remote: boolean) {
    super(code, message);
    this.wireCode = wireCode;
    this.remote = remote;
  }
  static fromReset(wireCode: number, message: string): StreamError {
    return new StreamError('ERR_STREAM_RESET', wireCode, message || `stream reset by peer: ${errorCodeName(wireCode)}`, true);
  }
}

/** Events a stream delivers to whoever owns it. All are optional but onData/onEnd/onReset matter. */
export interface StreamHandler {
  /** Relay side: the response head arrived (status 1xx other than 101 may come first). */
  onResponse?(head: ResponseHead, endStream: boolean): void;
  /** A chunk of body. Call `stream.consume(chunk.length)` once it has been passed on. */
  onData?(chunk: Uint8Array): void;
  /** The peer finished its half, with trailers if it sent any. */
  onEnd?(trailers: HeaderList | undefined): void;
  /** The stream ended abnormally. No further events follow. */
  onReset?(error: StreamError): void;
  /** Send credit came back and queued data went out: resume the source. */
  onWritable?(): void;
}

/**
 * A receive window grows (doubles) once the stream has moved a whole window's
 * worth of data within this many milliseconds: at that pace the window, not
 * the consumer, sets the stream's speed. A slow consumer never reaches it.
 */
export const WINDOW_GROWTH_MS = 100;

/** What a stream needs from its session; keeps Stream testable on its own. */
export interface StreamHost {
  readonly peerMaxFrameSize: number;
  /**
   * Extra receive window for a stream whose window is `current` bytes: at most
   * `current` (doubling), within the session's limits; 0 when none is left.
   * Optional: without it windows never grow.
   */
  growWindow?(current: number): number;
  /** Gives back the growth of a stream that closed. */
  releaseWindow?(bytes: number): void;
  /** A stream became a bulk transfer (+1), or a bulk stream closed (-1); see `Stream.isBulk`. */
  bulkChanged?(delta: 1 | -1): void;
  /** Monotonic milliseconds, for window growth. */
  now?(): number;
  sendData(streamId: number, chunk: Uint8Array, end: boolean): void;
  sendTrailers(streamId: number, trailers: HeaderList): void;
  sendResponse(streamId: number, head: ResponseHead, end: boolean): void;
  sendWindowUpdate(streamId: number, increment: number): void;
  sendReset(streamId: number, code: number, message: string): void;
  streamClosed(stream: Stream): void;
}

export class Stream {
  readonly id: number;
  /** The request head (on the connector side, as received; on the relay side, as sent). */
  readonly request: RequestHead;
  /** True when the request asked for a protocol upgrade. */
  readonly upgrade: boolean;
  handler: StreamHandler = {};
  /** Opaque slot for the owner (e.g. the relay's per-request context). */
  context: unknown;

  private readonly host: StreamHost;
  private sendWindow: number;
  /** The send credit the stream started with; more than this means the peer grew our window. */
  private readonly initialSendWindow: number;
  private recvWindowSize: number;
  private recvAvailable: number;
  private unacked = 0;
  /** Window growth granted by the session, given back on close. */
  private grown = 0;
  /** Start of the current measurement of how fast a window's worth is consumed. */
  private windowStart: number;
  private consumedSinceStart = 0;
  private readonly pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private endQueued: { trailers: HeaderList | undefined } | undefined;
  private localEnded = false;
  private remoteEnded = false;
  private closed = false;
  private blocked = false;
  private finalResponse = false;
  private bulk = false;

  constructor(host: StreamHost, id: number, request: RequestHead, upgrade: boolean, sendWindow: number, recvWindow: number) {
    this.host = host;
    this.id = id;
    this.request = request;
    this.upgrade = upgrade;
    this.sendWindow = sendWindow;
    this.initialSendWindow = sendWindow;
    this.recvWindowSize = recvWindow;
    this.recvAvailable = recvWindow;
    this.windowStart = host.now?.() ?? 0;
  }

  get isClosed(): boolean {
    return this.closed;
  }
  get localDone(): boolean {
    return this.localEnded || this.endQueued !== undefined;
  }
  get remoteDone(): boolean {
    return this.remoteEnded;
  }
  /** Relay side: the final response head (status 101 or 200 and up) has arrived. */
  get responseReceived(): boolean {
    return this.finalResponse;
  }
  /**
   * True once the stream moved a whole window within WINDOW_GROWTH_MS in
   * either direction (we grew our receive window, or the peer grew our send
   * window): a bulk transfer, which can hold up to its window of data queued
   * in front of anything sent after it on the same connection.
   */
  get isBulk(): boolean {
    return this.bulk;
  }

  /** Bytes accepted by `write` that still wait for send credit. */
  get queuedBytes(): number {
    return this.pendingBytes;
  }

  /**
   * Connector side: send the response head. Throws (and sends nothing) when the
   * head cannot be encoded or is larger than the relay's frame limit
   * (`ERR_RESPONSE_HEAD_TOO_LARGE`); the stream stays usable, e.g. for a 502.
   */
  respond(head: ResponseHead, end = false): void {
    if (this.closed || this.localEnded) return;
    this.host.sendResponse(this.id, head, end);
    if (end) this.finishLocal();
  }

  /**
   * Queues body bytes. Returns false when the source should pause until
   * `onWritable`. Chunks larger than the peer's frame size are split.
   */
  write(chunk: Uint8Array): boolean {
    if (this.closed || this.localDone) return false;
    if (chunk.length === 0) return this.pendingBytes === 0;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.flush();
    if (this.pendingBytes > 0) this.blocked = true;
    return this.pendingBytes === 0;
  }

  /**
   * Ends the send half, after any queued data, optionally with trailers.
   * Trailers are checked now, not when they go out: a field the codec refuses
   * throws `ERR_ENCODE`, a block over the peer's frame limit throws
   * `ERR_TRAILERS_TOO_LARGE`, and in both cases the stream is left as it was.
   */
  end(trailers?: HeaderList): void {
    if (this.closed || this.localDone) return;
    if (trailers && trailers.length > 0) {
      const size = encodeTrailers(this.id, trailers).length - FRAME_HEADER_SIZE;
      if (size > this.host.peerMaxFrameSize) {
        throw new DrawbridgeError('ERR_TRAILERS_TOO_LARGE', `trailers of ${size} bytes exceed the peer's frame limit of ${this.host.peerMaxFrameSize}`);
      }
    }
    this.endQueued = { trailers: trailers && trailers.length > 0 ? trailers : undefined };
    this.flush();
  }

  /**
   * Marks `n` received bytes as delivered, so the peer may send more. Credit
   * for delivered bytes is never granted for more than was received, so a
   * consumer that counts twice cannot grow the window; only `growWindow` does.
   */
  consume(n: number): void {
    if (this.closed || this.remoteEnded) return;
    n = Math.min(n, this.recvWindowSize - this.recvAvailable - this.unacked);
    if (!(n > 0)) return;
    this.unacked += n;
    // Batch credit: one WINDOW_UPDATE per quarter window keeps chatter low while
    // never letting the window run dry on a steady stream.
    if (this.unacked >= this.recvWindowSize / 4) {
      const increment = this.unacked + this.grow(this.unacked);
      this.recvAvailable += increment;
      this.host.sendWindowUpdate(this.id, increment);
      this.unacked = 0;
    }
  }

  /** Current receive window (grows for fast streams; see WINDOW_GROWTH_MS). */
  get receiveWindow(): number {
    return this.recvWindowSize;
  }

  /** Extra credit for a stream that consumed its whole window quickly. */
  private grow(consumed: number): number {
    const host = this.host;
    if (!host.growWindow || !host.now) return 0;
    this.consumedSinceStart += consumed;
    if (this.consumedSinceStart < this.recvWindowSize) return 0;
    const now = host.now();
    const fast = now - this.windowStart <= WINDOW_GROWTH_MS;
    this.windowStart = now;
    this.consumedSinceStart = 0;
    if (!fast) return 0;
    this.markBulk();
    const extra = host.growWindow(this.recvWindowSize);
    this.recvWindowSize += extra;
    this.grown += extra;
    return extra;
  }

  /** Abandons the stream and tells the peer why. No handler events follow. */
  reset(code: number = ErrorCode.CANCEL, message = ''): void {
    if (this.closed) return;
    this.host.sendReset(this.id, code, message);
    this.close();
  }

  // ---- called by the session ----

  /** @internal The REQUEST carried END_STREAM: the send half is over and no frame may follow it. */
  endedWithHead(): void {
    this.finishLocal();
  }

  /** @internal Returns an error code when the head breaks the stream's state. */
  receiveResponse(head: ResponseHead, end: boolean): number {
    if (this.closed) return ErrorCode.NO_ERROR;
    if (this.remoteEnded) return ErrorCode.STREAM_CLOSED;
    if (this.finalResponse) return ErrorCode.PROTOCOL_ERROR;
    if (head.status === 101) {
      if (!this.upgrade) return ErrorCode.PROTOCOL_ERROR;
      this.finalResponse = true;
    } else if (head.status >= 200) {
      this.finalResponse = true;
    } else if (end) {
      // An informational head cannot be the last thing on a stream.
      return ErrorCode.PROTOCOL_ERROR;
    }
    if (end) this.remoteEnded = true;
    this.handler.onResponse?.(head, end);
    if (end && !this.closed) {
      this.handler.onEnd?.(undefined);
      this.maybeClose();
    }
    return ErrorCode.NO_ERROR;
  }

  /** @internal Returns an error code when the peer broke flow control. */
  receiveData(data: Uint8Array, end: boolean): number {
    if (this.closed) return ErrorCode.NO_ERROR;
    if (this.remoteEnded) return ErrorCode.STREAM_CLOSED;
    if (data.length > this.recvAvailable) return ErrorCode.FLOW_CONTROL_ERROR;
    this.recvAvailable -= data.length;
    if (end) this.remoteEnded = true;
    if (data.length > 0) this.handler.onData?.(data);
    if (end && !this.closed) {
      this.handler.onEnd?.(undefined);
      this.maybeClose();
    }
    return ErrorCode.NO_ERROR;
  }

  /** @internal */
  receiveTrailers(trailers: HeaderList): number {
    if (this.closed) return ErrorCode.NO_ERROR;
    if (this.remoteEnded) return ErrorCode.STREAM_CLOSED;
    this.remoteEnded = true;
    this.handler.onEnd?.(trailers);
    this.maybeClose();
    return ErrorCode.NO_ERROR;
  }

  /** @internal Returns an error code when the window would overflow. */
  receiveWindowUpdate(increment: number): number {
    if (this.closed) return ErrorCode.NO_ERROR;
    if (this.sendWindow + increment > 0x7fff_ffff) return ErrorCode.FLOW_CONTROL_ERROR;
    this.sendWindow += increment;
    if (this.sendWindow > this.initialSendWindow) this.markBulk();
    this.flush();
    if (this.blocked && this.pendingBytes === 0 && !this.closed) {
      this.blocked = false;
      this.handler.onWritable?.();
    }
    return ErrorCode.NO_ERROR;
  }

  /** @internal The peer reset the stream, or the connection is gone. */
  fail(error: StreamError): void {
    if (this.closed) return;
    this.close();
    this.handler.onReset?.(error);
  }

  private flush(): void {
    const max = this.host.peerMaxFrameSize;
    while (this.pending.length > 0 && this.sendWindow > 0) {
      const head = this.pending[0]!;
      const n = Math.min(head.length, this.sendWindow, max);
      const piece = n === head.length ? head : head.subarray(0, n);
      if (n === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(n);
      this.pendingBytes -= n;
      this.sendWindow -= n;
      const last = this.pending.length === 0 && this.endQueued !== undefined && this.endQueued.trailers === undefined;
      this.host.sendData(this.id, piece, last);
      if (last) {
        this.finishLocal();
        return;
      }
    }
    if (this.pending.length === 0 && this.endQueued !== undefined && !this.localEnded) {
      const { trailers } = this.endQueued;
      if (trailers) this.host.sendTrailers(this.id, trailers);
      else this.host.sendData(this.id, new Uint8Array(0), true);
      this.finishLocal();
    }
  }

  private finishLocal(): void {
    this.localEnded = true;
    this.endQueued ??= { trailers: undefined };
    this.maybeClose();
  }

  private maybeClose(): void {
    if (this.localEnded && this.remoteEnded) this.close();
  }

  private markBulk(): void {
    if (this.bulk || this.closed) return;
    this.bulk = true;
    this.host.bulkChanged?.(1);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.bulk) this.host.bulkChanged?.(-1);
    this.pending.length = 0;
    this.pendingBytes = 0;
    if (this.grown > 0) this.host.releaseWindow?.(this.grown);
    this.grown = 0;
    this.host.streamClosed(this);
  }
}
