/**
 * `node bench/onehop.ts [rounds]`: where the 1 KiB target stands against what
 * Node can do at all. In alternating 5 s rounds of the 1 KiB load (wrk, 50
 * connections): nginx, the least a Node reverse proxy does per request (one
 * process, `node:http` in front of the connector's undici pool:
 * `fixtures/onehop.ts`), and Drawbridge (relay and connector, the tunnel's
 * TLS, framing and the proxy's own work). Prints each round's requests/s as a
 * multiple of nginx's in the same round and the CPU per request of each
 * proxy's processes (not the origin's, not wrk's), then the medians
 * (docs/performance.md, item 30).
 */
import { wrk } from './lib/load.ts';
import { drawbridge, nginx, type Path } from './lib/paths.ts';
import { cpuMeter, deadline, forkFixture } from './lib/proc.ts';
import { emptyResults, med, ratio, record } from './lib/report.ts';

const rounds = Number(process.argv[2] ?? 5);
if (!(rounds >= 1 && rounds <= 30)) {
  process.stderr.write('usage: node bench/onehop.ts [rounds 1..30]\n');
  process.exit(2);
}
const watchdog = deadline('bench/onehop', rounds * 30 + 180);
const origin = await forkFixture(new URL('./fixtures/origin.ts', import.meta.url), []);
const port = origin.ready.port as number;
const paths: Path[] = [];
try {
  paths.push(await nginx(port));
  // The relay's and connector's young-generation setting (the CLI shebangs, deploy/docker).
  const onehop = await forkFixture(new URL('./fixtures/onehop.ts', import.meta.url), [String(port)], ['--max-semi-space-size=16']);
  paths.push({ name: 'node one-hop', url: `http://127.0.0.1:${onehop.ready.port as number}`, procs: { proxy: onehop.pid }, stop: () => onehop.stop() });
  paths.push(await drawbridge(port, { auth: false }));
  // Warm-up: JIT and pools (a fresh Node proxy needs about 20,000 requests).
  for (const p of paths) await wrk(p, { connections: 50, seconds: 3 });
  const results = emptyResults();
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? paths : [...paths].reverse();
    const line: string[] = [];
    for (const p of order) {
      const cpu = cpuMeter(Object.values(p.procs))!;
      const res = await wrk(p, { connections: 50, seconds: 5 });
      const us = cpu() / 1000 / res.requests;
      record(results, 'rps', p.name, r, res.rps);
      record(results, 'cpuReq', p.name, r, us);
      line.push(`${p.name} ${res.rps.toFixed(0)} req/s, ${us.toFixed(1)} µs, p99 ${res.p99Ms.toFixed(1)} ms`);
    }
    console.log(`round ${r + 1}: ${line.join(' | ')}`);
  }
  const range = (xs: number[], d: number): string => `${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)}`;
  console.log('\nmedian of the rounds (min–max)');
  for (const p of paths) {
    const rps = results.rounds.rps![p.name]!;
    const perRound = rps.map((x, i) => x / results.rounds.rps!.nginx![i]!);
    console.log(
      `${p.name.padEnd(14)} ${ratio(results, 'rps', p.name, 'nginx').toFixed(2)} × nginx (${range(perRound, 2)}), ${med(results, 'cpuReq', p.name).toFixed(1)} µs of CPU per request (${range(results.rounds.cpuReq![p.name]!, 1)})`,
    );
  }
} finally {
  for (const p of paths) await p.stop().catch(() => undefined);
  await origin.stop();
  clearTimeout(watchdog);
}
