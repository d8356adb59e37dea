/**
 * `node bench/cpu.ts [1k|download|upload] [runs] [--auth]`: runs one workload through
 * Drawbridge several times and prints, per run, the CPU time relay, connector
 * and origin spent per request or per MiB (from /proc/<pid>/stat). Steadier
 * than requests/s or MiB/s on a shared machine, whose speed drifts: compare
 * two settings by alternating runs of this command (for example with
 * DRAWBRIDGE_GC_TUNING=0, BENCH_SESSION_LIMITS or BENCH_NODE_FLAGS).
 */
import { download, upload, wrk } from './lib/load.ts';
import { drawbridge } from './lib/paths.ts';
import { cpuMsOf, deadline, forkFixture } from './lib/proc.ts';

const workload = process.argv[2] ?? '1k';
const runs = Number(process.argv[3] ?? 3);
const auth = process.argv.includes('--auth');
if (!['1k', 'download', 'upload'].includes(workload) || !(runs >= 1 && runs <= 50)) {
  process.stderr.write('usage: node bench/cpu.ts [1k|download|upload] [runs 1..50] [--auth]\n');
  process.exit(2);
}
const watchdog = deadline('bench/cpu', runs * 60 + 120);


const MiB = 2 ** 20;
const origin = await forkFixture(new URL('./fixtures/origin.ts', import.meta.url), []);
const db = await drawbridge(origin.ready.port as number, { auth });
const pids = { relay: db.relay.pid, connector: db.connector.pid, origin: origin.pid };
try {
  // Warm-up: JIT, pools, heap limits.
  if (workload === '1k') await wrk(db, { connections: 50, seconds: 3 });
  else await download(db, 256 * MiB, 60);
  for (let i = 0; i < runs; i++) {
    const before = Object.values(pids).map(cpuMsOf);
    let figure: string;
    let units: number;
    if (workload === '1k') {
      const r = await wrk(db, { connections: 50, seconds: 8 });
      units = r.requests;
      figure = `${r.rps.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms`;
    } else {
      const bytes = 512 * MiB;
      const rate = workload === 'download' ? await download(db, bytes, 120) : await upload(db, bytes, 120);
      units = bytes / MiB;
      figure = `${rate.toFixed(0)} MiB/s`;
    }
    const unit = workload === '1k' ? 'µs/request' : 'ms/MiB';
    const scale = workload === '1k' ? 1000 : 1;
    const spent = Object.values(pids).map((pid, k) => ((cpuMsOf(pid) - before[k]!) * scale) / units);
    console.log(`${figure} | ${Object.keys(pids).map((name, k) => `${name} ${spent[k]!.toFixed(2)}`).join(', ')} ${unit}`);
  }
} finally {
  clearTimeout(watchdog);
  await db.stop();
  await origin.stop();
}
