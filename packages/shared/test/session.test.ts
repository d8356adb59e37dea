/**
 * Two Sessions (or a Session and a peer that writes frames by hand) over an
 * in-memory socket: ordered, asynchronous, and pausable per direction. Tests
 * wait for events (or for both directions to go quiet), never for a fixed time.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CloseCode,
  ErrorCode,
  FrameDecoder,
  FrameType,
  MAX_MAX_FRAME_SIZE,
  NoticeKind,
  ProtocolError,
  Session,
  StreamError,
  encodeData,
  encodeFrameHeader,
  encodeHello,
  encodeRequest,
  encodeResponse,
  encodeTrailers,
  encodeWindowUpdate,
  type DecodeItem,
  type DrawbridgeError,
  type Frame,
  type HeaderList,
  type Hello,
  type RequestHead,
  type ResponseHead,
  type SessionOptions,
  type Stream,
  type StreamHandler,
  type Transport,
  maxMessageSize,
} from '../src/index.ts';

// ---- waiting for events ----

const waiters = new Set<() => void>();
/** Something happened: re-check every pending `until`. */
function changed(): void {
  for (const check of [...waiters]) check();
}

/**
 * Resolves once `pred()` holds, re-checked whenever anything in the harness
 * changes. The timer is only a watchdog that turns a hang into a failure (and
 * keeps the event loop alive while the sessions' unref'd timers run).
 */
function until(pred: () => boolean, what: string, ms = 5000): Promise<void> {
  if (pred()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!pred()) return;
      waiters.delete(check);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`timed out waiting for: ${what}`));
    }, ms);
    waiters.add(check);
  });
}

// ---- the in-memory socket ----

interface Receiver {
  receive(message: Uint8Array): void;
  transportClosed(code: number, reason: string): void;
}

type Item = { message: Uint8Array } | { code: number; reason: string };

/** One direction of a socket: messages arrive in order, one per macrotask, unless paused. */
class Link {
  receiver!: Receiver;
  /** Every frame sent through `send`, decoded (a message holds whole frames). */
  readonly frames: Frame[] = [];
  /** The longest message sent through `send`, in bytes. */
  largest = 0;
  /** How many frames each message sent through `send` held, in order. */
  readonly framesPerMessage: number[] = [];
  private readonly queue: Item[] = [];
  private paused = false;
  private scheduled = false;
  private ended = false;

  get busy(): boolean {
    return this.queue.length > 0 && !this.paused;
  }

  send(message: Uint8Array): void {
    if (this.ended) return;
    const tap = new FrameDecoder(MAX_MAX_FRAME_SIZE);
    let n = 0;
    for (const item of tap.push(message)) {
      assert.ok(!(item instanceof ProtocolError), `a session sent a malformed frame: ${item instanceof ProtocolError ? item.code : ''}`);
      this.frames.push(item);
      n++;
    }
    this.framesPerMessage.push(n);
    tap.finish();
    this.largest = Math.max(this.largest, message.length);
    this.queue.push({ message });
    this.schedule();
  }

  /** Puts raw bytes on the wire, bypassing the tap (for frames no session would send). */
  inject(message: Uint8Array): void {
    this.queue.push({ message });
    this.schedule();
  }

  close(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.queue.push({ code, reason });
    this.schedule();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.paused || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(this.deliver);
  }

  private readonly deliver = (): void => {
    this.scheduled = false;
    if (this.paused) return;
    const item = this.queue.shift();
    if (!item) return;
    if ('message' in item) this.receiver.receive(item.message);
    else this.receiver.transportClosed(item.code, item.reason);
    changed();
    this.schedule();
  };
}

/** One message from a batch's parts, as a plain Uint8Array (the session is platform-neutral; Buffer would change what the tests compare). */
function joinParts(parts: readonly Uint8Array[], bytes: number): Uint8Array {
  const message = new Uint8Array(bytes);
  let o = 0;
  for (const part of parts) {
    message.set(part, o);
    o += part.length;
  }
  return message;
}

/** The transport a Session writes to. */
class End implements Transport {
  closedWith: { code: number; reason: string } | undefined;
  private readonly out: Link;
  constructor(out: Link) {
    this.out = out;
  }
  send(parts: readonly Uint8Array[], bytes: number): void {
    if (!this.closedWith) this.out.send(joinParts(parts, bytes));
  }
  close(code: number, reason: string): void {
    if (this.closedWith) return;
    this.closedWith = { code, reason };
    this.out.close(code, reason);
    changed();
  }
}

/** A Session plus what the tests observe of it. */
class Side {
  readonly end: End;
  readonly session: Session;
  ready: { peer: Hello; version: number } | undefined;
  closed: { error: DrawbridgeError | undefined } | undefined;
  goaway: { errorCode: number; message: string } | undefined;
  readonly notices: Array<{ kind: number; body: Uint8Array }> = [];
  maxOpen = 0;

  constructor(role: 'relay' | 'connector', out: Link, options: Partial<SessionOptions>) {
    this.end = new End(out);
    this.session = new Session({
      pingIntervalMs: 0,
      ...options,
      role,
      transport: this.end,
      onReady: (peer, version) => {
        this.ready = { peer, version };
        options.onReady?.(peer, version);
        changed();
      },
      onClose: (error) => {
        this.closed = { error };
        options.onClose?.(error);
        changed();
      },
      onGoaway: (errorCode, message) => {
        this.goaway = { errorCode, message };
        options.onGoaway?.(errorCode, message);
        changed();
      },
      onNotice: (kind, body) => {
        this.notices.push({ kind, body: body.slice() });
        changed();
        options.onNotice?.(kind, body);
      },
      onStreamCountChange: (open) => {
        this.maxOpen = Math.max(this.maxOpen, open);
        changed();
      },
    });
  }
}

interface Pair {
  relay: Side;
  connector: Side;
  /** relay → connector */
  r2c: Link;
  /** connector → relay */
  c2r: Link;
}

/** A relay and a connector Session, started, handshake not yet awaited. */
function connect(options: { relay?: Partial<SessionOptions>; connector?: Partial<SessionOptions> } = {}): Pair {
  const r2c = new Link();
  const c2r = new Link();
  const relay = new Side('relay', r2c, options.relay ?? {});
  const connector = new Side('connector', c2r, { onStream: echoApp(), ...options.connector });
  r2c.receiver = connector.session;
  c2r.receiver = relay.session;
  relay.session.start();
  connector.session.start();
  return { relay, connector, r2c, c2r };
}

async function connected(options: Parameters<typeof connect>[0] = {}): Promise<Pair> {
  const p = connect(options);
  await until(() => p.relay.ready !== undefined && p.connector.ready !== undefined, 'handshake');
  return p;
}

/** Resolves when neither direction has anything left to deliver. */
async function settle(...links: Link[]): Promise<void> {
  for (let quiet = 0; quiet < 3; ) {
    await new Promise((resolve) => setImmediate(resolve));
    quiet = links.some((l) => l.busy) ? 0 : quiet + 1;
  }
}

function shutdown(p: Pair): void {
  p.relay.session.close();
  p.connector.session.close();
}

/** A peer that speaks in hand-built frames and records what it receives. */
class RawPeer implements Receiver {
  readonly items: DecodeItem[] = [];
  closed: { code: number; reason: string } | undefined;
  private readonly decoder = new FrameDecoder(MAX_MAX_FRAME_SIZE);
  private readonly out: Link;
  constructor(out: Link) {
    this.out = out;
  }
  send(...frames: Uint8Array[]): void {
    this.out.inject(concat(...frames));
  }
  receive(message: Uint8Array): void {
    this.items.push(...this.decoder.push(message));
    changed();
  }
  transportClosed(code: number, reason: string): void {
    this.closed = { code, reason };
    changed();
  }
  frames(type?: number, streamId?: number): Frame[] {
    return this.items.filter((f): f is Frame => !(f instanceof ProtocolError) && (type === undefined || f.type === type) && (streamId === undefined || f.streamId === streamId));
  }
  async next(type: number, streamId?: number): Promise<Frame> {
    await until(() => this.frames(type, streamId).length > 0, `frame type ${type} on stream ${streamId ?? 'any'}`);
    return this.frames(type, streamId)[0]!;
  }
}

