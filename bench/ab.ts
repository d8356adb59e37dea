/**
 * `node bench/ab.ts --baseline DIR [pairs] [--auth] [--connections N]`: the
 * 1 KiB load through this tree and through a Drawbridge from another
 * checkout, in back-to-back pairs of 5 s runs (the order alternates from
 * pair to pair), with requests/s, p99, the CPU per request of relay,
 * connector and origin and of the whole machine (wrk and the kernel
 * included), and the ratio of each pair. On a machine whose speed
 * drifts by half within minutes, the two runs of a pair see nearly the same
 * machine, so the per-pair ratio resolves differences of a few percent that
 * the full benchmark's rounds cannot.
 */
import { parseArgs } from 'node:util';
import { wrk } from './lib/load.ts';
import { drawbridge, type DrawbridgePath } from './lib/paths.ts';
import { cpuMsOf, deadline, forkFixture, machineBusyMs } from './lib/proc.ts';

const { values: args, positionals } = parseArgs({
  options: { baseline: { type: 'string' }, auth: { type: 'boolean', default: false }, connections: { type: 'string', default: '50' } },
  allowPositionals: true,
});
const pairs = Number(positionals[0] ?? 8);
const connections = Number(args.connections);
if (!args.baseline || !(pairs >= 1 && pairs <= 50) || !(connections >= 1 && connections <= 1000)) {
  process.stderr.write('usage: node bench/ab.ts --baseline DIR [pairs 1..50] [--auth] [--connections 1..1000]\n');
  process.exit(2);
}
const watchdog = deadline('bench/ab', pairs * 15 + 120);

interface Run {
  rps: number;
  p99Ms: number;
  /** µs per request: relay, connector, origin. */
  cpu: number[];
  /** µs per request the whole machine was busy: every process (wrk too) and the kernel's share. */
  machine: number;
}

const origin = await forkFixture(new URL('./fixtures/origin.ts', import.meta.url), []);
const port = origin.ready.port as number;
const mine = await drawbridge(port, { auth: args.auth });
const base = await drawbridge(port, { auth: args.auth, root: args.baseline });

async function run(db: DrawbridgePath): Promise<Run> {
  const pids = [db.relay.pid, db.connector.pid, origin.pid];
  const before = pids.map(cpuMsOf);
  const busy = machineBusyMs();
  const r = await wrk(db, { connections, seconds: 5 });
  return { rps: r.rps, p99Ms: r.p99Ms, cpu: pids.map((pid, k) => ((cpuMsOf(pid) - before[k]!) * 1000) / r.requests), machine: ((machineBusyMs() - busy) * 1000) / r.requests };
}

const show = (r: Run): string => `${r.rps.toFixed(0).padStart(6)} req/s, p99 ${r.p99Ms.toFixed(1).padStart(5)} ms, CPU ${r.cpu.map((c) => c.toFixed(0)).join('/')} of ${r.machine.toFixed(0)} µs`;
try {
  for (const db of [mine, base]) await wrk(db, { connections, seconds: 3 });
  const ratios: number[] = [];
  for (let i = 0; i < pairs; i++) {
    const first = i % 2 === 0 ? mine : base;
    const a = await run(first);
    const b = await run(first === mine ? base : mine);
    const [m, o] = first === mine ? [a, b] : [b, a];
    ratios.push(m.rps / o.rps);
    console.log(`pair ${String(i + 1).padStart(2)}: this tree ${show(m)} | baseline ${show(o)} | ${(m.rps / o.rps).toFixed(3)}`);
  }
  ratios.sort((x, y) => x - y);
  const wins = ratios.filter((r) => r > 1).length;
  console.log(`req/s this tree ÷ baseline: median ${ratios[Math.floor(ratios.length / 2)]!.toFixed(3)}, range ${ratios[0]!.toFixed(3)}–${ratios.at(-1)!.toFixed(3)}, higher in ${wins} of ${pairs} pairs`);
  console.log('(CPU: relay/connector/origin of the whole machine, µs per request)');
} finally {
  clearTimeout(watchdog);
  await mine.stop();
  await base.stop();
  await origin.stop();
}
