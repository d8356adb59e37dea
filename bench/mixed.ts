/**
 * `node bench/mixed.ts [rounds] [--upload] [--baseline DIR]`: small requests
 * at a fixed rate (10 connections, one request each every 10 ms) through a
 * connector that is carrying 256 MiB downloads (or uploads) back to back,
 * against the same rate on an idle connector. A small request placed on the tunnel connection of a
 * download waits behind the data of the download's window that is already
 * queued there, which shows as added latency. With `--baseline`, the same
 * rounds also run through a Drawbridge from another checkout, alternating.
 */
import { parseArgs } from 'node:util';
import { download, upload, wrk } from './lib/load.ts';
import { drawbridge, type DrawbridgePath } from './lib/paths.ts';
import { deadline, forkFixture } from './lib/proc.ts';

const { values: args, positionals } = parseArgs({ options: { baseline: { type: 'string' }, upload: { type: 'boolean', default: false } }, allowPositionals: true });
const rounds = Number(positionals[0] ?? 2);
if (!(rounds >= 1 && rounds <= 20)) {
  process.stderr.write('usage: node bench/mixed.ts [rounds 1..20] [--upload] [--baseline DIR]\n');
  process.exit(2);
}
const watchdog = deadline('bench/mixed', rounds * 90 + 120);
const MiB = 2 ** 20;

const origin = await forkFixture(new URL('./fixtures/origin.ts', import.meta.url), []);
const port = origin.ready.port as number;
const trees: Array<{ label: string; db: DrawbridgePath }> = [{ label: 'this tree', db: await drawbridge(port, { auth: false }) }];
if (args.baseline) trees.push({ label: 'baseline', db: await drawbridge(port, { auth: false, root: args.baseline }) });

try {
  for (const { db } of trees) await wrk(db, { connections: 50, seconds: 2 });
  const line = (label: string, what: string, r: { rps: number; p50Ms: number; p99Ms: number }, extra = ''): void =>
    console.log(`${label.padEnd(10)} ${what.padEnd(16)} ${r.rps.toFixed(0).padStart(5)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms${extra}`);
  for (let i = 0; i < rounds; i++) {
    for (const { label, db } of trees) {
      line(label, 'idle connector', await wrk(db, { connections: 10, seconds: 4, delayMs: 10 }));
      let stop = false;
      const speeds: number[] = [];
      const bulk = (async () => {
        while (!stop) speeds.push(await (args.upload ? upload : download)(db, 256 * MiB, 60));
      })();
      const r = await wrk(db, { connections: 10, seconds: 4, delayMs: 10 });
      stop = true;
      await bulk;
      const kind = args.upload ? 'uploads' : 'downloads';
      line(label, `with ${kind}`, r, `; ${kind} ${speeds.map((s) => s.toFixed(0)).join(', ')} MiB/s`);
    }
  }
} finally {
  clearTimeout(watchdog);
  for (const { db } of trees) await db.stop();
  await origin.stop();
}
