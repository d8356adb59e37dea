/**
 * `node bench/floor.ts [MiB] [runs]`: the least CPU per MiB that two Node
 * processes on this machine can spend moving bytes over loopback, with
 * nothing else on the path (no HTTP, no WebSocket, no framing): once over
 * plain TCP, once over TLS 1.3 as the tunnel's connections use. Each side
 * runs in its own process with relay and connector's collector settings
 * (`tuneGcForStreaming`, `noteBulkBytes`); the sender writes 256 KiB at a
 * time from 2 MiB of buffers. A relay and a connector carry each byte over one TLS connection and
 * one plain one, so the sum of the two rows is the floor under their CPU
 * per MiB (docs/performance.md, item 27).
 */
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { noteBulkBytes, tuneGcForStreaming } from '../packages/shared/src/node/gc.ts';
import { pki } from '../test/helpers/harness.ts';
import { deadline } from './lib/proc.ts';

type Mode = 'tcp' | 'tls';
const [role, mode] = process.argv.slice(2) as [string, Mode];

if (role === 'receiver') {
  tuneGcForStreaming();
  const dir = process.argv[4]!;
  const onConnection = (s: net.Socket): void => {
    let bytes = 0;
    const start = process.cpuUsage();
    s.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      noteBulkBytes(chunk.length);
    });
    s.on('end', () => {
      const used = process.cpuUsage(start);
      process.send!({ bytes, cpuMs: (used.user + used.system) / 1000 });
      s.end();
    });
  };
  const server =
    mode === 'tls'
      ? tls.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')), minVersion: 'TLSv1.3' }, onConnection)
      : net.createServer(onConnection);
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as net.AddressInfo).port }));
} else if (role === 'sender') {
  tuneGcForStreaming();
  const port = Number(process.argv[4]);
  const total = Number(process.argv[5]) * 2 ** 20;
  const ca = process.argv[6];
  const s = mode === 'tls' ? tls.connect({ port, host: '127.0.0.1', ca: readFileSync(ca!), servername: 'localhost', minVersion: 'TLSv1.3' }) : net.connect(port, '127.0.0.1');
  s.setNoDelay(true);
  s.once(mode === 'tls' ? 'secureConnect' : 'connect', () => {
    const start = process.cpuUsage();
    const t0 = performance.now();
    let sent = 0;
    // Eight buffers in turn, 2 MiB in all: more than a core's cache holds, so
    // each write reads memory as a proxy's would. (A fresh buffer per write
    // measured the allocator instead: the pages of each were faulted in anew.)
    const ring = Array.from({ length: 8 }, (_, i) => Buffer.alloc(256 * 1024, i + 1));
    const pump = (): void => {
      while (sent < total) {
        const chunk = ring[(sent / ring[0]!.length) % ring.length]!;
        sent += chunk.length;
        noteBulkBytes(chunk.length);
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
      s.end();
    };
    s.on('end', () => {
      const used = process.cpuUsage(start);
      process.send!({ cpuMs: (used.user + used.system) / 1000, wallMs: performance.now() - t0 });
      s.destroy();
    });
    s.resume();
    pump();
  });
} else {
  const mib = Number(process.argv[2] ?? 512);
  const runs = Number(process.argv[3] ?? 3);
  if (!(mib >= 16 && mib <= 8192) || !(runs >= 1 && runs <= 20)) {
    process.stderr.write('usage: node bench/floor.ts [MiB 16..8192] [runs 1..20]\n');
    process.exit(2);
  }
  const watchdog = deadline('bench/floor', runs * 2 * 120 + 60);
  const dir = mkdtempSync(join(tmpdir(), 'drawbridge-floor-'));
  const cert = pki().server(['localhost']);
  writeFileSync(join(dir, 'key.pem'), cert.key);
  writeFileSync(join(dir, 'cert.pem'), cert.chain);
  writeFileSync(join(dir, 'ca.pem'), pki().ca.cert);
  const self = new URL(import.meta.url).pathname;
  const message = <T>(child: ReturnType<typeof fork>, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      child.once('message', (m) => resolve(m as T));
      child.once('exit', (code) => reject(new Error(`the ${what} exited with status ${code} before reporting`)));
    });
  try {
    for (let i = 0; i < runs; i++) {
      for (const m of ['tcp', 'tls'] as const) {
        const receiver = fork(self, ['receiver', m, dir]);
        const { port } = await message<{ port: number }>(receiver, `${m} receiver`);
        const sender = fork(self, ['sender', m, String(port), String(mib), join(dir, 'ca.pem')]);
        const [rx, tx] = await Promise.all([message<{ cpuMs: number; bytes: number }>(receiver, `${m} receiver`), message<{ cpuMs: number; wallMs: number }>(sender, `${m} sender`)]);
        receiver.kill();
        sender.kill();
        if (rx.bytes !== mib * 2 ** 20) throw new Error(`${m}: the receiver got ${rx.bytes} of ${mib * 2 ** 20} bytes`);
        const per = (ms: number): string => (ms / mib).toFixed(2);
        console.log(`${m.padEnd(3)}  ${(mib / (tx.wallMs / 1000)).toFixed(0).padStart(5)} MiB/s  sender ${per(tx.cpuMs)} + receiver ${per(rx.cpuMs)} = ${per(tx.cpuMs + rx.cpuMs)} ms/MiB`);
      }
    }
  } finally {
    clearTimeout(watchdog);
  }
}
