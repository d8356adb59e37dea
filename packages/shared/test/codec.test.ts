/**
 * The frame codec against exact bytes (docs/protocol.md is the reference for
 * every hex string here), and the incremental decoder against every way a byte
 * stream can be cut, broken or made up.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ErrorCode,
  FrameDecoder,
  FrameType,
  ProtocolError,
  encodeData,
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
  type DecodeItem,
  type Frame,
  type HeaderList,
  type RequestHead,
} from '../src/index.ts';

// ---- helpers ----

/** Bytes from hex written for people: spaces and line breaks are ignored. */
function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, '');
  assert.equal(clean.length % 2, 0, `odd hex: ${s}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

function expectBytes(actual: Uint8Array, expected: string): void {
  assert.equal(toHex(actual), toHex(hex(expected)));
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

/** A frame built by hand: header fields plus a raw payload (for frames no encoder would write). */
function rawFrame(type: number, flags: number, streamId: number, payload: Uint8Array | string): Uint8Array {
  const body = typeof payload === 'string' ? hex(payload) : payload;
  return concat(encodeFrameHeader(body.length, type, flags, streamId), body);
}

function decodeAll(bytes: Uint8Array, maxFrameSize = 1 << 20): DecodeItem[] {
  const d = new FrameDecoder(maxFrameSize);
  const items = d.push(bytes);
  d.finish();
  return items;
}

function decodeOne(bytes: Uint8Array): Frame {
  const items = decodeAll(bytes);
  assert.equal(items.length, 1);
  const item = items[0]!;
  if (item instanceof ProtocolError) assert.fail(`expected a frame, got ${item.code}: ${item.message}`);
  return item;
}

/** Runs `fn` and returns the ProtocolError it throws, failing on anything else. */
function protocolErrorOf(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
    return err;
  }
  return assert.fail('expected a ProtocolError, nothing was thrown');
}

function assertStreamError(item: DecodeItem | undefined, streamId: number): void {
  assert.ok(item instanceof ProtocolError, `expected a stream error item, got ${JSON.stringify(item)}`);
  assert.equal(item.code, 'ERR_MALFORMED_FRAME');
  assert.equal(item.scope, 'stream');
  assert.equal(item.streamId, streamId);
  assert.equal(item.wireCode, ErrorCode.PROTOCOL_ERROR);
}

/** Re-encodes a decoded frame with the public encoders (flags the encoders own are passed through). */
function reencode(f: Frame): Uint8Array {
  switch (f.type) {
    case FrameType.HELLO:
      return encodeHello(f.hello);
    case FrameType.REQUEST:
      return encodeRequest(f.streamId, f.head, f.flags);
    case FrameType.RESPONSE:
      return encodeResponse(f.streamId, f.head, f.flags);
    case FrameType.DATA:
      return encodeData(f.streamId, f.data, f.flags);
    case FrameType.TRAILERS:
      return encodeTrailers(f.streamId, f.trailers);
    case FrameType.WINDOW_UPDATE:
      return encodeWindowUpdate(f.streamId, f.increment);
    case FrameType.RESET:
      return encodeReset(f.streamId, f.errorCode, f.message);
    case FrameType.PING:
      return encodePing(f.opaque, (f.flags & 0x01) !== 0);
    case FrameType.GOAWAY:
      return encodeGoaway(f.lastStreamId, f.errorCode, f.message);
    case FrameType.NOTICE:
      return encodeNotice(f.kind, f.body);
  }
}

const HELLO = { minVersion: 1, maxVersion: 1, maxFrameSize: 65536, initialWindow: 262144, maxStreams: 256, agent: 'ab' };
const REQUEST: RequestHead = {
  method: 'GET',
  target: '/',
  app: 'w',
  requestId: 'r',
  headers: [
    ['a', '1'],
    ['a', '2'],
  ],
  meta: [],
};

// ---- encoders ----

describe('encoders produce exact bytes', () => {
  it('frame header: u32 length, u8 type, u8 flags, u32 stream id, big-endian', () => {
    expectBytes(encodeFrameHeader(5, FrameType.DATA, 0x01, 2), '00000005 04 01 00000002');
    expectBytes(encodeFrameHeader(0x01020304, 0xab, 0xcd, 0x7fffffff), '01020304 ab cd 7fffffff');
  });

  it('HELLO', () => {
    expectBytes(
      encodeHello(HELLO),
      `00000012 01 00 00000000
       0001 0001 00010000 00040000 00000100 6162`,
    );
  });

  it('HELLO agent is UTF-8', () => {
    expectBytes(
      encodeHello({ ...HELLO, minVersion: 2, maxVersion: 7, agent: 'é' }),
      `00000012 01 00 00000000
       0002 0007 00010000 00040000 00000100 c3a9`,
    );
  });

  it('REQUEST with a repeated header, in order', () => {
    expectBytes(
      encodeRequest(1, REQUEST),
      `0000001e 02 00 00000001
       0003 474554  0001 2f  0001 77  0001 72
       0002  0001 61 0001 31  0001 61 0001 32
       0000`,
    );
  });

  it('REQUEST flags: END_STREAM and UPGRADE kept, other bits dropped', () => {
    const withMeta: RequestHead = { ...REQUEST, headers: [], meta: [['ip', '1']] };
    expectBytes(
      encodeRequest(0x0102, withMeta, 0xff),
      `00000019 02 03 00000102
       0003 474554  0001 2f  0001 77  0001 72
       0000
       0001  0002 6970 0001 31`,
    );
  });

  it('RESPONSE with END_STREAM and a Latin-1 value', () => {
    expectBytes(
      encodeResponse(5, { status: 200, reason: 'OK', headers: [['x', '\u00e9']] }, 0x01),
      `0000000e 03 01 00000005
       00c8  0002 4f4b
       0001  0001 78 0001 e9`,
    );
  });

  it('RESPONSE drops flags other than END_STREAM', () => {
    expectBytes(encodeResponse(1, { status: 101, reason: '', headers: [] }, 0xfe), '00000006 03 00 00000001 0065 0000 0000');
  });

  it('DATA', () => {
    expectBytes(encodeData(0x01020304, new TextEncoder().encode('hi'), 0x01), '00000002 04 01 01020304 6869');
    expectBytes(encodeData(9, new Uint8Array(0), 0xff), '00000000 04 01 00000009');
    expectBytes(encodeData(9, hex('00ff')), '00000002 04 00 00000009 00ff');
  });

  it('TRAILERS (flags always 0: TRAILERS itself ends the half)', () => {
    expectBytes(
      encodeTrailers(7, [['grpc-status', '0']]),
      `00000012 05 00 00000007
       0001  000b 677270632d737461747573 0001 30`,
    );
    expectBytes(encodeTrailers(7, []), '00000002 05 00 00000007 0000');
  });

  it('WINDOW_UPDATE', () => {
    expectBytes(encodeWindowUpdate(3, 65536), '00000004 06 00 00000003 00010000');
    expectBytes(encodeWindowUpdate(3, 0x7fffffff), '00000004 06 00 00000003 7fffffff');
  });

  it('RESET with a UTF-8 message', () => {
    expectBytes(encodeReset(3, ErrorCode.CANCEL, 'no'), '00000006 07 00 00000003 00000007 6e6f');
    expectBytes(encodeReset(3, ErrorCode.UPSTREAM_TIMEOUT, 'é'), '00000006 07 00 00000003 00000101 c3a9');
    expectBytes(encodeReset(3, ErrorCode.NO_ERROR), '00000004 07 00 00000003 00000000');
  });

  it('PING and its ACK', () => {
    expectBytes(encodePing(hex('0102030405060708')), '00000008 08 00 00000000 0102030405060708');
    expectBytes(encodePing(hex('0102030405060708'), true), '00000008 08 01 00000000 0102030405060708');
  });

  it('GOAWAY', () => {
    expectBytes(encodeGoaway(9, ErrorCode.NO_ERROR, 'bye'), '0000000b 09 00 00000000 00000009 00000000 627965');
    expectBytes(encodeGoaway(0, ErrorCode.VERSION_MISMATCH), '00000008 09 00 00000000 00000000 00000008');
  });

  it('NOTICE', () => {
    expectBytes(encodeNotice(1, new TextEncoder().encode('7')), '00000003 0a 00 00000000 0001 37');
    expectBytes(encodeNotice(0xabcd), '00000002 0a 00 00000000 abcd');
  });
});

describe('worked examples (docs/protocol.md §14: keep both in step)', () => {
  const t = (x: string): Uint8Array => new TextEncoder().encode(x);
  const examples: Array<[string, Uint8Array, string]> = [
    [
      'relay HELLO',
      encodeHello({ minVersion: 1, maxVersion: 1, maxFrameSize: 65536, initialWindow: 262144, maxStreams: 256, agent: 'drawbridge-relay' }),
      '00000020 01 00 00000000 0001 0001 00010000 00040000 00000100 647261776272696467652d72656c6179',
    ],
    [
      'connector HELLO',
      encodeHello({ minVersion: 1, maxVersion: 1, maxFrameSize: 65536, initialWindow: 262144, maxStreams: 256, agent: 'drawbridge-connector' }),
      '00000024 01 00 00000000 0001 0001 00010000 00040000 00000100 647261776272696467652d636f6e6e6563746f72',
    ],
    [
      'GET without a body',
      encodeRequest(
        1,
        {
          method: 'GET',
          target: '/a?b=1',
          app: 'wiki',
          requestId: 'r-1',
          headers: [
            ['accept', '*/*'],
            ['cookie', 'x=1'],
            ['cookie', 'y=2'],
          ],
          meta: [['client', '198.51.100.7']],
        },
        0x01,
      ),
      `00000059 02 01 00000001 0003 474554 0006 2f613f623d31 0004 77696b69 0003 722d31
       0003 0006 616363657074 0003 2a2f2a 0006 636f6f6b6965 0003 783d31 0006 636f6f6b6965 0003 793d32
       0001 0006 636c69656e74 000c 3139382e35312e3130302e37`,
    ],
    [
      'response head, body, trailers',
      concat(
        encodeResponse(1, {
          status: 200,
          reason: 'OK',
          headers: [
            ['content-type', 'text/plain'],
            ['set-cookie', 'a=\u00e9'],
          ],
        }),
        encodeData(1, t('hello')),
        encodeTrailers(1, [['x-sum', '5']]),
      ),
      `00000033 03 00 00000001 00c8 0002 4f4b 0002
       000c 636f6e74656e742d74797065 000a 746578742f706c61696e 000a 7365742d636f6f6b6965 0003 613de9
       00000005 04 00 00000001 68656c6c6f
       0000000c 05 00 00000001 0001 0005 782d73756d 0001 35`,
    ],
    ['empty DATA with END_STREAM', encodeData(1, new Uint8Array(0), 0x01), '00000000 04 01 00000001'],
    ['WINDOW_UPDATE', encodeWindowUpdate(3, 65536), '00000004 06 00 00000003 00010000'],
    ['RESET', encodeReset(3, ErrorCode.CANCEL, 'client gone'), '0000000f 07 00 00000003 00000007 636c69656e7420676f6e65'],
    ['PING', encodePing(hex('0000000000000001')), '00000008 08 00 00000000 0000000000000001'],
    ['PING ACK', encodePing(hex('0000000000000001'), true), '00000008 08 01 00000000 0000000000000001'],
    ['GOAWAY drain', encodeGoaway(7, ErrorCode.NO_ERROR, 'bye'), '0000000b 09 00 00000000 00000007 00000000 627965'],
    ['GOAWAY version mismatch', encodeGoaway(0, ErrorCode.VERSION_MISMATCH, 'v'), '00000009 09 00 00000000 00000000 00000008 76'],
    ['NOTICE', encodeNotice(1, t('42')), '00000004 0a 00 00000000 0001 3432'],
    [
      'upgrade REQUEST',
      encodeRequest(5, { method: 'GET', target: '/ws', app: 'chat', requestId: 'r-5', headers: [['upgrade', 'websocket']], meta: [] }, 0x02),
      '0000002d 02 02 00000005 0003 474554 0003 2f7773 0004 63686174 0003 722d35 0001 0007 75706772616465 0009 776562736f636b6574 0000',
    ],
    [
      '101 RESPONSE',
      encodeResponse(5, { status: 101, reason: 'Switching Protocols', headers: [['upgrade', 'websocket']] }),
      '0000002d 03 00 00000005 0065 0013 537769746368696e672050726f746f636f6c73 0001 0007 75706772616465 0009 776562736f636b6574',
    ],
  ];
  for (const [name, actual, expected] of examples) {
    it(name, () => {
      expectBytes(actual, expected);
      // And they decode back without complaint.
      for (const item of decodeAll(actual)) assert.ok(!(item instanceof ProtocolError));
    });
  }
  it('the response example is one 98-byte message', () => {
    assert.equal(examples[3]![1].length, 98);
  });
});

describe('encoders refuse what the peer would reject (ERR_ENCODE)', () => {
  const cases: Array<[string, () => unknown]> = [
    ['REQUEST on stream 0', () => encodeRequest(0, REQUEST)],
    ['REQUEST on a stream id above 2^31-1', () => encodeRequest(0x80000000, REQUEST)],
    ['REQUEST on a fractional stream id', () => encodeRequest(1.5, REQUEST)],
    ['DATA on stream 0', () => encodeData(0, new Uint8Array(1))],
    ['RESET on stream 0', () => encodeReset(0, 0)],
    ['WINDOW_UPDATE on stream 0', () => encodeWindowUpdate(0, 1)],
    ['empty method', () => encodeRequest(1, { ...REQUEST, method: '' })],
    ['method with a space', () => encodeRequest(1, { ...REQUEST, method: 'G T' })],
    ['empty target', () => encodeRequest(1, { ...REQUEST, target: '' })],
    ['target with a space', () => encodeRequest(1, { ...REQUEST, target: '/a b' })],
    ['target with CR LF', () => encodeRequest(1, { ...REQUEST, target: '/\r\nX: y' })],
    ['request id with LF', () => encodeRequest(1, { ...REQUEST, requestId: 'a\nb' })],
    ['header name with a colon', () => encodeRequest(1, { ...REQUEST, headers: [['a:b', '1']] })],
    ['empty header name', () => encodeRequest(1, { ...REQUEST, headers: [['', '1']] })],
    ['header name with a Latin-1 letter', () => encodeRequest(1, { ...REQUEST, headers: [['caf\u00e9', '1']] })],
    ['header value with CR', () => encodeRequest(1, { ...REQUEST, headers: [['a', 'x\ry']] })],
    ['header value with NUL', () => encodeTrailers(1, [['a', 'x\u0000']])],
    ['meta value outside Latin-1', () => encodeRequest(1, { ...REQUEST, meta: [['user', '\u0141ukasz']] })],
    ['header value with an emoji', () => encodeResponse(1, { status: 200, reason: '', headers: [['a', '\u{1f600}']] })],
    ['a field longer than 65535 bytes', () => encodeRequest(1, { ...REQUEST, target: `/${'a'.repeat(65535)}` })],
    ['more than 65535 fields', () => encodeTrailers(1, Array.from({ length: 65536 }, (): [string, string] => ['a', '']))],
    ['reason with LF', () => encodeResponse(1, { status: 200, reason: 'O\nK', headers: [] })],
    ['status 99', () => encodeResponse(1, { status: 99, reason: '', headers: [] })],
    ['status 1000', () => encodeResponse(1, { status: 1000, reason: '', headers: [] })],
    ['fractional status', () => encodeResponse(1, { status: 200.5, reason: '', headers: [] })],
    ['window increment 0', () => encodeWindowUpdate(1, 0)],
    ['window increment 2^31', () => encodeWindowUpdate(1, 0x80000000)],
    ['PING of 7 bytes', () => encodePing(new Uint8Array(7))],
    ['HELLO version above 65535', () => encodeHello({ ...HELLO, maxVersion: 0x10000 })],
    ['HELLO negative window', () => encodeHello({ ...HELLO, initialWindow: -1 })],
    ['HELLO that does not fit in 16 KiB', () => encodeHello({ ...HELLO, agent: 'a'.repeat(16384 - 15) })],
    ['RESET error code above 2^32-1', () => encodeReset(1, 0x1_0000_0000)],
    ['GOAWAY last stream id above 2^31-1', () => encodeGoaway(0x80000000, 0)],
    ['NOTICE kind above 65535', () => encodeNotice(0x10000)],
    // Long values take the native path (LONG_VALUE): the same refusals, wherever the bad character sits.
    ['long header value with CR at the start', () => encodeRequest(1, { ...REQUEST, headers: [['a', `\r${'x'.repeat(63)}`]] })],
    ['long header value with LF at the end', () => encodeRequest(1, { ...REQUEST, headers: [['a', `${'x'.repeat(63)}\n`]] })],
    ['long meta value with NUL in the middle', () => encodeRequest(1, { ...REQUEST, meta: [['assertion', `${'x'.repeat(40)}\u0000${'x'.repeat(40)}`]] })],
    ['long header value ending outside Latin-1', () => encodeTrailers(1, [['a', `${'x'.repeat(63)}\u0141`]])],
    ['long header value with a lone surrogate', () => encodeTrailers(1, [['a', `${'x'.repeat(40)}\ud800${'x'.repeat(40)}`]])],
  ];
  for (const [name, fn] of cases) {
    it(name, () => {
      const err = protocolErrorOf(fn);
      assert.equal(err.code, 'ERR_ENCODE');
      assert.equal(err.wireCode, ErrorCode.INTERNAL_ERROR);
    });
  }

  it('accepts the largest HELLO every peer takes', () => {
    assert.equal(encodeHello({ ...HELLO, agent: 'a'.repeat(16384 - 16) }).length, 10 + 16384);
  });
});

// ---- round trips ----

/** One frame of every type, in a buffer, with the frames it must decode to. */
function everyFrame(): { bytes: Uint8Array; frames: Frame[] } {
  const frames: Frame[] = [
    { type: FrameType.HELLO, flags: 0, streamId: 0, hello: HELLO },
    { type: FrameType.REQUEST, flags: 0x02, streamId: 1, head: { ...REQUEST, meta: [['client', '10.0.0.1']] } },
    { type: FrameType.RESPONSE, flags: 0, streamId: 1, head: { status: 101, reason: 'Switching Protocols', headers: [['upgrade', 'websocket']] } },
    { type: FrameType.DATA, flags: 0, streamId: 1, data: hex('00010203fffe') },
    { type: FrameType.DATA, flags: 0, streamId: 3, data: new Uint8Array(0) },
    { type: FrameType.TRAILERS, flags: 0, streamId: 1, trailers: [['x-checksum', 'abc']] },
    { type: FrameType.WINDOW_UPDATE, flags: 0, streamId: 1, increment: 1024 },
    { type: FrameType.RESET, flags: 0, streamId: 3, errorCode: ErrorCode.UPSTREAM_RESET, message: 'upstream said no' },
    { type: FrameType.PING, flags: 0x01, streamId: 0, opaque: hex('0000000000000001') },
    { type: FrameType.GOAWAY, flags: 0, streamId: 0, lastStreamId: 3, errorCode: ErrorCode.NO_ERROR, message: 'draining' },
    { type: FrameType.NOTICE, flags: 0, streamId: 0, kind: 1, body: new TextEncoder().encode('rev-42') },
    { type: FrameType.DATA, flags: 0x01, streamId: 5, data: hex('ff') },
  ];
  return { bytes: concat(...frames.map(reencode)), frames };
}

describe('round trips', () => {
  it('every frame type decodes to what was encoded', () => {
    const { bytes, frames } = everyFrame();
    assert.deepEqual(decodeAll(bytes), frames);
  });

  it('repeated header names stay separate and in wire order', () => {
    const headers: HeaderList = [
      ['Set-Cookie', 'a=1'],
      ['x-forwarded-for', '10.0.0.1'],
      ['Set-Cookie', 'b=2'],
      ['set-cookie', 'c=3'],
      ['X-Forwarded-For', '10.0.0.2'],
      ['empty', ''],
    ];
    const f = decodeOne(encodeResponse(1, { status: 200, reason: 'OK', headers }));
    assert.equal(f.type, FrameType.RESPONSE);
    if (f.type === FrameType.RESPONSE) assert.deepEqual(f.head.headers, headers);
    const t = decodeOne(encodeTrailers(1, headers));
    if (t.type === FrameType.TRAILERS) assert.deepEqual(t.trailers, headers);
  });

  it('Latin-1 fields are byte-exact, including every byte 0x80-0xff', () => {
    let high = '';
    for (let b = 0x80; b <= 0xff; b++) high += String.fromCharCode(b);
    let allowed = '';
    for (let b = 0x01; b <= 0xff; b++) if (b !== 0x0a && b !== 0x0d) allowed += String.fromCharCode(b);
    const head: RequestHead = {
      method: 'PROPFIND',
      target: `/caf${high}?q=${high}`,
      app: `app-${high}`,
      requestId: high,
      headers: [['x-bytes', allowed]],
      meta: [['name', 'Jos\u00e9 M\u00fcller']],
    };
    const bytes = encodeRequest(1, head);
    // The value sits on the wire as the raw bytes, one per character.
    const valueBytes = hex(toHex(new Uint8Array([...allowed].map((c) => c.charCodeAt(0)))));
    assert.ok(toHex(bytes).includes(toHex(valueBytes)));
    assert.ok(toHex(bytes).includes(`0080${toHex(new Uint8Array(Array.from({ length: 128 }, (_, i) => 0x80 + i)))}`));
    const f = decodeOne(bytes);
    assert.equal(f.type, FrameType.REQUEST);
    if (f.type === FrameType.REQUEST) assert.deepEqual(f.head, head);
    assert.equal(toHex(reencode(f)), toHex(bytes));
  });

  it('UTF-8 messages survive; invalid UTF-8 is replaced, not rejected', () => {
    const f = decodeOne(encodeGoaway(1, 0, 'p\u00e9age \u{1f6a7}'));
    if (f.type === FrameType.GOAWAY) assert.equal(f.message, 'p\u00e9age \u{1f6a7}');
    const bad = decodeOne(rawFrame(FrameType.RESET, 0, 1, '00000007 ff61'));
    if (bad.type === FrameType.RESET) assert.equal(bad.message, '\ufffda');
  });

  it('unknown flag bits are passed through, not rejected', () => {
    const f = decodeOne(rawFrame(FrameType.DATA, 0xfe, 1, '61'));
    assert.equal(f.flags, 0xfe);
  });

  it('frame of exactly maxFrameSize is accepted', () => {
    const items = decodeAll(encodeData(1, new Uint8Array(16384)), 16384);
    assert.equal(items.length, 1);
  });
});

// ---- decoder: chunking ----

describe('decoder chunking', () => {
  const { bytes, frames } = everyFrame();

  it('every split of a multi-frame buffer into two chunks', () => {
    for (let cut = 0; cut <= bytes.length; cut++) {
      const d = new FrameDecoder(1 << 20);
      const items = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))];
      d.finish();
      assert.deepEqual(items, frames, `split at ${cut}`);
      assert.equal(d.buffered, 0);
    }
  });

  it('one byte at a time', () => {
    const d = new FrameDecoder(1 << 20);
    const items: DecodeItem[] = [];
    for (let i = 0; i < bytes.length; i++) items.push(...d.push(bytes.subarray(i, i + 1)));
    d.finish();
    assert.deepEqual(items, frames);
  });

  it('every split into three chunks around a frame boundary', () => {
    // Cuts near the second frame's header exercise header-then-payload continuation.
    const first = reencode(frames[0]!).length;
    for (let a = first - 3; a <= first + 12; a++) {
      for (let b = a; b <= Math.min(bytes.length, a + 40); b++) {
        const d = new FrameDecoder(1 << 20);
        const items = [...d.push(bytes.subarray(0, a)), ...d.push(bytes.subarray(a, b)), ...d.push(bytes.subarray(b))];
        d.finish();
        assert.deepEqual(items, frames, `cuts at ${a}, ${b}`);
      }
    }
  });

  it('empty chunks change nothing', () => {
    const d = new FrameDecoder(1 << 20);
    assert.deepEqual(d.push(new Uint8Array(0)), []);
    assert.deepEqual([...d.push(bytes.subarray(0, 5)), ...d.push(new Uint8Array(0)), ...d.push(bytes.subarray(5))], frames);
    d.finish();
  });

  it('buffered counts bytes held for an incomplete frame', () => {
    const d = new FrameDecoder(1 << 20);
    const data = encodeData(1, new Uint8Array(100));
    d.push(data.subarray(0, 4));
    assert.equal(d.buffered, 4);
    d.push(data.subarray(4, 50));
    assert.equal(d.buffered, 50);
    assert.equal(d.push(data.subarray(50)).length, 1);
    assert.equal(d.buffered, 0);
  });
});

// ---- decoder: connection-scope errors ----

describe('decoder connection errors', () => {
  it('input that ends inside a header or a payload: finish() throws ERR_TRUNCATED_FRAME', () => {
    const data = encodeData(1, new Uint8Array(10));
    for (const cut of [1, 9, 10, 15]) {
      const d = new FrameDecoder(1 << 20);
      assert.deepEqual(d.push(data.subarray(0, cut)), []);
      const err = protocolErrorOf(() => d.finish());
      assert.equal(err.code, 'ERR_TRUNCATED_FRAME');
      assert.equal(err.scope, 'connection');
      // The decoder stays failed.
      assert.equal(protocolErrorOf(() => d.push(data)).code, 'ERR_TRUNCATED_FRAME');
    }
  });

  it('finish() at a frame boundary is fine', () => {
    const d = new FrameDecoder(1 << 20);
    d.finish();
    d.push(encodeData(1, new Uint8Array(3)));
    d.finish();
  });

  it('oversized length: ERR_FRAME_TOO_LARGE from the header alone', () => {
    for (const length of [16385, 0xffffffff]) {
      const d = new FrameDecoder(16384);
      const header = encodeFrameHeader(length, FrameType.DATA, 0, 1);
      const err = protocolErrorOf(() => d.push(header));
      assert.equal(err.code, 'ERR_FRAME_TOO_LARGE');
      assert.equal(err.wireCode, ErrorCode.FRAME_SIZE_ERROR);
      assert.equal(err.scope, 'connection');
      // Sticky: later input gets the same error, and nothing was buffered for the payload.
      assert.equal(protocolErrorOf(() => d.push(new Uint8Array(1))), err);
      assert.ok(d.buffered <= 10);
    }
  });

  it('oversized length fed one byte at a time fails on the tenth byte', () => {
    const d = new FrameDecoder(16384);
    const header = encodeFrameHeader(0x7fffffff, FrameType.DATA, 0, 1);
    for (let i = 0; i < 9; i++) assert.deepEqual(d.push(header.subarray(i, i + 1)), []);
    assert.equal(protocolErrorOf(() => d.push(header.subarray(9))).code, 'ERR_FRAME_TOO_LARGE');
  });

  it('oversized frame after good ones in the same chunk', () => {
    const d = new FrameDecoder(16384);
    const chunk = concat(encodeData(1, hex('01')), encodeFrameHeader(20000, FrameType.DATA, 0, 1));
    assert.equal(protocolErrorOf(() => d.push(chunk)).code, 'ERR_FRAME_TOO_LARGE');
  });

  it('unknown frame type: ERR_UNKNOWN_FRAME_TYPE', () => {
    for (const type of [0x00, 0x0b, 0x7f, 0xff]) {
      const err = protocolErrorOf(() => decodeAll(rawFrame(type, 0, 1, '')));
      assert.equal(err.code, 'ERR_UNKNOWN_FRAME_TYPE');
      assert.equal(err.wireCode, ErrorCode.PROTOCOL_ERROR);
      assert.equal(err.scope, 'connection');
    }
  });

  it('control frame on a non-zero stream: ERR_BAD_STREAM_ID', () => {
    const cases = [
      rawFrame(FrameType.HELLO, 0, 1, encodeHello(HELLO).subarray(10)),
      rawFrame(FrameType.PING, 0, 1, '0000000000000000'),
      rawFrame(FrameType.GOAWAY, 0, 7, '0000000000000000'),
      rawFrame(FrameType.NOTICE, 0, 0x80000000, '0001'),
    ];
    for (const bytes of cases) {
      const err = protocolErrorOf(() => decodeAll(bytes));
      assert.equal(err.code, 'ERR_BAD_STREAM_ID');
      assert.equal(err.wireCode, ErrorCode.PROTOCOL_ERROR);
    }
  });

  it('stream frame on stream 0 or above 2^31-1: ERR_BAD_STREAM_ID', () => {
    const types = [FrameType.REQUEST, FrameType.RESPONSE, FrameType.DATA, FrameType.TRAILERS, FrameType.WINDOW_UPDATE, FrameType.RESET];
    for (const type of types) {
      for (const id of [0, 0x80000000, 0xffffffff]) {
        assert.equal(protocolErrorOf(() => decodeAll(rawFrame(type, 0, id, '00000001'))).code, 'ERR_BAD_STREAM_ID', `type ${type} id ${id}`);
      }
    }
  });

  it('control frames of the wrong size: connection-scope ERR_MALFORMED_FRAME', () => {
    const cases = [
      rawFrame(FrameType.HELLO, 0, 0, '0001000100010000000400000000'),
      rawFrame(FrameType.PING, 0, 0, '00000000000000'),
      rawFrame(FrameType.PING, 0, 0, '000000000000000000'),
      rawFrame(FrameType.GOAWAY, 0, 0, '00000000000000'),
      rawFrame(FrameType.NOTICE, 0, 0, '01'),
    ];
    for (const bytes of cases) {
      const err = protocolErrorOf(() => decodeAll(bytes));
      assert.equal(err.code, 'ERR_MALFORMED_FRAME');
      assert.equal(err.scope, 'connection');
      assert.equal(err.wireCode, ErrorCode.FRAME_SIZE_ERROR);
    }
  });

  it('GOAWAY with a last stream id above 2^31-1: connection-scope ERR_MALFORMED_FRAME', () => {
    const err = protocolErrorOf(() => decodeAll(rawFrame(FrameType.GOAWAY, 0, 0, '80000000 00000000')));
    assert.equal(err.code, 'ERR_MALFORMED_FRAME');
    assert.equal(err.scope, 'connection');
    assert.equal(err.wireCode, ErrorCode.PROTOCOL_ERROR);
  });
});

// ---- decoder: stream-scope errors ----

describe('decoder stream errors: the frame is reported, decoding goes on', () => {
  const after = encodeWindowUpdate(9, 77);

  function expectMalformed(bytes: Uint8Array, streamId: number): void {
    const items = decodeAll(concat(bytes, after));
    assert.equal(items.length, 2);
    assertStreamError(items[0], streamId);
    assert.deepEqual(items[1], { type: FrameType.WINDOW_UPDATE, flags: 0, streamId: 9, increment: 77 });
  }

  const good = encodeRequest(3, REQUEST).subarray(10);

  const cases: Array<[string, Uint8Array]> = [
    ['REQUEST cut inside the header block', rawFrame(FrameType.REQUEST, 0, 3, good.subarray(0, good.length - 4))],
    ['REQUEST with trailing bytes', rawFrame(FrameType.REQUEST, 0, 3, concat(good, hex('00')))],
    ['REQUEST with an empty payload', rawFrame(FrameType.REQUEST, 0, 3, '')],
    ['REQUEST with an empty method', rawFrame(FrameType.REQUEST, 0, 3, '0000 0001 2f 0000 0000 0000 0000')],
    ['REQUEST with an empty target', rawFrame(FrameType.REQUEST, 0, 3, '0003 474554 0000 0000 0000 0000 0000')],
    ['REQUEST with a space in the method', rawFrame(FrameType.REQUEST, 0, 3, '0003 472054 0001 2f 0000 0000 0000 0000')],
    ['REQUEST with CR in the target', rawFrame(FrameType.REQUEST, 0, 3, '0003 474554 0002 2f0d 0000 0000 0000 0000')],
    ['REQUEST with a string length past the end', rawFrame(FrameType.REQUEST, 0, 3, '0003 474554 ffff 2f')],
    ['REQUEST header count larger than the fields present', rawFrame(FrameType.REQUEST, 0, 3, '0003 474554 0001 2f 0000 0000 0005 0001 61 0001 31')],
    ['RESPONSE status 99', rawFrame(FrameType.RESPONSE, 0, 3, '0063 0000 0000')],
    ['RESPONSE status 1000', rawFrame(FrameType.RESPONSE, 0, 3, '03e8 0000 0000')],
    ['RESPONSE shorter than a status', rawFrame(FrameType.RESPONSE, 0, 3, '00')],
    ['RESPONSE with trailing bytes', rawFrame(FrameType.RESPONSE, 0, 3, '00c8 0000 0000 00')],
    ['RESPONSE reason with LF', rawFrame(FrameType.RESPONSE, 0, 3, '00c8 0002 4f0a 0000')],
    ['WINDOW_UPDATE of 3 bytes', rawFrame(FrameType.WINDOW_UPDATE, 0, 3, '000001')],
    ['WINDOW_UPDATE of 5 bytes', rawFrame(FrameType.WINDOW_UPDATE, 0, 3, '0000000100')],
    ['WINDOW_UPDATE increment 0', rawFrame(FrameType.WINDOW_UPDATE, 0, 3, '00000000')],
    ['WINDOW_UPDATE increment 2^31', rawFrame(FrameType.WINDOW_UPDATE, 0, 3, '80000000')],
    ['RESET shorter than an error code', rawFrame(FrameType.RESET, 0, 3, '000007')],
    ['TRAILERS with trailing bytes', rawFrame(FrameType.TRAILERS, 0, 3, '0000 00')],
    ['TRAILERS with no count', rawFrame(FrameType.TRAILERS, 0, 3, '')],
  ];
  for (const [name, bytes] of cases) it(name, () => expectMalformed(bytes, 3));

  // Header names must be RFC 9110 tokens; values must not hold CR, LF or NUL.
  const badNames: Array<[string, number[]]> = [
    ['empty', []],
    ['space', [0x61, 0x20, 0x62]],
    ['colon (a pseudo-header)', [0x3a, 0x61]],
    ['parenthesis', [0x28]],
    ['DEL', [0x7f]],
    ['byte 0x80', [0x80]],
    ['byte 0xe9', [0x63, 0x61, 0x66, 0xe9]],
    ['NUL', [0x00]],
    ['CR', [0x0d]],
  ];
  for (const [name, bytes] of badNames) {
    it(`header name with ${name}`, () => {
      const name16 = hex(bytes.length.toString(16).padStart(4, '0'));
      const block = concat(hex('0001'), name16, new Uint8Array(bytes), hex('0001 31'));
      expectMalformed(rawFrame(FrameType.TRAILERS, 0, 3, block), 3);
      // The same block inside a RESPONSE and in REQUEST meta.
      expectMalformed(rawFrame(FrameType.RESPONSE, 0, 3, concat(hex('00c8 0000'), block)), 3);
      expectMalformed(rawFrame(FrameType.REQUEST, 0, 3, concat(hex('0003 474554 0001 2f 0000 0000 0000'), block)), 3);
    });
  }
  for (const [name, byte] of [
    ['CR', 0x0d],
    ['LF', 0x0a],
    ['NUL', 0x00],
  ] as const) {
    it(`header value with ${name}`, () => {
      const block = concat(hex('0001 0001 61 0003 78'), new Uint8Array([byte]), hex('79'));
      expectMalformed(rawFrame(FrameType.TRAILERS, 0, 3, block), 3);
      expectMalformed(rawFrame(FrameType.REQUEST, 0, 3, concat(hex('0003 474554 0001 2f 0000 0000'), block, hex('0000'))), 3);
    });
  }

  it('a long header value with CR, LF or NUL anywhere is malformed', () => {
    for (const byte of [0x0d, 0x0a, 0x00]) {
      for (const at of [0, 31, 63]) {
        const value = new Uint8Array(64).fill(0x78);
        value[at] = byte;
        const block = concat(hex('0001 0001 61 0040'), value);
        expectMalformed(rawFrame(FrameType.TRAILERS, 0, 3, block), 3);
      }
    }
  });

  it('long values round-trip byte-exact: ASCII, and Latin-1 only at the very end', () => {
    const ascii = `eyJhbGciOiJFUzI1NiJ9.${'A'.repeat(600)}.sig-_~`;
    const tail = `${'x'.repeat(40)}\u00e9`;
    const head: RequestHead = { ...REQUEST, headers: [['x-a', ascii], ['x-b', tail], ['x-c', `\u00ff${'y'.repeat(40)}`]], meta: [['assertion', ascii]] };
    const bytes = encodeRequest(1, head);
    assert.ok(toHex(bytes).includes(`0029${'78'.repeat(40)}e9`), 'é is the single byte 0xe9, not UTF-8');
    const f = decodeOne(bytes);
    if (f.type === FrameType.REQUEST) assert.deepEqual(f.head, head);
    else assert.fail('not a REQUEST');
  });

  it('header values with tab, DEL and 0x80-0xff are accepted', () => {
    const f = decodeOne(rawFrame(FrameType.TRAILERS, 0, 3, '0001 0001 61 0004 09 7f 80 ff'));
    if (f.type === FrameType.TRAILERS) assert.deepEqual(f.trailers, [['a', '\t\u007f\u0080\u00ff']]);
  });

  it('several malformed frames for different streams in one chunk, between good ones', () => {
    const bytes = concat(
      encodeData(1, hex('aa')),
      rawFrame(FrameType.WINDOW_UPDATE, 0, 3, '00000000'),
      encodeData(1, hex('bb')),
      rawFrame(FrameType.RESPONSE, 0, 5, '0001'),
      encodeData(1, hex('cc'), 1),
    );
    // Same result whether it arrives whole or byte by byte.
    for (const step of [bytes.length, 1]) {
      const d = new FrameDecoder(1 << 20);
      const items: DecodeItem[] = [];
      for (let i = 0; i < bytes.length; i += step) items.push(...d.push(bytes.subarray(i, i + step)));
      d.finish();
      assert.equal(items.length, 5);
      assertStreamError(items[1], 3);
      assertStreamError(items[3], 5);
      assert.deepEqual(
        [items[0], items[2], items[4]].map((f) => (f && !(f instanceof ProtocolError) && f.type === FrameType.DATA ? toHex(f.data) : '?')),
        ['aa', 'bb', 'cc'],
      );
    }
  });
});

// ---- fuzz ----

/** mulberry32: small, fast, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('fuzz', () => {
  it('random and mutated input yields frames or ProtocolErrors, nothing else', { timeout: 60_000 }, () => {
    const rand = prng(0xd4a3b71d);
    const int = (n: number): number => Math.floor(rand() * n);
    const bytesOf = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(256));
    const corpus = everyFrame().bytes;
    const known = new Set<number>(Object.values(FrameType));
    const control = new Set<number>([FrameType.HELLO, FrameType.PING, FrameType.GOAWAY, FrameType.NOTICE]);
    const stats = { frames: 0, streamErrors: 0, connectionErrors: 0, clean: 0 };

    for (let iter = 0; iter < 2000; iter++) {
      let input: Uint8Array;
      const mode = iter % 4;
      if (mode === 0) {
        input = bytesOf(int(80));
      } else if (mode === 1) {
        // A valid stream with a few bytes flipped, cut or duplicated.
        input = corpus.slice(0, int(corpus.length + 1));
        for (let k = int(4) + 1; k > 0 && input.length > 0; k--) input[int(input.length)] = int(256);
      } else {
        // Frames with sound framing and random payloads: exercises the payload parsers.
        const parts: Uint8Array[] = [];
        for (let k = int(4) + 1; k > 0; k--) {
          const type = int(10) + 1;
          const id = control.has(type) ? 0 : int(5) + 1;
          const payload = mode === 2 ? bytesOf(int(40)) : reencode(everyFrameOfType(type)).subarray(10);
          if (mode === 3 && payload.length > 0) payload[int(payload.length)] = int(256);
          parts.push(rawFrame(type, int(4), id, payload));
        }
        input = concat(...parts);
      }

      const d = new FrameDecoder(1024);
      let failed: ProtocolError | undefined;
      let off = 0;
      while (off < input.length && !failed) {
        const n = int(24) + 1;
        let items: DecodeItem[] = [];
        try {
          items = d.push(input.subarray(off, off + n));
        } catch (err) {
          assert.ok(err instanceof ProtocolError, `iteration ${iter}: ${String(err)}`);
          assert.equal(err.scope, 'connection');
          assert.match(err.code, /^ERR_[A-Z_]+$/);
          failed = err;
          stats.connectionErrors++;
        }
        off += n;
        for (const item of items) {
          if (item instanceof ProtocolError) {
            assert.equal(item.scope, 'stream');
            assert.equal(item.code, 'ERR_MALFORMED_FRAME');
            assert.ok(item.streamId >= 1);
            stats.streamErrors++;
            continue;
          }
          assert.ok(known.has(item.type), `unknown type ${item.type}`);
          // What the decoder accepts, the encoders can write again, and it decodes the same.
          const again = decodeOne(reencode(item));
          assert.deepEqual(normalize(again), normalize(item));
          stats.frames++;
        }
      }
      if (failed) {
        // A failed decoder stays failed, with the same error.
        assert.equal(protocolErrorOf(() => d.push(new Uint8Array(1))), failed);
      } else {
        try {
          d.finish();
          stats.clean++;
        } catch (err) {
          assert.ok(err instanceof ProtocolError);
          assert.equal(err.code, 'ERR_TRUNCATED_FRAME');
        }
      }
    }
    // The fuzz must reach every outcome, or it tests less than it claims.
    assert.ok(stats.frames > 500 && stats.streamErrors > 100 && stats.connectionErrors > 100 && stats.clean > 100, JSON.stringify(stats));
  });
});

function everyFrameOfType(type: number): Frame {
  const f = everyFrame().frames.find((x) => x.type === type);
  assert.ok(f);
  return f;
}

/** Flags the encoders do not write (reserved bits) are not part of a frame's meaning. */
function normalize(f: Frame): Frame {
  const mask = f.type === FrameType.REQUEST ? 0x03 : f.type === FrameType.RESPONSE || f.type === FrameType.DATA || f.type === FrameType.PING ? 0x01 : 0;
  return { ...f, flags: f.flags & mask };
}
