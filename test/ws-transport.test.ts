/**
 * The session transport writes its WebSocket frames itself (shared/node/
 * ws-transport.ts). These tests put it between a real `ws` server and client
 * over real TLS and check that the other side's `ws` receives exactly the
 * messages sent, at every length encoding, masked from the client, in order
 * with `ws`'s own control frames, and that nothing is written once the
 * WebSocket is closing.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { webSocketTransport } from '@drawbridge/shared/node';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { pki } from './helpers/harness.ts';

interface Pair {
  server: WebSocket;
  serverSocket: TLSSocket;
  client: WebSocket;
  clientSocket: TLSSocket;
  /** Messages each side's `ws` delivered, in order. */
  atServer: Buffer[];
  atClient: Buffer[];
  errors: Error[];
}

/** `n` bytes of a pattern that differs from one call to the next, so a misplaced byte shows. */
let seed = 0;
function pattern(n: number): Uint8Array {
  const out = new Uint8Array(n);
  const s = ++seed;
  for (let i = 0; i < n; i++) out[i] = (i * 31 + s) & 0xff;
  return out;
}

/** Neither side reported an error; the client closes and hears the close. */
async function closeCleanly(pair: Pair): Promise<void> {
  assert.deepEqual(pair.errors, []);
  pair.client.close();
  await once(pair.client, 'close');
}

/** Resolves once `list` holds `n` entries. */
async function until(list: unknown[], n: number, ws: WebSocket): Promise<void> {
  while (list.length < n) await once(ws, 'message');
}

describe('WebSocket transport', () => {
  let server: https.Server;
  let url: string;
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 1024 * 1024 });
  const accepted: Array<(ws: WebSocket, socket: TLSSocket) => void> = [];

  before(async () => {
    const p = pki();
    const cert = p.server(['127.0.0.1']);
    server = https.createServer({ cert: cert.chain, key: cert.key });
    server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
      wss.handleUpgrade(req, socket, head, (ws) => accepted.shift()?.(ws, socket as TLSSocket));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `wss://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  after(async () => {
    wss.close();
    server.closeAllConnections();
    server.close();
  });

  async function connect(): Promise<Pair> {
    const serverSide = new Promise<{ ws: WebSocket; socket: TLSSocket }>((resolve) => accepted.push((ws, socket) => resolve({ ws, socket })));
    const client = new WebSocket(url, { ca: pki().ca.cert, perMessageDeflate: false, generateMask: (m) => m.fill(0), maxPayload: 1024 * 1024 });
    let clientSocket: TLSSocket | undefined;
    client.once('upgrade', (res) => {
      clientSocket = res.socket as TLSSocket;
    });
    await once(client, 'open');
    const { ws: srv, socket } = await serverSide;
    const pair: Pair = { server: srv, serverSocket: socket, client, clientSocket: clientSocket!, atServer: [], atClient: [], errors: [] };
    srv.on('message', (data: RawData, binary: boolean) => {
      assert.equal(binary, true);
      pair.atServer.push(data as Buffer);
    });
    client.on('message', (data: RawData, binary: boolean) => {
      assert.equal(binary, true);
      pair.atClient.push(data as Buffer);
    });
    srv.on('error', (e) => pair.errors.push(e));
    client.on('error', (e) => pair.errors.push(e));
    return pair;
  }

  it('delivers every length encoding, both ways, from several parts', async () => {
    const pair = await connect();
    const toServer = webSocketTransport(pair.client, pair.clientSocket, { masked: true });
    const toClient = webSocketTransport(pair.server, pair.serverSocket, { masked: false });
    // 7-bit, 16-bit and 64-bit lengths, and the edges between them.
    const sizes = [1, 9, 125, 126, 127, 1000, 65_535, 65_536, 65_537, 300_000];
    const sent: Buffer[] = [];
    for (const size of sizes) {
      const parts = size < 9 ? [pattern(size)] : [pattern(9), pattern(size - 9)];
      sent.push(Buffer.concat(parts));
      toServer.send(parts, size);
      toClient.send(parts, size);
    }
    await until(pair.atServer, sizes.length, pair.server);
    await until(pair.atClient, sizes.length, pair.client);
    assert.deepEqual(pair.atServer, sent);
    assert.deepEqual(pair.atClient, sent);
    await closeCleanly(pair);
  });

  it('keeps its frames whole among ws control frames', async () => {
    const pair = await connect();
    const toServer = webSocketTransport(pair.client, pair.clientSocket, { masked: true });
    let pongs = 0;
    pair.client.on('pong', () => pongs++);
    const sent: Buffer[] = [];
    for (let i = 0; i < 20; i++) {
      const parts = [pattern(100), pattern(70_000)];
      sent.push(Buffer.concat(parts));
      toServer.send(parts, 70_100);
      pair.client.ping();
    }
    await until(pair.atServer, 20, pair.server);
    while (pongs < 20) await once(pair.client, 'pong');
    assert.deepEqual(pair.atServer, sent);
    await closeCleanly(pair);
  });

  it('writes nothing once the WebSocket is closing', async () => {
    const pair = await connect();
    const toClient = webSocketTransport(pair.server, pair.serverSocket, { masked: false });
    toClient.send([pattern(10)], 10);
    toClient.close(1000, 'done');
    toClient.send([pattern(10)], 10);
    const [code] = (await once(pair.client, 'close')) as [number];
    assert.equal(code, 1000);
    assert.equal(pair.atClient.length, 1);
    assert.deepEqual(pair.errors, []);
  });

  it('refuses a batch whose parts do not add up to its length, before writing', async () => {
    const pair = await connect();
    const toServer = webSocketTransport(pair.client, pair.clientSocket, { masked: true });
    const before = pair.clientSocket.bytesWritten;
    assert.throws(() => toServer.send([pattern(10), pattern(10)], 30), /batch of 20 bytes announced as 30/);
    assert.equal(pair.clientSocket.bytesWritten, before);
    await closeCleanly(pair);
  });

  it('sends an unmasked client frame only if asked, which the server refuses', async () => {
    const pair = await connect();
    // The server fails the connection with 1002 (protocol error), which the client hears.
    const closed = new Promise<number>((resolve) => pair.client.on('close', resolve));
    webSocketTransport(pair.client, pair.clientSocket, { masked: false }).send([pattern(10)], 10);
    const code = await closed;
    assert.equal(code, 1002);
    assert.match(pair.errors.map((e) => e.message).join(' '), /MASK must be set/);
  });
});