/** One Session against a RawPeer that has already sent its HELLO. */
async function againstRaw(role: 'relay' | 'connector', options: Partial<SessionOptions> = {}, hello: Partial<Hello> = {}) {
  const toRaw = new Link();
  const toSession = new Link();
  const side = new Side(role, toRaw, role === 'connector' ? { onStream: echoApp(), ...options } : options);
  const raw = new RawPeer(toSession);
  toRaw.receiver = raw;
  toSession.receiver = side.session;
  side.session.start();
  raw.send(encodeHello({ ...HELLO, ...hello }));
  await until(() => side.ready !== undefined, 'handshake with the raw peer');
  await raw.next(FrameType.HELLO);
  return { side, session: side.session, raw, toRaw, toSession };
}

// ---- streams ----

const HELLO: Hello = { minVersion: 1, maxVersion: 1, maxFrameSize: 65536, initialWindow: 65536, maxStreams: 16, agent: 'raw-peer' };

function head(method = 'POST', target = '/upload', headers: HeaderList = []): RequestHead {
  return { method, target, app: 'app-1', requestId: `req-${target}`, headers, meta: [['client', '192.0.2.7']] };
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A stream handler that records everything, consuming data as it arrives unless told not to. */
class Recorder implements StreamHandler {
  stream: Stream | undefined;
  autoConsume = true;
  readonly responses: ResponseHead[] = [];
  readonly chunks: Uint8Array[] = [];
  received = 0;
  ended = false;
  trailers: HeaderList | undefined;
  error: StreamError | undefined;
  writable = 0;

  onResponse(h: ResponseHead): void {
    this.responses.push(h);
    changed();
  }
  onData(chunk: Uint8Array): void {
    this.chunks.push(chunk.slice());
    this.received += chunk.length;
    if (this.autoConsume) this.stream!.consume(chunk.length);
    changed();
  }
  onEnd(trailers: HeaderList | undefined): void {
    this.ended = true;
    this.trailers = trailers;
    changed();
  }
  onReset(error: StreamError): void {
    this.error = error;
    changed();
  }
  onWritable(): void {
    this.writable++;
    changed();
  }
  get done(): boolean {
    return this.ended || this.error !== undefined;
  }
  body(): Uint8Array {
    return concat(...this.chunks);
  }
}

function open(p: Pair | Session, h: RequestHead, options: { endStream?: boolean; upgrade?: boolean } = {}): Recorder {
  const session = p instanceof Session ? p : p.relay.session;
  const rec = new Recorder();
  rec.stream = session.openStream(h, rec, options);
  return rec;
}

/**
 * The connector's application: answers each request with its own body, after
 * the request ended, with repeated headers and a trailer.
 */
function echoApp(seen?: Recorder[]): (s: Stream) => void {
  return (s) => {
    const rec = new Recorder();
    rec.stream = s;
    seen?.push(rec);
    const answer = (): void => {
      s.respond({ status: 200, reason: 'OK', headers: [['set-cookie', 'a=1'], ['content-type', 'application/octet-stream'], ['set-cookie', 'b=2']] });
      for (const c of rec.chunks) s.write(c);
      s.end([['x-echo-bytes', String(rec.received)]]);
    };
    s.handler = Object.assign(rec, {
      onEnd(trailers: HeaderList | undefined): void {
        rec.ended = true;
        rec.trailers = trailers;
        answer();
        changed();
      },
    });
    if (s.remoteDone) answer();
  };
}

/** A connector application that hands each stream to the test. */
function captureApp(into: Recorder[], configure?: (rec: Recorder) => void): (s: Stream) => void {
  return (s) => {
    const rec = new Recorder();
    rec.stream = s;
    configure?.(rec);
    s.handler = rec;
    into.push(rec);
    changed();
  };
}

function dataBytes(frames: Frame[], streamId: number): number {
  return frames.reduce((n, f) => n + (f.type === FrameType.DATA && f.streamId === streamId ? f.data.length : 0), 0);
}

function resets(frames: Frame[]): Array<[number, number]> {
  return frames.flatMap((f) => (f.type === FrameType.RESET ? [[f.streamId, f.errorCode] as [number, number]] : []));
}

// ---- tests ----

describe('handshake', () => {
  it('both sides exchange HELLO, agree on version 1 and learn the peer limits', async () => {
    const p = await connected({
      relay: { agent: 'drawbridge-relay/test', limits: { maxFrameSize: 32768, initialWindow: 100_000 } },
      connector: { agent: 'drawbridge-connector/test', limits: { maxStreams: 7 } },
    });
    assert.equal(p.relay.ready!.version, 1);
    assert.equal(p.connector.ready!.version, 1);
    assert.deepEqual(p.relay.ready!.peer, { minVersion: 1, maxVersion: 1, maxFrameSize: 65536, initialWindow: 262144, maxStreams: 7, agent: 'drawbridge-connector/test' });
    assert.deepEqual(p.connector.ready!.peer, { minVersion: 1, maxVersion: 1, maxFrameSize: 32768, initialWindow: 100_000, maxStreams: 256, agent: 'drawbridge-relay/test' });
    assert.ok(p.relay.session.isOpen && p.connector.session.isOpen);
    assert.equal(p.relay.session.acceptsStreams, true);
    assert.equal(p.connector.session.peerMaxFrameSize, 32768);
    // The first frame each side sent is its HELLO, alone.
    assert.equal(p.r2c.frames[0]!.type, FrameType.HELLO);
    assert.equal(p.c2r.frames[0]!.type, FrameType.HELLO);
    shutdown(p);
  });

  it('no streams before the handshake, and only the relay opens them', async () => {
    const p = connect();
    assert.throws(() => p.relay.session.openStream(head(), {}), { code: 'ERR_SESSION_UNAVAILABLE' });
    await until(() => p.relay.ready !== undefined && p.connector.ready !== undefined, 'handshake');
    assert.throws(() => p.connector.session.openStream(head(), {}), { code: 'ERR_WRONG_ROLE' });
    shutdown(p);
  });

  it('the highest version both speak wins', async () => {
    const p = await connected({ relay: { versions: { min: 1, max: 3 } }, connector: { versions: { min: 2, max: 5 } } });
    assert.equal(p.relay.ready!.version, 3);
    assert.equal(p.connector.ready!.version, 3);
    shutdown(p);
  });

  it('no common version: both close with ERR_VERSION_MISMATCH and close code 4001', async () => {
    const p = connect({ relay: { versions: { min: 1, max: 1 } }, connector: { versions: { min: 2, max: 3 } } });
    await until(() => p.relay.closed !== undefined && p.connector.closed !== undefined, 'both sides closed');
    for (const side of [p.relay, p.connector]) {
      assert.equal(side.closed!.error?.code, 'ERR_VERSION_MISMATCH');
      assert.ok(side.closed!.error instanceof ProtocolError);
      assert.equal(side.closed!.error.wireCode, ErrorCode.VERSION_MISMATCH);
      assert.equal(side.end.closedWith?.code, CloseCode.VERSION_MISMATCH);
      assert.equal(side.ready, undefined);
    }
    // Each side told the other why before closing.
    for (const link of [p.r2c, p.c2r]) {
      const goaway = link.frames.find((f) => f.type === FrameType.GOAWAY);
      assert.ok(goaway && goaway.type === FrameType.GOAWAY);
      assert.equal(goaway.errorCode, ErrorCode.VERSION_MISMATCH);
    }
  });

  it('a peer that never sends HELLO: ERR_HANDSHAKE_TIMEOUT, close code 4004', async () => {
    const toRaw = new Link();
    const relay = new Side('relay', toRaw, { handshakeTimeoutMs: 30 });
    toRaw.receiver = new RawPeer(new Link());
    relay.session.start();
    await until(() => relay.closed !== undefined, 'handshake timeout');
    assert.equal(relay.closed!.error?.code, 'ERR_HANDSHAKE_TIMEOUT');
    assert.equal(relay.end.closedWith?.code, CloseCode.HANDSHAKE_TIMEOUT);
  });

  for (const [name, first] of [
    ['a frame other than HELLO first', encodeData(1, text('x'))],
    ['a HELLO with a frame limit below 16 KiB', encodeHello({ ...HELLO, maxFrameSize: 16383 })],
    ['a HELLO with a zero window', encodeHello({ ...HELLO, initialWindow: 0 })],
    ['a HELLO with no streams', encodeHello({ ...HELLO, maxStreams: 0 })],
  ] as const) {
    it(`${name}: ERR_HANDSHAKE, close code 4000`, async () => {
      const toRaw = new Link();
      const toSession = new Link();
      const relay = new Side('relay', toRaw, {});
      const raw = new RawPeer(toSession);
      toRaw.receiver = raw;
      toSession.receiver = relay.session;
      relay.session.start();
      raw.send(first);
      await until(() => relay.closed !== undefined, 'close');
      assert.equal(relay.closed!.error?.code, 'ERR_HANDSHAKE');
      assert.equal(relay.end.closedWith?.code, CloseCode.PROTOCOL_ERROR);
    });
  }

  it('a second HELLO is a connection error', async () => {
    const { side, raw } = await againstRaw('connector');
    raw.send(encodeHello(HELLO));
    await until(() => side.closed !== undefined, 'close');
    assert.equal(side.closed!.error?.code, 'ERR_HANDSHAKE');
    const goaway = await raw.next(FrameType.GOAWAY);
    assert.ok(goaway.type === FrameType.GOAWAY && goaway.errorCode === ErrorCode.PROTOCOL_ERROR);
  });
});

describe('streams', () => {
  it('request → response → body → trailers', async () => {
    const seen: Recorder[] = [];
    const p = await connected({ connector: { onStream: echoApp(seen) } });
    const h = head('POST', '/upload', [['content-type', 'text/plain'], ['x-forwarded-for', '10.0.0.1'], ['X-Forwarded-For', '10.0.0.2']]);
    const rec = open(p, h);
    const body = bytes(150_000);
    rec.stream!.write(body.subarray(0, 1000));
    rec.stream!.write(body.subarray(1000));
    rec.stream!.end([['x-checksum', 'abc']]);
    await until(() => rec.done, 'response complete');
    assert.equal(rec.error, undefined);

    // What the connector saw: the head as sent (repeated names in order), the body, the trailers.
    const got = seen[0]!;
    assert.deepEqual(got.stream!.request, h);
    assert.equal(got.stream!.upgrade, false);
    assert.deepEqual(got.body(), body);
    assert.deepEqual(got.trailers, [['x-checksum', 'abc']]);

    // What the relay saw.
    assert.deepEqual(rec.responses, [{ status: 200, reason: 'OK', headers: [['set-cookie', 'a=1'], ['content-type', 'application/octet-stream'], ['set-cookie', 'b=2']] }]);
    assert.deepEqual(rec.body(), body);
    assert.deepEqual(rec.trailers, [['x-echo-bytes', '150000']]);

    // DATA frames respect the peer's frame limit, and both sides forget the stream.
    assert.ok(p.r2c.frames.every((f) => f.type !== FrameType.DATA || f.data.length <= 65536));
    await settle(p.r2c, p.c2r);
    assert.equal(p.relay.session.openStreams, 0);
    assert.equal(p.connector.session.openStreams, 0);
    assert.deepEqual(resets([...p.r2c.frames, ...p.c2r.frames]), []);
    shutdown(p);
  });

  it('a request without a body ends with the REQUEST frame: no extra DATA, no reset', async () => {
    const seen: Recorder[] = [];
    const p = await connected({ connector: { onStream: echoApp(seen) } });
    const rec = open(p, head('GET', '/'), { endStream: true });
    assert.equal(rec.stream!.localDone, true);
    assert.equal(rec.stream!.write(text('late')), false);
    await until(() => rec.done, 'response');
    assert.equal(rec.error, undefined);
    assert.equal(seen[0]!.stream!.remoteDone, true);
    await settle(p.r2c, p.c2r);
    // The relay's half ended with END_STREAM on the REQUEST, and nothing else was sent for it.
    const sent = p.r2c.frames.filter((f) => f.streamId === 1);
    assert.deepEqual(
      sent.map((f) => [f.type, f.flags]),
      [[FrameType.REQUEST, 0x01]],
    );
    assert.deepEqual(resets(p.c2r.frames), []);
    assert.equal(p.relay.session.openStreams, 0);
    assert.equal(p.connector.session.openStreams, 0);
    shutdown(p);
  });

  it('informational heads come before the final one', async () => {
    const p = await connected({
      connector: {
        onStream: (s) => {
          s.respond({ status: 100, reason: 'Continue', headers: [] });
          s.respond({ status: 103, reason: 'Early Hints', headers: [['link', '</a.css>; rel=preload']] });
          s.respond({ status: 204, reason: 'No Content', headers: [] }, true);
        },
      },
    });
    const rec = open(p, head('GET'), { endStream: true });
    await until(() => rec.done, 'response');
    assert.deepEqual(
      rec.responses.map((r) => r.status),
      [100, 103, 204],
    );
    assert.equal(rec.ended, true);
    shutdown(p);
  });

  it('many concurrent streams, interleaved on the wire, each gets its own body back', async () => {
    const seen: Recorder[] = [];
    const limits = { maxFrameSize: 16384, initialWindow: 65536 };
    const p = await connected({ relay: { limits }, connector: { limits, onStream: echoApp(seen) } });
    const n = 40;
    const bodies = Array.from({ length: n }, (_, i) => bytes(1 + ((i * 7919) % 50_000), i));
    const recs = bodies.map((_, i) => open(p, head('PUT', `/item/${i}`)));
    // Round-robin writes over several turns, the way concurrent uploads arrive.
    for (let off = 0; off < 50_000; off += 4000) {
      recs.forEach((rec, i) => {
        if (off < bodies[i]!.length) rec.stream!.write(bodies[i]!.subarray(off, off + 4000));
      });
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (const rec of recs) rec.stream!.end();
    await until(() => recs.every((r) => r.done), 'all responses');
    recs.forEach((rec, i) => {
      assert.equal(rec.error, undefined, `stream ${i}`);
      assert.deepEqual(rec.body(), bodies[i], `body of stream ${i}`);
      assert.deepEqual(rec.trailers, [['x-echo-bytes', String(bodies[i]!.length)]]);
    });
    assert.equal(p.connector.maxOpen, n);
    // Interleaved: DATA of one stream is followed by DATA of another far more often than once per stream.
    const ids = p.r2c.frames.filter((f) => f.type === FrameType.DATA).map((f) => f.streamId);
    let switches = 0;
    for (let i = 1; i < ids.length; i++) if (ids[i] !== ids[i - 1]) switches++;
    assert.ok(switches > 4 * n, `only ${switches} switches between streams`);
    assert.ok(p.r2c.frames.every((f) => f.type !== FrameType.DATA || f.data.length <= 16384));
    await settle(p.r2c, p.c2r);
    assert.equal(p.relay.session.openStreams, 0);
    assert.equal(p.connector.session.openStreams, 0);
    shutdown(p);
  });

  it('a batch passes 256 KiB by at most the frame that crossed it: every message fits maxMessageSize', async () => {
    const limits = { initialWindow: 4 * 1024 * 1024, maxWindow: 4 * 1024 * 1024 };
    const seen: Recorder[] = [];
    const p = await connected({ relay: { limits }, connector: { limits, onStream: captureApp(seen) } });
    // Eight uploads written in one turn, in pieces that do not divide 256 KiB: the
    // frame that crosses the batch limit is a whole 60,000-byte DATA frame.
    const recs = Array.from({ length: 8 }, (_, i) => open(p, head('PUT', `/bulk/${i}`)));
    for (let round = 0; round < 5; round++) for (const rec of recs) rec.stream!.write(bytes(60_000, round));
    for (const rec of recs) rec.stream!.end();
    await until(() => seen.length === 8 && seen.every((r) => r.ended), 'all bodies');
    const bound = maxMessageSize({ maxFrameSize: 65536 });
    assert.equal(bound, 262144 + 10 + 65536, 'protocol.md §2.2');
    assert.ok(p.r2c.largest > 262144, `no batch crossed 256 KiB (largest ${p.r2c.largest})`);
    assert.ok(p.r2c.largest <= 262144 + 10 + 60_000, `a message of ${p.r2c.largest} bytes: more than one frame past the batch limit`);
    shutdown(p);
  });

  it('a batch holds at most 24 frames: many small exchanges in one turn leave in several messages', async () => {
    const p = await connected();
    const sentBefore = { r2c: p.r2c.framesPerMessage.length, c2r: p.c2r.framesPerMessage.length };
    // 40 requests opened in one turn; the connector answers each (head, then trailers) as they arrive.
    const recs = Array.from({ length: 40 }, (_, i) => open(p, head('GET', `/small/${i}`), { endStream: true }));
    await until(() => recs.every((r) => r.done), 'all responses');
    for (const rec of recs) assert.equal(rec.error, undefined);
    const r2c = p.r2c.framesPerMessage.slice(sentBefore.r2c);
    const c2r = p.c2r.framesPerMessage.slice(sentBefore.c2r);
    assert.deepEqual(r2c, [24, 16], 'the 40 REQUEST frames of one turn: one full batch, then the rest');
    assert.ok(c2r.every((n) => n <= 24), `frames per message toward the relay: ${c2r.join(', ')}`);
    assert.ok(c2r.reduce((a, b) => a + b, 0) >= 2 * 40 && c2r.length >= 4, `frames per message toward the relay: ${c2r.join(', ')}`);
    shutdown(p);
  });

  it('upgrade streams carry raw bytes both ways after a 101', async () => {
    const seen: Recorder[] = [];
    const p = await connected({
      connector: {
        onStream: captureApp(seen),
      },
    });
    const rec = open(p, head('GET', '/ws', [['upgrade', 'websocket'], ['connection', 'Upgrade']]), { upgrade: true });
    await until(() => seen.length === 1, 'upgrade request');
    const app = seen[0]!;
    assert.equal(app.stream!.upgrade, true);
    app.stream!.respond({ status: 101, reason: 'Switching Protocols', headers: [['upgrade', 'websocket']] });
    // Raw bytes of WebSocket frames, opaque to the tunnel.
    const fromServer = new Uint8Array([0x81, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f]);
    const fromClient = new Uint8Array([0x81, 0x85, 0x01, 0x02, 0x03, 0x04, 0x69, 0x67, 0x6f, 0x68, 0x6e]);
    app.stream!.write(fromServer);
    await until(() => rec.received === fromServer.length, 'server bytes');
    assert.equal(rec.responses[0]!.status, 101);
    assert.deepEqual(rec.body(), fromServer);
    rec.stream!.write(fromClient);
    await until(() => app.received === fromClient.length, 'client bytes');
    assert.deepEqual(app.body(), fromClient);
    rec.stream!.end();
    app.stream!.end();
    await until(() => rec.ended && app.ended, 'both halves closed');
    assert.equal(p.r2c.frames.find((f) => f.type === FrameType.REQUEST)!.flags, 0x02);
    await settle(p.r2c, p.c2r);
    assert.equal(p.relay.session.openStreams, 0);
    assert.equal(p.connector.session.openStreams, 0);
    shutdown(p);
  });

  it('NOTICE reaches the other side', async () => {
    const p = await connected();
    p.relay.session.notify(NoticeKind.CONFIG_CHANGED, text('rev-9'));
    await until(() => p.connector.notices.length === 1, 'notice');
    assert.equal(p.connector.notices[0]!.kind, NoticeKind.CONFIG_CHANGED);
    assert.deepEqual(p.connector.notices[0]!.body, text('rev-9'));
    assert.throws(() => p.relay.session.notify(NoticeKind.CONFIG_CHANGED, new Uint8Array(65535)), { code: 'ERR_NOTICE_TOO_LARGE' });
    shutdown(p);
  });

  it('a connection-level handler that throws ends the session with 4005 (ERR_INTERNAL), not 4000', async () => {
    const p = await connected({
      connector: {
        onNotice: () => {
          throw new Error('bug in the application code');
        },
      },
    });
    p.relay.session.notify(1);
    await until(() => p.connector.closed !== undefined && p.relay.closed !== undefined, 'both closed');
    assert.equal(p.connector.closed!.error?.code, 'ERR_INTERNAL');
    assert.equal(p.connector.end.closedWith?.code, CloseCode.INTERNAL_ERROR);
    assert.equal((p.relay.closed!.error as ProtocolError).wireCode, ErrorCode.INTERNAL_ERROR);
  });
});

describe('flow control', () => {
  it('a receiver that never consumes stops the sender at exactly initialWindow bytes; consume resumes it', async () => {
    const W = 65536;
    const seen: Recorder[] = [];
    const p = await connected({ connector: { limits: { initialWindow: W, maxWindow: W }, onStream: captureApp(seen, (r) => (r.autoConsume = false)) } });
    const rec = open(p, head('POST'));
    const chunk = bytes(10_000);
    let written = 0;
    let accepted = true;
    while (accepted) {
      accepted = rec.stream!.write(chunk);
      written += chunk.length;
    }
    // The seventh chunk crosses the window: 65,536 bytes go out, the rest waits.
    assert.equal(written, 70_000);
    assert.equal(rec.stream!.queuedBytes, 70_000 - W);
    await until(() => seen[0]?.received === W, 'a full window at the connector');
    await settle(p.r2c, p.c2r);
    // Quiet now, and nothing beyond the window was sent or delivered.
    assert.equal(seen[0]!.received, W);
    assert.equal(dataBytes(p.r2c.frames, 1), W);
    assert.equal(rec.stream!.queuedBytes, 70_000 - W);
    assert.equal(rec.writable, 0);
    assert.equal(p.c2r.frames.filter((f) => f.type === FrameType.WINDOW_UPDATE).length, 0);

    // Consuming returns credit; the queued tail goes out and the source may resume.
    seen[0]!.stream!.consume(W);
    await until(() => rec.writable === 1, 'onWritable');
    assert.equal(rec.stream!.queuedBytes, 0);
    await until(() => seen[0]!.received === 70_000, 'the queued tail');
    const update = p.c2r.frames.find((f) => f.type === FrameType.WINDOW_UPDATE);
    assert.ok(update?.type === FrameType.WINDOW_UPDATE && update.increment === W && update.streamId === 1);
    shutdown(p);
  });

  it('a well-behaved source and a slow consumer move 2 MiB with at most one window in flight', async () => {
    const W = 32768;
    const seen: Recorder[] = [];
    let maxUnconsumed = 0;
    const p = await connected({
      connector: {
        // Window growth off: this test is about the fixed window (growth has its own below).
        limits: { initialWindow: W, maxWindow: W },
        onStream: captureApp(seen, (r) => {
          r.autoConsume = false;
          let unconsumed = 0;
          r.onData = (chunk) => {
            r.received += chunk.length;
            unconsumed += chunk.length;
            maxUnconsumed = Math.max(maxUnconsumed, unconsumed);
            // Hand the bytes on "later", like a socket that drains asynchronously.
            setImmediate(() => {
              unconsumed -= chunk.length;
              r.stream!.consume(chunk.length);
              changed();
            });
          };
        }),
      },
    });
    const rec = open(p, head('POST'));
    const total = 2 * 1024 * 1024;
    const chunk = bytes(7000);
    let sent = 0;
    let maxQueued = 0;
    while (sent < total) {
      const piece = chunk.subarray(0, Math.min(chunk.length, total - sent));
      sent += piece.length;
      const more = rec.stream!.write(piece);
      maxQueued = Math.max(maxQueued, rec.stream!.queuedBytes);
      if (!more) {
        const before = rec.writable;
        await until(() => rec.writable > before, 'onWritable');
      }
    }
    rec.stream!.end();
    await until(() => seen[0]!.stream!.remoteDone, 'whole body delivered');
    assert.equal(seen[0]!.received, total);
    assert.ok(maxUnconsumed <= W, `receiver held ${maxUnconsumed} unconsumed bytes`);
    assert.ok(maxQueued < chunk.length, `sender queued ${maxQueued} bytes`);
    // Credit is batched: one WINDOW_UPDATE per quarter window at most.
    const updates = p.c2r.frames.filter((f) => f.type === FrameType.WINDOW_UPDATE);
    assert.ok(updates.length <= total / (W / 4) + 1, `${updates.length} WINDOW_UPDATE frames`);
    shutdown(p);
  });

  it('the same holds for response bodies toward a relay that does not consume', async () => {
    const W = 20_000;
    const seen: Recorder[] = [];
    const p = await connected({ relay: { limits: { initialWindow: W } }, connector: { onStream: captureApp(seen) } });
    const rec = open(p, head('GET'), { endStream: true });
    rec.autoConsume = false;
    await until(() => seen.length === 1, 'request');
    const s = seen[0]!.stream!;
    s.respond({ status: 200, reason: 'OK', headers: [] });
    assert.equal(s.write(bytes(W - 1)), true);
    assert.equal(s.write(bytes(2)), false);
    assert.equal(s.queuedBytes, 1);
    await until(() => rec.received === W, 'a window');
    await settle(p.r2c, p.c2r);
    assert.equal(rec.received, W);
    rec.stream!.consume(W);
    await until(() => seen[0]!.writable === 1 && rec.received === W + 1, 'resume');
    shutdown(p);
  });

  /** Sends `total` bytes on a new request stream, pausing on backpressure; resolves when all were written. */
  async function pump(p: Pair, total: number): Promise<Recorder> {
    const rec = open(p, head('POST'));
    const chunk = bytes(8192);
    for (let sent = 0; sent < total; sent += chunk.length) {
      if (!rec.stream!.write(chunk)) {
        const before = rec.writable;
        await until(() => rec.writable > before, 'onWritable');
      }
    }
    rec.stream!.end();
    return rec;
  }

  it('a stream that keeps up doubles its receive window up to maxWindow, within the session budget, and gives the growth back', async () => {
    const W = 16384;
    const seen: Recorder[] = [];
    let largest = 0;
    const p = await connected({
      connector: {
        clock: () => 0, // every window is consumed "at once": a fast stream
        limits: { initialWindow: W, maxWindow: 4 * W, windowBudget: 3 * W },
        onStream: captureApp(seen, (r) => {
          const onData = r.onData.bind(r);
          r.onData = (chunk) => {
            onData(chunk);
            largest = Math.max(largest, r.stream!.receiveWindow);
          };
          // Answer once the body is in, so the stream closes.
          const onEnd = r.onEnd.bind(r);
          r.onEnd = (trailers) => {
            onEnd(trailers);
            r.stream!.respond({ status: 204, reason: 'No Content', headers: [] }, true);
          };
        }),
      },
    });
    await pump(p, 512 * 1024);
    await until(() => seen[0]?.ended === true, 'first body');
    assert.equal(largest, 4 * W, '16 → 32 → 64 KiB');
    const granted = p.c2r.frames.reduce((n, f) => n + (f.type === FrameType.WINDOW_UPDATE && f.streamId === 1 ? f.increment : 0), 0);
    assert.ok(granted > 512 * 1024 - 4 * W && granted <= 512 * 1024 + 3 * W, `granted ${granted}`);
    // The first stream closed and gave its growth back: the next one grows as far.
    largest = 0;
    await pump(p, 512 * 1024);
    await until(() => seen[1]?.ended === true, 'second body');
    assert.equal(largest, 4 * W);
    shutdown(p);
  });

  it('a slow consumer keeps its initial window, and the budget bounds growth across streams', async () => {
    const W = 16384;
    let t = 0;
    const seen: Recorder[] = [];
    const windows = new Map<number, number>();
    const slow = await connected({
      connector: {
        clock: () => (t += 150), // more than WINDOW_GROWTH_MS between any two looks
        limits: { initialWindow: W, maxWindow: 4 * W },
        onStream: captureApp(seen, (r) => {
          const onData = r.onData.bind(r);
          r.onData = (chunk) => {
            onData(chunk);
            windows.set(r.stream!.id, Math.max(windows.get(r.stream!.id) ?? 0, r.stream!.receiveWindow));
          };
        }),
      },
    });
    await pump(slow, 256 * 1024);
    await until(() => seen[0]?.ended === true, 'slow body');
    assert.equal(windows.get(1), W, 'never grew');
    shutdown(slow);

    windows.clear();
    seen.length = 0;
    const shared = await connected({
      connector: {
        clock: () => 0,
        limits: { initialWindow: W, maxWindow: 4 * W, windowBudget: W },
        onStream: captureApp(seen, (r) => {
          const onData = r.onData.bind(r);
          r.onData = (chunk) => {
            onData(chunk);
            windows.set(r.stream!.id, Math.max(windows.get(r.stream!.id) ?? 0, r.stream!.receiveWindow));
          };
        }),
      },
    });
    await Promise.all([pump(shared, 256 * 1024), pump(shared, 256 * 1024)]);
    await until(() => seen.length === 2 && seen.every((r) => r.ended), 'both bodies');
    const growth = [...windows.values()].reduce((n, w) => n + (w - W), 0);
    assert.equal(growth, W, 'one doubling between them: the budget');
    shutdown(shared);
  });

  it('consume() never grants more credit than was received', async () => {
    const W = 4096;
    const seen: Recorder[] = [];
    const p = await connected({ connector: { limits: { initialWindow: W, maxWindow: W }, onStream: captureApp(seen, (r) => (r.autoConsume = false)) } });
    const rec = open(p, head('POST'));
    rec.stream!.write(bytes(W));
    await until(() => seen[0]?.received === W, 'a window');
    const s = seen[0]!.stream!;
    s.consume(W);
    s.consume(W); // counted twice by mistake
    s.consume(10 * W);
    await settle(p.r2c, p.c2r);
    const granted = p.c2r.frames.reduce((n, f) => n + (f.type === FrameType.WINDOW_UPDATE ? f.increment : 0), 0);
    assert.equal(granted, W);
    // So the sender is held at one window again.
    assert.equal(rec.stream!.write(bytes(W + 1)), false);
    assert.equal(rec.stream!.queuedBytes, 1);
    shutdown(p);
  });

  it('DATA beyond the window gets a FLOW_CONTROL_ERROR reset of that stream only', async () => {
    const seen: Recorder[] = [];
    const p = await connected({ connector: { limits: { initialWindow: 1024 }, onStream: captureApp(seen, (r) => (r.autoConsume = false)) } });
    const a = open(p, head('POST', '/a'));
    const b = open(p, head('POST', '/b'));
    await until(() => seen.length === 2, 'both requests');
    // A peer that ignores its send window: 600 + 600 bytes against a window of 1024.
    p.r2c.inject(concat(encodeData(1, bytes(600)), encodeData(1, bytes(600))));
    await until(() => a.error !== undefined && seen[0]!.error !== undefined, 'stream 1 reset');
    assert.equal(seen[0]!.received, 600);
    assert.equal(seen[0]!.error!.code, 'ERR_STREAM_PROTOCOL');
    assert.equal(seen[0]!.error!.wireCode, ErrorCode.FLOW_CONTROL_ERROR);
    assert.equal(a.error!.code, 'ERR_STREAM_RESET');
    assert.equal(a.error!.wireCode, ErrorCode.FLOW_CONTROL_ERROR);
    assert.equal(a.error!.remote, true);
    assert.deepEqual(resets(p.c2r.frames), [[1, ErrorCode.FLOW_CONTROL_ERROR]]);
    // Stream 2 and the connection carry on.
    seen[1]!.autoConsume = true;
    b.stream!.write(bytes(3000));
    b.stream!.end();
    await until(() => seen[1]!.ended, 'stream 2 body');
    seen[1]!.stream!.respond({ status: 200, reason: 'OK', headers: [] }, true);
    await until(() => b.done, 'stream 2 response');
    assert.equal(b.error, undefined);
    assert.ok(p.relay.session.isOpen && p.connector.session.isOpen);
    shutdown(p);
  });

  it('a WINDOW_UPDATE that overflows the send window resets that stream', async () => {
    const { session, raw } = await againstRaw('relay');
    const rec = open(session, head('POST'));
    await raw.next(FrameType.REQUEST, 1);
    raw.send(encodeWindowUpdate(1, 0x7fffffff));
    await until(() => rec.error !== undefined, 'reset');
    assert.equal(rec.error!.wireCode, ErrorCode.FLOW_CONTROL_ERROR);
    const reset = await raw.next(FrameType.RESET, 1);
    assert.ok(reset.type === FrameType.RESET && reset.errorCode === ErrorCode.FLOW_CONTROL_ERROR);
    assert.ok(session.isOpen);
    session.close();
  });
});

describe('reset', () => {
  it('relay → connector: the connector learns why; no more events on the relay side', async () => {
    const seen: Recorder[] = [];
    const p = await connected({ connector: { onStream: captureApp(seen) } });
    const rec = open(p, head('POST'));
    rec.stream!.write(bytes(100));
    await until(() => seen[0]?.received === 100, 'body');
    rec.stream!.reset(ErrorCode.CANCEL, 'client went away');
    assert.equal(rec.stream!.isClosed, true);
    assert.equal(p.relay.session.openStreams, 0);
    await until(() => seen[0]!.error !== undefined, 'reset at the connector');
    const err = seen[0]!.error!;
    assert.ok(err instanceof StreamError);
    assert.equal(err.code, 'ERR_STREAM_RESET');
    assert.equal(err.wireCode, ErrorCode.CANCEL);
    assert.equal(err.remote, true);
    assert.equal(err.message, 'client went away');
    assert.equal(p.connector.session.openStreams, 0);
    // The connector's late writes go nowhere; the relay's handler saw nothing.
    assert.equal(seen[0]!.stream!.write(text('late')), false);
    assert.equal(rec.error, undefined);
    assert.equal(rec.responses.length, 0);
    shutdown(p);
  });

  it('connector → relay, with upstream error codes', async () => {
    const seen: Recorder[] = [];
    const p = await connected({ connector: { onStream: captureApp(seen) } });
    const rec = open(p, head('GET'), { endStream: true });
    await until(() => seen.length === 1, 'request');
    seen[0]!.stream!.reset(ErrorCode.UPSTREAM_CONNECT_FAILED, 'ECONNREFUSED 10.0.0.5:8080');
    await until(() => rec.error !== undefined, 'reset at the relay');
    assert.equal(rec.error!.code, 'ERR_STREAM_RESET');
    assert.equal(rec.error!.wireCode, ErrorCode.UPSTREAM_CONNECT_FAILED);
    assert.equal(rec.error!.message, 'ECONNREFUSED 10.0.0.5:8080');
    assert.equal(seen[0]!.error, undefined);
    await settle(p.r2c, p.c2r);
    assert.equal(p.relay.session.openStreams, 0);
    assert.equal(p.connector.session.openStreams, 0);
    shutdown(p);
  });

  it('frames still in flight for a reset stream are ignored, not a connection error', async () => {
    const seen: Recorder[] = [];
    const p = await connected({ connector: { onStream: captureApp(seen) } });
    const rec = open(p, head('GET'), { endStream: true });
    await until(() => seen.length === 1, 'request');
    const s = seen[0]!.stream!;
    s.respond({ status: 200, reason: 'OK', headers: [] });
    s.write(bytes(30_000));
    // The relay resets before those bytes arrive.
    p.c2r.pause();
    rec.stream!.reset(ErrorCode.CANCEL);
    s.write(bytes(10));
    s.end([['x', 'y']]);
    p.c2r.resume();
    await settle(p.r2c, p.c2r);
    assert.ok(p.relay.session.isOpen && p.connector.session.isOpen);
    assert.equal(rec.responses.length, 0);
    assert.equal(p.relay.session.openStreams, 0);
    assert.equal(p.connector.session.openStreams, 0);
    // And the connection still works.
    const next = open(p, head('GET', '/next'), { endStream: true });
    await until(() => seen.length === 2, 'second request');
    seen[1]!.stream!.respond({ status: 204, reason: '', headers: [] }, true);
    await until(() => next.done, 'second response');
    assert.equal(next.error, undefined);
    shutdown(p);
  });
});

describe('stream cap', () => {
  it('the connector refuses streams beyond maxStreams with REFUSED_STREAM and accepts again once one closes', async () => {
    const opened: number[] = [];
    const { raw } = await againstRaw('connector', {
      limits: { maxStreams: 2 },
      onStream: (s) => {
        opened.push(s.id);
        s.handler = {
          onEnd: () => s.respond({ status: 200, reason: 'OK', headers: [] }, true),
        };
      },
    });
    // Ids only need to increase; the third is one too many.
    raw.send(encodeRequest(1, head()), encodeRequest(3, head()), encodeRequest(5, head()));
    const refused = await raw.next(FrameType.RESET, 5);
    assert.ok(refused.type === FrameType.RESET && refused.errorCode === ErrorCode.REFUSED_STREAM);
    assert.deepEqual(opened, [1, 3]);
    // Finish stream 1: the connector answers and forgets it, so 7 fits.
    raw.send(encodeData(1, new Uint8Array(0), 0x01));
    await raw.next(FrameType.RESPONSE, 1);
    raw.send(encodeRequest(7, head()));
    await until(() => opened.length === 3, 'stream 7 accepted');
    assert.deepEqual(opened, [1, 3, 7]);
    assert.equal(raw.frames(FrameType.RESET, 7).length, 0);
    // A reused id is a connection error.
    raw.send(encodeRequest(7, head()));
    const goaway = await raw.next(FrameType.GOAWAY);
    assert.ok(goaway.type === FrameType.GOAWAY && goaway.errorCode === ErrorCode.PROTOCOL_ERROR && goaway.lastStreamId === 7);
    await until(() => raw.closed !== undefined, 'close');
    assert.equal(raw.closed?.code, CloseCode.PROTOCOL_ERROR);
  });

  it('a relay that ignores acceptsStreams gets REFUSED_STREAM on the extra stream only', async () => {
    const seen: Recorder[] = [];
    const p = await connected({ connector: { limits: { maxStreams: 2 }, onStream: captureApp(seen) } });
    const a = open(p, head('GET', '/a'), { endStream: true });
    const b = open(p, head('GET', '/b'), { endStream: true });
    assert.equal(p.relay.session.acceptsStreams, false);
    assert.throws(() => open(p, head('GET', '/c')), { code: 'ERR_SESSION_UNAVAILABLE' });
    // Pretend the connector announced more.
    p.relay.session.peer!.maxStreams = 3;
    const c = open(p, head('GET', '/c'), { endStream: true });
    await until(() => c.error !== undefined, 'refusal');
    assert.equal(c.error!.wireCode, ErrorCode.REFUSED_STREAM);
    assert.equal(c.error!.remote, true);
    assert.equal(seen.length, 2);
    for (const r of seen) r.stream!.respond({ status: 200, reason: 'OK', headers: [] }, true);
    await until(() => a.done && b.done, 'the first two');
    assert.equal(a.error, undefined);
    assert.equal(b.error, undefined);
    shutdown(p);
  });
});

describe('keepalive', () => {
  it('PINGs keep a quiet connection open, and a silent peer is closed with ERR_PING_TIMEOUT (4002)', async () => {
    const seen: Recorder[] = [];
    // The timeout is generous against event-loop stalls on a busy machine; the test still takes well under a second.
    const p = await connected({ relay: { pingIntervalMs: 10, pingTimeoutMs: 250 }, connector: { onStream: captureApp(seen) } });
    const rec = open(p, head('POST'));
    await until(() => seen.length === 1, 'request');
    // Alive for longer than the timeout: at least 30 answered PINGs (≥ 300 ms).
    await until(() => p.c2r.frames.filter((f) => f.type === FrameType.PING && (f.flags & 0x01) !== 0).length >= 30, 'PING ACKs');
    assert.ok(p.relay.session.isOpen);
    const pings = p.r2c.frames.filter((f) => f.type === FrameType.PING && f.flags === 0);
    const acks = p.c2r.frames.filter((f) => f.type === FrameType.PING && f.flags === 1);
    // Each ACK echoes its PING's opaque bytes.
    for (const ack of acks) assert.ok(pings.some((ping) => ping.type === FrameType.PING && ack.type === FrameType.PING && Buffer.compare(ping.opaque, ack.opaque) === 0));

    // Now the connector goes silent.
    p.c2r.pause();
    await until(() => p.relay.closed !== undefined, 'relay gives up');
    assert.equal(p.relay.closed!.error?.code, 'ERR_PING_TIMEOUT');
    assert.equal(p.relay.end.closedWith?.code, CloseCode.PING_TIMEOUT);
    assert.equal(rec.error?.code, 'ERR_CONNECTION_LOST');
    // The connector hears GOAWAY(PING_TIMEOUT), then the close.
    await until(() => p.connector.closed !== undefined, 'connector closed');
    assert.equal(p.connector.closed!.error?.code, 'ERR_PEER_GOAWAY');
    assert.equal((p.connector.closed!.error as ProtocolError).wireCode, ErrorCode.PING_TIMEOUT);
    assert.equal(seen[0]!.error?.code, 'ERR_CONNECTION_LOST');
  });

  it('a peer that handshakes and then never answers is closed', async () => {
    const { side } = await againstRaw('connector', { pingIntervalMs: 10, pingTimeoutMs: 40 });
    await until(() => side.closed !== undefined, 'ping timeout');
    assert.equal(side.closed!.error?.code, 'ERR_PING_TIMEOUT');
    assert.equal(side.end.closedWith?.code, CloseCode.PING_TIMEOUT);
  });
});

describe('drain', () => {
  it('connector drains: in-flight streams finish, streams above lastStreamId fail with REFUSED_STREAM', async () => {
    const seen: Recorder[] = [];
    const p = await connected({ connector: { onStream: captureApp(seen) } });
    const a = open(p, head('POST', '/a'));
    const b = open(p, head('POST', '/b'));
    await until(() => seen.length === 2, 'two requests at the connector');
    // Stream 3 is on its way when the connector decides to drain.
    p.r2c.pause();
    const c = open(p, head('GET', '/c'), { endStream: true });
    p.connector.session.drain('connector shutting down');
    await until(() => p.relay.goaway !== undefined, 'GOAWAY at the relay');
    assert.equal(p.relay.goaway!.errorCode, ErrorCode.NO_ERROR);
    const goaway = p.c2r.frames.find((f) => f.type === FrameType.GOAWAY);
    assert.ok(goaway?.type === FrameType.GOAWAY && goaway.lastStreamId === 2);
    assert.equal(c.error?.code, 'ERR_STREAM_REFUSED');
    assert.equal(c.error?.wireCode, ErrorCode.REFUSED_STREAM);
    assert.equal(p.relay.session.acceptsStreams, false);
    assert.throws(() => open(p, head('GET', '/d')), { code: 'ERR_SESSION_UNAVAILABLE' });
    p.r2c.resume();
    // The connector never starts stream 3 and tells the relay so (which ignores it: already failed).
    await until(() => resets(p.c2r.frames).length === 1, 'refusal of stream 3');
    assert.deepEqual(resets(p.c2r.frames), [[3, ErrorCode.REFUSED_STREAM]]);
    assert.equal(seen.length, 2);
    // Streams 1 and 2 complete normally.
    for (const [i, rec] of [a, b].entries()) {
      rec.stream!.write(bytes(5000, i));
      rec.stream!.end();
    }
    await until(() => seen.every((r) => r.ended), 'request bodies');
    for (const r of seen) {
      r.stream!.respond({ status: 200, reason: 'OK', headers: [] });
      r.stream!.end();
    }
    await until(() => a.done && b.done, 'responses');
    assert.equal(a.error, undefined);
    assert.equal(b.error, undefined);
    await settle(p.r2c, p.c2r);
    assert.equal(p.connector.session.openStreams, 0);
    assert.ok(p.relay.session.isOpen && p.connector.session.isOpen);
    // Whoever drained closes once idle; a normal close is not an error.
    p.connector.session.close(CloseCode.GOING_AWAY, 'drained');
    await until(() => p.relay.closed !== undefined, 'relay sees the close');
    assert.equal(p.relay.closed!.error, undefined);
    assert.equal(p.connector.closed!.error, undefined);
  });

  it('relay drains: no new streams, the open one finishes', async () => {
    const seen: Recorder[] = [];
    const p = await connected({ connector: { onStream: captureApp(seen) } });
    const a = open(p, head('GET'), { endStream: true });
    p.relay.session.drain('relay shutting down');
    assert.equal(p.relay.session.acceptsStreams, false);
    assert.throws(() => open(p, head('GET')), { code: 'ERR_SESSION_UNAVAILABLE' });
    await until(() => p.connector.goaway !== undefined, 'GOAWAY at the connector');
    const goaway = p.r2c.frames.find((f) => f.type === FrameType.GOAWAY);
    assert.ok(goaway?.type === FrameType.GOAWAY && goaway.lastStreamId === 0 && goaway.errorCode === ErrorCode.NO_ERROR);
    seen[0]!.stream!.respond({ status: 200, reason: 'OK', headers: [] }, true);
    await until(() => a.done, 'response');
    assert.equal(a.error, undefined);
    await settle(p.r2c, p.c2r);
    assert.equal(p.relay.session.openStreams, 0);
    p.relay.session.close(CloseCode.GOING_AWAY, 'drained');
    await until(() => p.connector.closed !== undefined, 'connector sees the close');
    assert.equal(p.connector.closed!.error, undefined);
  });
});

describe('connection loss and connection errors', () => {
  it('transport close fails every open stream with ERR_CONNECTION_LOST', async () => {
    const seen: Recorder[] = [];
    const p = await connected({ connector: { onStream: captureApp(seen) } });
    const recs = [open(p, head('POST', '/1')), open(p, head('POST', '/2')), open(p, head('GET', '/3'), { endStream: true })];
    await until(() => seen.length === 3, 'requests');
    // The network goes away under both sides (1006: no close frame).
    p.relay.session.transportClosed(1006, '');
    p.connector.session.transportClosed(1006, '');
    for (const r of [...recs, ...seen]) {
      assert.equal(r.error?.code, 'ERR_CONNECTION_LOST');
      assert.equal(r.error?.remote, false);
    }
    assert.equal(p.relay.closed!.error?.code, 'ERR_CONNECTION_LOST');
    assert.equal(p.connector.closed!.error?.code, 'ERR_CONNECTION_LOST');
    assert.equal(p.relay.session.openStreams, 0);
    assert.equal(p.connector.session.openStreams, 0);
    assert.throws(() => open(p, head()), { code: 'ERR_SESSION_UNAVAILABLE' });
  });

  it('a clean close (1000) is no session error, but open streams still fail', async () => {
    const p = await connected({ connector: { onStream: captureApp([]) } });
    const rec = open(p, head());
    p.connector.session.close(CloseCode.NORMAL, 'bye');
    await until(() => p.relay.closed !== undefined, 'relay closed');
    assert.equal(p.relay.closed!.error, undefined);
    assert.equal(rec.error?.code, 'ERR_CONNECTION_LOST');
  });

  it('a framing error closes the connection with 4000 after GOAWAY(PROTOCOL_ERROR)', async () => {
    const seen: Recorder[] = [];
    const p = await connected({ connector: { onStream: captureApp(seen) } });
    const rec = open(p, head());
    await until(() => seen.length === 1, 'request');
    p.r2c.inject(concat(encodeFrameHeader(0, 0x42, 0, 1)));
    await until(() => p.connector.closed !== undefined && p.relay.closed !== undefined, 'both closed');
    assert.equal(p.connector.closed!.error?.code, 'ERR_UNKNOWN_FRAME_TYPE');
    assert.equal(p.connector.end.closedWith?.code, CloseCode.PROTOCOL_ERROR);
    assert.equal(seen[0]!.error?.code, 'ERR_CONNECTION_LOST');
    // The relay heard why.
    assert.equal(p.relay.closed!.error?.code, 'ERR_PEER_GOAWAY');
    assert.equal((p.relay.closed!.error as ProtocolError).wireCode, ErrorCode.PROTOCOL_ERROR);
    assert.equal(rec.error?.code, 'ERR_CONNECTION_LOST');
  });

  it('a message that ends inside a frame is a connection error (ERR_TRUNCATED_FRAME)', async () => {
    const { side, raw } = await againstRaw('connector');
    const frame = encodeRequest(1, head());
    raw.send(frame.subarray(0, 15));
    await until(() => side.closed !== undefined, 'close');
    assert.equal(side.closed!.error?.code, 'ERR_TRUNCATED_FRAME');
    assert.equal(side.end.closedWith?.code, CloseCode.PROTOCOL_ERROR);
  });

  it('a frame for a stream that was never opened is a connection error', async () => {
    const { side, raw } = await againstRaw('relay');
    raw.send(encodeResponse(9, { status: 200, reason: '', headers: [] }));
    await until(() => side.closed !== undefined, 'close');
    assert.equal(side.closed!.error?.code, 'ERR_BAD_STREAM_ID');
  });

  it('a REQUEST sent to the relay is a connection error', async () => {
    const { side, raw } = await againstRaw('relay');
    raw.send(encodeRequest(1, head()));
    await until(() => side.closed !== undefined, 'close');
    assert.equal(side.closed!.error?.code, 'ERR_UNEXPECTED_FRAME');
  });
});

describe('malformed frames close only their stream', () => {
  it('a malformed TRAILERS resets stream 1 while stream 2 completes', async () => {
    const seen: Recorder[] = [];
    const p = await connected({ connector: { onStream: captureApp(seen) } });
    const a = open(p, head('POST', '/a'));
    const b = open(p, head('POST', '/b'));
    await until(() => seen.length === 2, 'requests');
    // A header name with a space: the frame parses as framing, not as a header block.
    p.r2c.inject(concat(encodeFrameHeader(8, FrameType.TRAILERS, 0, 1), new Uint8Array([0, 1, 0, 2, 0x61, 0x20, 0, 0])));
    await until(() => a.error !== undefined && seen[0]!.error !== undefined, 'stream 1 reset on both sides');
    assert.equal(seen[0]!.error!.code, 'ERR_STREAM_PROTOCOL');
    assert.equal(seen[0]!.error!.wireCode, ErrorCode.PROTOCOL_ERROR);
    assert.equal(a.error!.code, 'ERR_STREAM_RESET');
    assert.equal(a.error!.wireCode, ErrorCode.PROTOCOL_ERROR);
    b.stream!.write(text('still here'));
    b.stream!.end();
    await until(() => seen[1]!.ended, 'stream 2 body');
    assert.deepEqual(seen[1]!.body(), text('still here'));
    seen[1]!.stream!.respond({ status: 200, reason: 'OK', headers: [] }, true);
    await until(() => b.done, 'stream 2 response');
    assert.equal(b.error, undefined);
    assert.ok(p.relay.session.isOpen && p.connector.session.isOpen);
    shutdown(p);
  });

  it('a malformed REQUEST is refused, the DATA behind it ignored, the next REQUEST served', async () => {
    const opened: number[] = [];
    const { side, raw } = await againstRaw('connector', {
      onStream: (s) => {
        opened.push(s.id);
        s.handler = {};
        s.respond({ status: 200, reason: 'OK', headers: [] }, true);
      },
    });
    const bad = encodeRequest(1, { ...head('POST', '/x', [['x', 'y']]), meta: [] });
    // The payload ends 0001 'x' 0001 'y' 0000 (empty meta): the header name 'x' becomes ' '.
    assert.equal(bad[bad.length - 6], 0x78);
    bad[bad.length - 6] = 0x20;
    raw.send(bad, encodeData(1, text('body of the bad request'), 0x01));
    const reset = await raw.next(FrameType.RESET, 1);
    assert.ok(reset.type === FrameType.RESET && reset.errorCode === ErrorCode.PROTOCOL_ERROR);
    raw.send(encodeRequest(3, head('GET'), 0x01));
    await raw.next(FrameType.RESPONSE, 3);
    assert.deepEqual(opened, [3]);
    assert.ok(side.session.isOpen);
    assert.equal(raw.frames(FrameType.GOAWAY).length, 0);
    side.session.close();
  });

  it('relay side: body before the response head, a second final head, and 101 without an upgrade are stream errors', async () => {
    const { session, raw } = await againstRaw('relay');
    const recs = [1, 2, 3, 4, 5].map((i) => open(session, head('POST', `/${i}`)));
    await raw.next(FrameType.REQUEST, 5);
    const ok = { status: 200, reason: 'OK', headers: [] };
    raw.send(
      encodeData(1, text('too early')),
      encodeResponse(2, ok),
      encodeResponse(2, ok),
      encodeResponse(3, { status: 101, reason: 'Switching Protocols', headers: [] }),
      encodeResponse(4, { status: 100, reason: 'Continue', headers: [] }, 0x01),
      encodeTrailers(5, [['a', 'b']]),
    );
    await until(() => recs.every((r) => r.error !== undefined), 'five resets');
    for (const r of recs) {
      assert.equal(r.error!.code, 'ERR_STREAM_PROTOCOL');
      assert.equal(r.error!.wireCode, ErrorCode.PROTOCOL_ERROR);
    }
    assert.deepEqual(recs[1]!.responses.map((h) => h.status), [200]);
    await until(() => raw.frames(FrameType.RESET).length === 5, 'RESET frames');
    assert.ok(session.isOpen);
    // A proper stream afterwards is fine.
    const good = open(session, head('GET'), { endStream: true });
    raw.send(encodeResponse(6, ok), encodeData(6, text('fine'), 0x01));
    await until(() => good.done, 'good response');
    assert.equal(good.error, undefined);
    session.close();
  });
});

describe('heads and trailers that do not fit', () => {
  it('a response head over the relay frame limit throws and leaves the stream usable', async () => {
    const seen: Recorder[] = [];
    const p = await connected({ relay: { limits: { maxFrameSize: 16384 } }, connector: { onStream: captureApp(seen) } });
    const rec = open(p, head('GET'), { endStream: true });
    await until(() => seen.length === 1, 'request');
    const s = seen[0]!.stream!;
    assert.throws(() => s.respond({ status: 200, reason: 'OK', headers: [['set-cookie', 'x'.repeat(20_000)]] }), { code: 'ERR_RESPONSE_HEAD_TOO_LARGE' });
    assert.throws(() => s.respond({ status: 200, reason: 'OK', headers: [['bad name', 'x']] }), { code: 'ERR_ENCODE' });
    s.respond({ status: 502, reason: 'Bad Gateway', headers: [] });
    assert.throws(() => s.end([['x-big', 'y'.repeat(20_000)]]), { code: 'ERR_TRAILERS_TOO_LARGE' });
    assert.throws(() => s.end([['x', 'line\r\nbreak']]), { code: 'ERR_ENCODE' });
    s.end([['x-ok', '1']]);
    await until(() => rec.done, 'response');
    assert.equal(rec.error, undefined);
    assert.equal(rec.responses[0]!.status, 502);
    assert.deepEqual(rec.trailers, [['x-ok', '1']]);
    assert.ok(p.relay.session.isOpen && p.connector.session.isOpen);
    shutdown(p);
  });

  it('a request head over the connector frame limit throws ERR_REQUEST_HEAD_TOO_LARGE', async () => {
    const p = await connected({ connector: { limits: { maxFrameSize: 16384 } } });
    assert.throws(() => open(p, head('GET', '/', [['cookie', 'c'.repeat(17_000)]])), { code: 'ERR_REQUEST_HEAD_TOO_LARGE' });
    assert.equal(p.relay.session.openStreams, 0);
    const rec = open(p, head('GET'), { endStream: true });
    await until(() => rec.done, 'a normal request');
    assert.equal(rec.error, undefined);
    shutdown(p);
  });
});

describe('a throwing stream handler', () => {
  it('resets only its own stream; the connection and other streams carry on', async () => {
    const handlerErrors: number[] = [];
    const p = await connected({
      connector: {
        onStream: (s: Stream) => {
          if (s.request.target === '/boom') throw new Error('bug in the handler');
          echoApp()(s);
        },
        onHandlerError: (_err: unknown, id: number) => handlerErrors.push(id),
      },
    });
    const boom = open(p, head('GET', '/boom'), { endStream: true });
    const fine = open(p, head('POST', '/fine'));
    fine.stream!.write(text('still here'));
    fine.stream!.end();
    await until(() => boom.done && fine.done, 'both streams finish');
    assert.equal(boom.error?.wireCode, ErrorCode.INTERNAL_ERROR);
    assert.equal(new TextDecoder().decode(fine.body()), 'still here');
    assert.deepEqual(handlerErrors, [boom.stream!.id]);
    assert.equal(p.relay.session.isOpen, true);
    assert.equal(p.connector.session.isOpen, true);
    shutdown(p);
  });
});
