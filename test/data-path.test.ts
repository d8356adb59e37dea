/**
 * The streaming data path end to end: user → relay → connector (mTLS tunnel)
 * → internal app and back, on loopback with real TLS and real sockets.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import type http from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import { WebSocket, WebSocketServer } from 'ws';
import { appConfig, client, fetchVia, type Origin, rawExchange, type Stack, startOrigin, startStack } from './helpers/harness.ts';

function echoHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const out = JSON.stringify({ method: req.method, url: req.url, rawHeaders: req.rawHeaders, trailers: req.rawTrailers, bodyLength: body.length, body: body.toString('latin1').slice(0, 200) });
    res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['a=1; Path=/', 'b=2; Path=/'] });
    res.end(out);
  });
}

interface Echo {
  method: string;
  url: string;
  rawHeaders: string[];
  trailers: string[];
  bodyLength: number;
  body: string;
}

/**
 * Writes `chunk` `count` times and the last chunk of a chunked body, then
 * waits for the connection to close: all of it taken, or the relay closing
 * it when its linger after an early answer ran out. A relay that stopped
 * reading would leave this waiting, and the test fails at 20 s.
 */
async function sendAll(sock: Socket, chunk: Buffer, count: number): Promise<void> {
  const closed = closedWithin(sock, 20_000);
  for (let i = 0; i < count && !sock.destroyed; i++) {
    if (!sock.write(chunk)) await Promise.race([new Promise((resolve) => sock.once('drain', resolve)), closed]);
  }
  if (!sock.destroyed) sock.end('0\r\n\r\n');
  await closed;
}

