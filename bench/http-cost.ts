/**
 * `node bench/http-cost.ts [rounds]`: the most that leaving Node's HTTP stack
 * could save per 1 KiB request, on each side of a proxy. In alternating
 * rounds of 5 s (after 2 s of warm-up), 50 keep-alive connections each:
 *
 * - server side, under wrk: a `node:http` server with the relay's public
 *   listener options, against a bare socket server that answers each request
 *   head it counts with the same fixed response and parses nothing;
 * - client side, against the bench's origin: undici's `Pool.dispatch` as the
 *   connector calls it, against a bare socket client that writes a fixed GET
 *   and counts responses by their length.
 *
 * The bare sides do none of the work a real proxy must (framing, header
 * validation, keep-alive rules), so the difference is an upper bound on what
 * hand-written HTTP/1.1 handling in relay and connector could win back
 * (docs/performance.md, item 32).
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import net, { type AddressInfo } from 'node:net';
import type * as Undici from '../packages/connector/node_modules/undici/index.js';
import { wrk } from './lib/load.ts';
import { cpuMeter, deadline, forkFixture } from './lib/proc.ts';
import { emptyResults, med, median, record, type Results } from './lib/report.ts';

const SELF = new URL(import.meta.url);
const ONE_K = Buffer.alloc(1024, 0x78);
const WARM_MS = 2_000;
const MEASURE_MS = 5_000;
const CONNECTIONS = 50;

const [role, kind, arg] = process.argv.slice(2);
process.on('disconnect', () => process.exit(0));
process.on('message', (m: { type: string }) => {
  if (m.type === 'stop') process.exit(0);
});

if (role === 'server') serve(kind!);
else if (role === 'client') client(kind!, Number(arg));
else await main();

/** A server that answers GET /1k (`node:http`) or every request head it sees (`bare`) with 1 KiB. */
function serve(which: string): void {
  let server: net.Server;
  if (which === 'node:http') {
    server = http.createServer({ noDelay: true, keepAliveTimeout: 65_000, requestTimeout: 0, optimizeEmptyRequests: true }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': ONE_K.length });
      res.end(ONE_K);
    });
  } else {
    const head = `HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 1024\r\nDate: ${new Date().toUTCString()}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=65\r\n\r\n`;
    const response = Buffer.concat([Buffer.from(head, 'latin1'), ONE_K]);
    server = net.createServer({ noDelay: true }, (socket) => {
      let carry = '';
      socket.on('error', () => socket.destroy());
      socket.on('data', (chunk: Buffer) => {
        const text = carry + chunk.toString('latin1');
        let heads = 0;
        let at = 0;
        for (let i = text.indexOf('\r\n\r\n'); i >= 0; i = text.indexOf('\r\n\r\n', at)) {
          heads += 1;
          at = i + 4;
        }
        carry = text.slice(at);
        if (heads === 1) socket.write(response);
        else if (heads > 1) socket.write(Buffer.concat(new Array<Buffer>(heads).fill(response)));
      });
    });
  }
  server.listen(0, '127.0.0.1', () => process.send!({ type: 'ready', port: (server.address() as AddressInfo).port }));
}

