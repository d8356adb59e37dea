/**
 * `node bench/after-gc.ts [rounds] [--auth]`: the 1 KiB load through
 * Drawbridge before, during and after a full collection that relay and
 * connector run in the middle of the load, with requests/s, p50, p99 and
 * each process's CPU per request. A container that holds requests across
 * young collections once it sits in the old generation (docs/performance.md,
 * item 12) shows here as a CPU per request that stays higher after the
 * collection than before it.
 */
import { wrk } from './lib/load.ts';
import { drawbridge } from './lib/paths.ts';
import { cpuMsOf, deadline, forkFixture } from './lib/proc.ts';

const rounds = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 2);
const auth = process.argv.includes('--auth');
if (!(rounds >= 1 && rounds <= 20)) {
  process.stderr.write('usage: node bench/after-gc.ts [rounds 1..20] [--auth]\n');
  process.exit(2);
}
const watchdog = deadline('bench/after-gc', rounds * 60 + 120);


const origin = await forkFixture(new URL('./fixtures/origin.ts', import.meta.url), []);
const db = await drawbridge(origin.ready.port as number, { auth });
const pids = [db.relay.pid, db.connector.pid];
try {
  await wrk(db, { connections: 50, seconds: 3 });
  const run = async (label: string, gcAtMs?: number): Promise<void> => {
    const before = pids.map(cpuMsOf);
    const timer = gcAtMs === undefined ? undefined : setTimeout(() => void Promise.all([db.relay.ask('gc'), db.connector.ask('gc')]), gcAtMs);
    const r = await wrk(db, { connections: 50, seconds: 5 });
    clearTimeout(timer);
    const cpu = pids.map((pid, k) => (((cpuMsOf(pid) - before[k]!) * 1000) / r.requests).toFixed(0)).join(' / ');
    console.log(`${label.padEnd(16)} ${r.rps.toFixed(0).padStart(6)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms | relay / connector ${cpu} µs/request`);
  };
  for (let i = 0; i < rounds; i++) {
    await run('before');
    await run('before');
    await run('full GC at 2 s', 2000);
    await run('after');
    await run('after');
  }
} finally {
  clearTimeout(watchdog);
  await db.stop();
  await origin.stop();
}