/** Resolves when `sock` closes, however (a reset counts); rejects after `ms`. */
function closedWithin(sock: Socket, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the connection was still open after ${ms} ms`)), ms);
    sock.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** GETs a response whose body must be cut off before its end: its status and the text that came first. */
async function readUntilCut(relay: Stack['relay'], host: string, path: string): Promise<{ status: number; got: string }> {
  const res = await request(`${relay.publicUrl}${path}`, { headers: { host }, dispatcher: client });
  let got = '';
  res.body.setEncoding('utf8');
  res.body.on('data', (d: string) => (got += d));
  await assert.rejects(once(res.body, 'end'), /terminated|aborted|closed|socket/i);
  return { status: res.statusCode, got };
}

/** Sends a one-byte chunk every 50 ms, for ever, until the relay closes the connection (10 s at most). */
async function dripUntilClosed(sock: Socket): Promise<void> {
  const drip = setInterval(() => sock.write('1\r\na\r\n'), 50);
  try {
    await closedWithin(sock, 10_000);
  } finally {
    clearInterval(drip);
  }
}

/** A plain TCP connection to the relay's public listener, reading latin1 text. */
async function rawSocket(relay: Stack['relay']): Promise<Socket> {
  const url = new URL(relay.publicUrl);
  const sock = connect(Number(url.port), url.hostname);
  await once(sock, 'connect');
  sock.setEncoding('latin1');
  sock.on('error', () => undefined);
  return sock;
}

function headerValues(raw: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

describe('data path', () => {
  let origin: Origin;
  let stack: Stack;
  const sse = { next: Promise.withResolvers<void>(), started: Promise.withResolvers<void>() };
  const aborted = Promise.withResolvers<void>();
  /** 'close' with the path, when the app sees a request of /stall or /forever go away. */
  const appSaw = new EventEmitter();
  const wss = new WebSocketServer({ noServer: true });
  // Random, so a chunk lost, repeated or reordered anywhere on the way changes the digest.
  const blob = randomBytes(48 * 1024 * 1024);
  const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

  before(async () => {
    origin = await startOrigin((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      switch (url.pathname) {
        case '/head':
        case '/': {
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' });
          res.end(req.method === 'HEAD' ? undefined : 'hello');
          return;
        }
        case '/204':
          res.writeHead(204);
          res.end();
          return;
        case '/304':
          res.writeHead(304, { etag: '"x"' });
          res.end();
          return;
        case '/trailers':
          res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
          res.write('part1;');
          res.addTrailers({ 'x-checksum': 'abc123' });
          res.end('part2');
          return;
        case '/redirect':
          res.writeHead(302, { location: `${origin.url}/landing?x=1` });
          res.end();
          return;
        case '/sse':
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
          res.write('data: one\n\n');
          sse.started.resolve();
          void sse.next.promise.then(() => res.end('data: two\n\n'));
          return;
        case '/hang':
          req.on('close', () => aborted.resolve());
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('start');
          return;
        case '/never':
          return; // no head at all: the app hangs
        case '/early':
          // A complete answer at once, without reading the request body (a refusal, a redirect).
          res.writeHead(401, { 'content-type': 'text/plain', 'content-length': '2' });
          res.end('no');
          return;
        case '/stall':
          // No head, and the app notices when its request goes away.
          req.on('close', () => appSaw.emit('close', '/stall'));
          return;
        case '/forever': {
          // A body that never ends: a chunk every 100 ms until the request goes away.
          res.writeHead(200, { 'content-type': 'text/plain' });
          let n = 0;
          const tick = setInterval(() => res.write(`tick${++n};`), 100);
          req.on('close', () => {
            clearInterval(tick);
            appSaw.emit('close', '/forever');
          });
          return;
        }
        case '/drip': {
          // Three chunks 100 ms apart, then silence with the response still open.
          res.writeHead(200, { 'content-type': 'text/plain' });
          let n = 0;
          const drip = setInterval(() => {
            res.write(`drop${++n};`);
            if (n === 3) clearInterval(drip);
          }, 100);
          req.on('close', () => clearInterval(drip));
          return;
        }
        case '/blob': {
          // Written in 1 MiB pieces as fast as the socket takes them: windows grow, turns are shared.
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(blob.length) });
          let at = 0;
          const more = (): void => {
            while (at < blob.length) {
              const piece = blob.subarray(at, (at += 1024 * 1024));
              if (!res.write(piece)) return void res.once('drain', more);
            }
            res.end();
          };
          more();
          return;
        }
        case '/digest': {
          const hash = createHash('sha256');
          let n = 0;
          req.on('data', (c: Buffer) => {
            hash.update(c);
            n += c.length;
          });
          req.on('end', () => res.end(JSON.stringify({ bytes: n, sha256: hash.digest('hex') })));
          return;
        }
        default:
          echoHandler(req, res);
      }
    });
    origin.server.on('upgrade', (req, socket, head) => {
      if (req.url === '/declined') {
        // A refusal whose body overruns its Content-Length: the connector's HTTP parser fails on it.
        socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno, and more');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('message', (data, isBinary) => {
          const text = Buffer.from(data as Buffer).toString();
          if (text === 'close-me') ws.close(4321, 'bye from app');
          else ws.send(data, { binary: isBinary });
        });
        ws.send(`hello ${String(req.headers['x-forwarded-for'])}`);
      });
    });
    stack = await startStack({
      apps: [
        appConfig({ internalUrl: origin.url }),
        appConfig({ id: 'app_slow', name: 'slow', externalHost: 'slow.test', internalUrl: origin.url, timeouts: { connectMs: 1000, headMs: 300, idleMs: 0, totalMs: 0 } }),
        appConfig({ id: 'app_idle', name: 'idle', externalHost: 'idle.test', internalUrl: origin.url, timeouts: { connectMs: 1000, headMs: 300, idleMs: 300, totalMs: 0 } }),
        // Head and idle timeouts out of the way: only the total timeout can end an exchange here.
        appConfig({ id: 'app_total', name: 'total', externalHost: 'total.test', internalUrl: origin.url, timeouts: { connectMs: 1000, headMs: 60_000, idleMs: 0, totalMs: 600 } }),
        appConfig({ id: 'app_down', name: 'down', externalHost: 'down.test', internalUrl: 'http://127.0.0.1:9' }),
        appConfig({ id: 'app_base', name: 'based', externalHost: 'based.test', internalUrl: `${origin.url}/base/` }),
        appConfig({ id: 'app_limited', name: 'limited', externalHost: 'limited.test', internalUrl: origin.url, limits: { maxRequestBodyBytes: 1000 } }),
        appConfig({ id: 'app_ghost', name: 'ghost', externalHost: 'ghost.test', internalUrl: origin.url, group: 'nobody-group' }),
      ],
      // A short grace, so the relay's own head timeout is tested too (upload below).
      relay: { queue: { maxWaitMs: 300, maxLength: 10 }, headGraceMs: 200, unreadBodyLingerMs: 500 },
    });
    // Ghost is known to the relay but to no connector's group.
  });

  after(async () => {
    await stack?.close();
    await origin?.close();
    await client.close();
  });

  it('carries method, path, query, repeated headers and cookies, and sets X-Forwarded-*', async () => {
    const res = await fetchVia(stack.relay, 'hello.test', '/echo/a%20b?x=1&x=2', {
      headers: {
        cookie: 'c1=v1; c2=v2',
        'x-multi': ['one', 'two'],
        'x-forwarded-for': '203.0.113.7',
        'x-drawbridge-user': 'spoofed',
        'x-drawbridge-assertion': 'forged',
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
      },
    });
    assert.equal(res.status, 200);
    const echo = JSON.parse(res.body.toString()) as Echo;
    assert.equal(echo.method, 'GET');
    assert.equal(echo.url, '/echo/a%20b?x=1&x=2');
    assert.deepEqual(headerValues(echo.rawHeaders, 'x-multi'), ['one', 'two']);
    assert.deepEqual(headerValues(echo.rawHeaders, 'cookie'), ['c1=v1; c2=v2']);
    assert.deepEqual(headerValues(echo.rawHeaders, 'x-forwarded-for'), ['203.0.113.7, 127.0.0.1']);
    assert.deepEqual(headerValues(echo.rawHeaders, 'x-forwarded-proto'), ['http']);
    assert.deepEqual(headerValues(echo.rawHeaders, 'x-forwarded-host'), ['hello.test']);
    assert.deepEqual(headerValues(echo.rawHeaders, 'host'), ['hello.test']);
    assert.deepEqual(headerValues(echo.rawHeaders, 'x-drawbridge-user'), []);
    assert.deepEqual(headerValues(echo.rawHeaders, 'x-drawbridge-assertion'), []);
    assert.deepEqual(headerValues(echo.rawHeaders, 'proxy-authorization'), []);
    const requestId = headerValues(echo.rawHeaders, 'x-drawbridge-request-id');
    assert.equal(requestId.length, 1);
    assert.equal(res.headers['x-drawbridge-request-id'], requestId[0]);
    assert.deepEqual(res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
  });

  it('carries any method with content-length and chunked bodies', async () => {
    const fixed = await fetchVia(stack.relay, 'hello.test', '/echo', { method: 'PUT', body: Buffer.from('x'.repeat(100_000)) });
    assert.equal((JSON.parse(fixed.body.toString()) as Echo).bodyLength, 100_000);
    for (const method of ['POST', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND']) {
      const res = await fetchVia(stack.relay, 'hello.test', '/echo', { method, body: 'payload' });
      const echo = JSON.parse(res.body.toString()) as Echo;
      assert.equal(echo.method, method);
      assert.equal(echo.body, 'payload');
    }
    // Chunked, written by hand; hop-by-hop fields (also those named in Connection) stay behind.
    const raw = await rawExchange(
      stack.relay,
      'POST /echo HTTP/1.1\r\nhost: hello.test\r\ntransfer-encoding: chunked\r\nconnection: close, x-hop\r\nx-hop: must-go\r\nkeep-alive: timeout=5\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
    );
    const echo = JSON.parse(raw.body.slice(raw.body.indexOf('{'), raw.body.lastIndexOf('}') + 1)) as Echo;
    assert.equal(echo.body, 'hello world');
    assert.deepEqual(headerValues(echo.rawHeaders, 'x-hop'), []);
    assert.deepEqual(headerValues(echo.rawHeaders, 'keep-alive'), []);
  });

  it('handles HEAD, 204 and 304 without bodies, and response trailers', async () => {
    const head = await fetchVia(stack.relay, 'hello.test', '/head', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '5');
    assert.equal(head.body.length, 0);
    const noContent = await fetchVia(stack.relay, 'hello.test', '/204');
    assert.equal(noContent.status, 204);
    assert.equal(noContent.body.length, 0);
    const notModified = await fetchVia(stack.relay, 'hello.test', '/304');
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers.etag, '"x"');
    const tr = await fetchVia(stack.relay, 'hello.test', '/trailers');
    assert.equal(tr.body.toString(), 'part1;part2');
    assert.equal(tr.trailers['x-checksum'], 'abc123');
  });

  it('delivers server-sent events one by one, before the next is produced', async () => {
    const res = await request(`${stack.relay.publicUrl}/sse`, { headers: { host: 'hello.test' }, dispatcher: client });
    assert.equal(res.headers['content-type'], 'text/event-stream');
    const it = res.body[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(Buffer.from(first.value as Buffer).toString(), 'data: one\n\n');
    // Only now may the app produce the second event.
    sse.next.resolve();
    let rest = '';
    for (let r = await it.next(); !r.done; r = await it.next()) rest += Buffer.from(r.value as Buffer).toString();
    assert.equal(rest, 'data: two\n\n');
  });

  it('passes on an upgrade the app declines, and never writes a second response after its head', async () => {
    const ws = new WebSocket(`${stack.relay.publicUrl.replace('http', 'ws')}/declined`, { headers: { host: 'hello.test' } });
    const [handshake, answer] = (await once(ws, 'unexpected-response')) as [http.ClientRequest, http.IncomingMessage];
    assert.equal(answer.statusCode, 403);
    const body = await text(answer).catch(() => '');
    assert.ok(!body.includes('HTTP/1.1'), `a second response followed the app's head: ${JSON.stringify(body)}`);
    handshake.destroy();
  });

  it('carries WebSocket upgrades both ways and keeps close codes', async () => {
    const ws = new WebSocket(`${stack.relay.publicUrl.replace('http', 'ws')}/socket`, { headers: { host: 'hello.test' } });
    const [greeting] = (await once(ws, 'message')) as [Buffer];
    assert.equal(greeting.toString(), 'hello 127.0.0.1');
    ws.send(Buffer.from([0, 1, 2, 255]));
    const [binary, isBinary] = (await once(ws, 'message')) as [Buffer, boolean];
    assert.equal(isBinary, true);
    assert.deepEqual([...binary], [0, 1, 2, 255]);
    ws.send('x'.repeat(300_000));
    const [big] = (await once(ws, 'message')) as [Buffer];
    assert.equal(big.length, 300_000);
    ws.send('close-me');
    const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
    assert.equal(code, 4321);
    assert.equal(reason.toString(), 'bye from app');
  });

  it('propagates a client abort to the application', async () => {
    const ac = new AbortController();
    const res = await request(`${stack.relay.publicUrl}/hang`, { headers: { host: 'hello.test' }, dispatcher: client, signal: ac.signal });
    const it = res.body[Symbol.asyncIterator]();
    await it.next();
    ac.abort();
    await aborted.promise; // the app saw its request go away
  });

  it('answers unknown hosts with a 404 page and robots.txt with Disallow', async () => {
    const res = await fetchVia(stack.relay, 'nope.test', '/');
    assert.equal(res.status, 404);
    assert.equal(res.headers['x-drawbridge-error'], 'ERR_UNKNOWN_HOST');
    assert.match(res.body.toString(), /nope\.test/);
    const robots = await fetchVia(stack.relay, 'hello.test', '/robots.txt');
    assert.equal(robots.body.toString(), 'User-agent: *\nDisallow: /\n');
  });

  it('names the cause and the request id when the app is unreachable or slow', async () => {
    const down = await fetchVia(stack.relay, 'down.test', '/');
    assert.equal(down.status, 502);
    assert.equal(down.headers['x-drawbridge-error'], 'ERR_UPSTREAM_UNREACHABLE');
    assert.ok(down.body.toString().includes(String(down.headers['x-drawbridge-request-id'])));
    const slow = await fetchVia(stack.relay, 'slow.test', '/never');
    assert.equal(slow.status, 504);
    assert.equal(slow.headers['x-drawbridge-error'], 'ERR_UPSTREAM_TIMEOUT');
  });

  it('times out a body that falls silent, not one that keeps coming', async () => {
    // idle.test allows 300 ms of silence: the three chunks 100 ms apart pass, the silence after them does not.
    const { status, got } = await readUntilCut(stack.relay, 'idle.test', '/drip');
    assert.equal(status, 200);
    assert.equal(got, 'drop1;drop2;drop3;');
    // The app's connection went with it, and the app still answers the next request.
    const next = await fetchVia(stack.relay, 'idle.test', '/echo/after');
    assert.equal(next.status, 200);
  });

  it('does not count a slow reader against the app as silence', async () => {
    // The user reads nothing for 1 s while the app has 48 MiB to send: the tunnel window holds the
    // app back far longer than idle.test's 300 ms, and that is the user's doing, not the app's.
    const res = await request(`${stack.relay.publicUrl}/blob`, { headers: { host: 'idle.test' }, dispatcher: client });
    assert.equal(res.statusCode, 200);
    res.body.pause();
    await delay(1000);
    const body = Buffer.from(await res.body.arrayBuffer());
    assert.equal(body.length, blob.length);
    assert.equal(sha256(body), sha256(blob));
  });

  it('counts the head timeout from the last byte of an upload that is still moving', async () => {
    // slow.test answers within 300 ms or times out (the relay gives up 200 ms later): a
    // 1.2 s upload in 150 ms steps is longer than both, and each step is shorter.
    const body = randomBytes(8 * 4096);
    let sent = 0;
    const source = new Readable({
      read() {
        if (sent === body.length) return void this.push(null);
        const piece = body.subarray(sent, (sent += 4096));
        setTimeout(() => this.push(piece), 150);
      },
    });
    const res = await fetchVia(stack.relay, 'slow.test', '/digest', { method: 'POST', body: source });
    assert.equal(res.status, 200, res.body.toString());
    assert.deepEqual(JSON.parse(res.body.toString()), { bytes: body.length, sha256: sha256(body) });
  });

  it('ends an exchange at the app\'s total timeout, before or after the head, and the app sees it go', async () => {
    // Before the head: a 504 that names the total timeout, not the head timeout (a minute here).
    const stalled = once(appSaw, 'close', { signal: AbortSignal.timeout(10_000) });
    const early = await fetchVia(stack.relay, 'total.test', '/stall');
    assert.equal(early.status, 504);
    assert.equal(early.headers['x-drawbridge-error'], 'ERR_UPSTREAM_TOTAL_TIMEOUT');
    assert.match(early.body.toString(), /did not complete within 600ms/);
    assert.deepEqual(await stalled, ['/stall']);
    // After the head: a body that is still flowing is cut, since a 504 can no longer be sent.
    const cut = once(appSaw, 'close', { signal: AbortSignal.timeout(10_000) });
    const { status, got } = await readUntilCut(stack.relay, 'total.test', '/forever');
    assert.equal(status, 200);
    assert.match(got, /^tick1;/, 'the body was flowing when it was cut');
    assert.deepEqual(await cut, ['/forever']);
    // An exchange that finishes in time is untouched, and the app still answers.
    const quick = await fetchVia(stack.relay, 'total.test', '/echo/after');
    assert.equal(quick.status, 200);
  });

  it('counts the total timeout over an upload that is still moving, unlike the head timeout', async () => {
    // The 1.2 s upload that slow.test's head timeout lets through (above) is over total.test's 600 ms.
    let sent = 0;
    const source = new Readable({
      read() {
        if (sent === 8) return void this.push(null);
        sent++;
        setTimeout(() => this.push(randomBytes(4096)), 150);
      },
    });
    const res = await fetchVia(stack.relay, 'total.test', '/digest', { method: 'POST', body: source });
    assert.equal(res.status, 504);
    assert.equal(res.headers['x-drawbridge-error'], 'ERR_UPSTREAM_TOTAL_TIMEOUT');
  });

  it('reads and drops the rest of an upload it answered early, so the client is never left blocked', async () => {
    // 32 MiB, far more than socket buffers and the tunnel window hold: had the relay paused the
    // request after answering, the client's writes would block until the keep-alive timer.
    const piece = Buffer.alloc(64 * 1024, 0x61);
    const chunk = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
    for (const [host, path, answer] of [
      ['total.test', '/stall', /^HTTP\/1\.1 504 [^]*x-drawbridge-error: ERR_UPSTREAM_TOTAL_TIMEOUT/i],
      ['limited.test', '/digest', /^HTTP\/1\.1 413 [^]*x-drawbridge-error: ERR_BODY_TOO_LARGE/i],
    ] as const) {
      const sock = await rawSocket(stack.relay);
      let raw = '';
      sock.on('data', (d: string) => (raw += d));
      sock.write(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n`);
      await sendAll(sock, chunk, 512);
      assert.match(raw, answer, host);
    }
  });

  it('closes the connection of a body that goes on after an early answer, once the linger is over', async () => {
    // limited.test answers 413 at its 1000th byte; the client then goes on sending, slowly, for ever.
    const sock = await rawSocket(stack.relay);
    let raw = '';
    sock.on('data', (d: string) => (raw += d));
    sock.write('POST /digest HTTP/1.1\r\nHost: limited.test\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n' + 'a'.repeat(0x800) + '\r\n');
    // The relay's linger is 500 ms here (30 s by default).
    await dripUntilClosed(sock);
    assert.match(raw, /^HTTP\/1\.1 413 /);
  });

  it('lets go of the stream when the app answers in full before the upload ends, and drops the rest', async () => {
    const openStreams = (): number => stack.relay.registry.connections().reduce((n, c) => n + c.session.openStreams, 0);
    // 32 MiB after a complete 401: had the stream stayed open, its window would stop the client and hold a tunnel slot.
    const piece = Buffer.alloc(64 * 1024, 0x61);
    const chunk = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]);
    const sock = await rawSocket(stack.relay);
    let raw = '';
    sock.on('data', (d: string) => (raw += d));
    sock.write('POST /early HTTP/1.1\r\nHost: hello.test\r\nTransfer-Encoding: chunked\r\n\r\n');
    await sendAll(sock, chunk, 512);
    assert.match(raw, /^HTTP\/1\.1 401 [^]*\r\n\r\nno$/);
    assert.equal(openStreams(), 0, 'no stream left open on the relay');

    // A body that drips on for ever after that answer is closed once the linger (500 ms here) is over.
    const dripping = await rawSocket(stack.relay);
    dripping.write('POST /early HTTP/1.1\r\nHost: hello.test\r\nTransfer-Encoding: chunked\r\n\r\n');
    await dripUntilClosed(dripping);
    assert.equal(openStreams(), 0);
  });

  it('does not apply the total timeout to a WebSocket', async () => {
    // Eight round trips 100 ms apart outlast total.test's 600 ms.
    const ws = new WebSocket(`${stack.relay.publicUrl.replace('http', 'ws')}/ws`, { headers: { host: 'total.test' } });
    const messages: string[] = [];
    ws.on('message', (d: Buffer) => messages.push(d.toString()));
    await once(ws, 'open');
    for (let i = 1; i <= 8; i++) {
      await delay(100);
      const echoed = once(ws, 'message');
      ws.send(`m${i}`);
      await echoed;
    }
    assert.deepEqual(messages.slice(-8), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8']);
    ws.close();
    await once(ws, 'close');
  });

  it('gives 503 with Retry-After when no connector of the group comes in time', async () => {
    const res = await fetchVia(stack.relay, 'ghost.test', '/');
    assert.equal(res.status, 503);
    assert.equal(res.headers['x-drawbridge-error'], 'ERR_NO_CONNECTOR');
    assert.equal(res.headers['retry-after'], '1');
  });

  it('maps the external path onto the internal base path and refuses to climb out of it', async () => {
    const res = await fetchVia(stack.relay, 'based.test', '/x?y=1');
    assert.equal((JSON.parse(res.body.toString()) as Echo).url, '/base/x?y=1');
    for (const path of ['/../secret', '/a/%2e%2e/%2E%2E/secret', '/..%2fsecret']) {
      const climb = await rawExchange(stack.relay, `GET ${path} HTTP/1.1\r\nhost: based.test\r\nconnection: close\r\n\r\n`);
      assert.equal(climb.status, 502, path);
      assert.match(climb.head, /x-drawbridge-error: ERR_TARGET_NOT_ALLOWED/);
    }
  });

  it('rewrites Location headers that point at the internal URL', async () => {
    const res = await fetchVia(stack.relay, 'hello.test', '/redirect');
    assert.equal(res.status, 302);
    assert.equal(res.headers.location, 'http://hello.test/landing?x=1');
  });

  it('refuses request bodies over the app limit with 413', async () => {
    const declared = await fetchVia(stack.relay, 'limited.test', '/echo', { method: 'POST', body: 'x'.repeat(2000) });
    assert.equal(declared.status, 413);
    assert.equal(declared.headers['x-drawbridge-error'], 'ERR_BODY_TOO_LARGE');
    const ok = await fetchVia(stack.relay, 'limited.test', '/echo', { method: 'POST', body: 'x'.repeat(500) });
    assert.equal(ok.status, 200);
  });

  it('carries large bodies byte for byte both ways, while small requests go on beside them', async () => {
    const expected = sha256(blob);
    const [down, up, ...small] = await Promise.all([
      fetchVia(stack.relay, 'hello.test', '/blob'),
      fetchVia(stack.relay, 'hello.test', '/digest', { method: 'POST', body: blob }),
      ...Array.from({ length: 20 }, () => fetchVia(stack.relay, 'hello.test', '/')),
    ]);
    assert.equal(down.status, 200);
    assert.equal(down.body.length, blob.length);
    assert.equal(sha256(down.body), expected, 'download intact');
    assert.equal(up.status, 200);
    assert.deepEqual(JSON.parse(up.body.toString()), { bytes: blob.length, sha256: expected }, 'upload intact');
    assert.ok(small.every((r) => r.status === 200 && r.body.toString() === 'hello'));
  });

  it('keeps two tunnel connections per connector and serves concurrent requests over them', async () => {
    assert.equal(stack.relay.registry.connections().length, 2);
    const results = await Promise.all(Array.from({ length: 40 }, () => fetchVia(stack.relay, 'hello.test', '/')));
    assert.ok(results.every((r) => r.status === 200));
  });

  it('never puts more streams on a connection than the connector accepts', async () => {
    let inFlight = 0;
    let peak = 0;
    const slowOrigin = await startOrigin((_req, res) => {
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      setImmediate(() => {
        inFlight -= 1;
        res.end('done');
      });
    });
    const capped = await startStack({
      apps: [appConfig({ internalUrl: slowOrigin.url })],
      connector: { connections: 1, limits: { maxStreams: 2 } },
      relay: { queue: { maxWaitMs: 10_000, maxLength: 100 } },
    });
    try {
      const results = await Promise.all(Array.from({ length: 30 }, () => fetchVia(capped.relay, 'hello.test', '/')));
      assert.ok(results.every((r) => r.status === 200 && r.body.toString() === 'done'));
      assert.ok(peak <= 2, `app saw ${peak} requests at once through a 2-stream connection`);
    } finally {
      await capped.close();
      await slowOrigin.close();
    }
  });

  it('queues a request until a connector arrives', async () => {
    const stack2 = await startStack({ apps: [appConfig({ internalUrl: origin.url })], connectors: 0, relay: { queue: { maxWaitMs: 10_000, maxLength: 10 } } });
    try {
      const pending = fetchVia(stack2.relay, 'hello.test', '/');
      await delay(0);
      await stack2.addConnector();
      const res = await pending;
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), 'hello');
    } finally {
      await stack2.close();
    }
  });
});