/** A client that keeps 50 requests in flight to the origin; answers `measure` with its CPU per request. */
function client(which: string, port: number): void {
  let done = 0;
  if (which === 'undici') {
    const { Pool } = createRequire(new URL('../packages/connector/package.json', import.meta.url))('undici') as typeof Undici;
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONNECTIONS, pipelining: 1, keepAliveTimeout: 30_000, connect: { noDelay: true } });
    const handler: Undici.Dispatcher.DispatchHandler = {
      onRequestStart() {},
      onResponseStart() {},
      onResponseData() {},
      onResponseEnd() {
        done += 1;
        next();
      },
      onResponseError(_c, err) {
        process.stderr.write(`undici: ${err.message}\n`);
        process.exit(1);
      },
    };
    // As the connector dispatches: a flat header list, no retries, no per-request timers.
    const next = (): void => void pool.dispatch({ path: '/1k', method: 'GET', headers: ['host', `127.0.0.1:${port}`], idempotent: false, blocking: false, headersTimeout: 0, bodyTimeout: 0 }, handler);
    for (let i = 0; i < CONNECTIONS; i++) next();
  } else {
    const request = Buffer.from(`GET /1k HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n\r\n`, 'latin1');
    for (let i = 0; i < CONNECTIONS; i++) {
      const socket = net.connect({ port, host: '127.0.0.1', noDelay: true }, () => socket.write(request));
      // Every answer has the same length (the origin's Date header is fixed-width): learn it from the first.
      let size = 0;
      let pending = 0;
      socket.on('data', (chunk: Buffer) => {
        if (size === 0) size = chunk.indexOf('\r\n\r\n') + 4 + ONE_K.length;
        pending += chunk.length;
        while (pending >= size) {
          pending -= size;
          done += 1;
          socket.write(request);
        }
      });
    }
  }
  process.on('message', (m: { type: string }) => {
    if (m.type !== 'measure') return;
    const before = process.cpuUsage();
    const from = done;
    setTimeout(() => {
      const used = process.cpuUsage(before);
      const n = done - from;
      process.send!({ type: 'measure', us: (used.user + used.system) / n, rps: (n * 1000) / MEASURE_MS });
    }, MEASURE_MS);
  });
  setTimeout(() => process.send!({ type: 'ready' }), WARM_MS);
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 4);
  if (!(rounds >= 1 && rounds <= 20)) {
    process.stderr.write('usage: node bench/http-cost.ts [rounds 1..20]\n');
    process.exit(2);
  }
  const watchdog = deadline('bench/http-cost', rounds * 40 + 120);
  const r: Results = emptyResults();
  const origin = await forkFixture(new URL('./fixtures/origin.ts', import.meta.url), []);
  const originPort = origin.ready.port as number;
  const servers = ['node:http', 'bare'];
  const clients = ['undici', 'bare'];
  try {
    for (let round = 0; round < rounds; round++) {
      const flip = round % 2 === 1;
      for (const which of flip ? [...servers].reverse() : servers) {
        const child = await forkFixture(SELF, ['server', which]);
        const path = { name: which, url: `http://127.0.0.1:${child.ready.port as number}`, procs: { server: child.pid }, stop: () => child.stop() };
        await wrk(path, { connections: CONNECTIONS, seconds: WARM_MS / 1000 });
        const meter = cpuMeter([child.pid])!;
        const run = await wrk(path, { connections: CONNECTIONS, seconds: MEASURE_MS / 1000 });
        record(r, 'server µs', which, round, meter() / 1000 / run.requests);
        record(r, 'server req/s', which, round, run.rps);
        await child.stop();
      }
      for (const which of flip ? [...clients].reverse() : clients) {
        const child = await forkFixture(SELF, ['client', which, String(originPort)]);
        const m = await child.ask('measure', MEASURE_MS + 10_000);
        record(r, 'client µs', which, round, m.us as number);
        record(r, 'client req/s', which, round, m.rps as number);
        await child.stop();
      }
      const s = (f: string, p: string): string => (r.rounds[f]![p]![round]!).toFixed(2);
      console.log(
        `round ${round + 1}: server node:http ${s('server µs', 'node:http')} µs, bare ${s('server µs', 'bare')} µs | client undici ${s('client µs', 'undici')} µs, bare ${s('client µs', 'bare')} µs (CPU per request)`,
      );
    }
    const range = (f: string, p: string): string => {
      const xs = r.rounds[f]![p]!;
      return `${med(r, f, p).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
    };
    // Per round, so that the machine's drift between rounds cancels out.
    const saved = (f: string, full: string): string => {
      const diffs = r.rounds[f]![full]!.map((v, i) => v - r.rounds[f]!.bare![i]!);
      return `${median(diffs).toFixed(2)} µs (${Math.min(...diffs).toFixed(2)}–${Math.max(...diffs).toFixed(2)})`;
    };
    console.log(`\nCPU per 1 KiB request, median of ${rounds} rounds (min–max):`);
    console.log(`  server: node:http ${range('server µs', 'node:http')} µs, bare socket ${range('server µs', 'bare')} µs; at most ${saved('server µs', 'node:http')} to win back`);
    console.log(`  client: undici ${range('client µs', 'undici')} µs, bare socket ${range('client µs', 'bare')} µs; at most ${saved('client µs', 'undici')} to win back`);
  } finally {
    clearTimeout(watchdog);
    await origin.stop();
  }
}
