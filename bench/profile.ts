/**
 * `node bench/profile.ts [1k|download|upload] [seconds]`: runs one workload
 * through Drawbridge with relay and connector under --cpu-prof, then prints
 * where each spent its time (self time by function, and by package). Open the
 * .cpuprofile files in Chrome DevTools or speedscope for flame graphs.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { download, upload, wrk } from './lib/load.ts';
import { drawbridge } from './lib/paths.ts';
import { forkFixture, killAll } from './lib/proc.ts';

const workload = process.argv[2] ?? '1k';
const seconds = Number(process.argv[3] ?? 10);
const auth = process.argv.includes('--auth');
const dir = mkdtempSync(join(tmpdir(), 'drawbridge-prof-'));
const watchdog = setTimeout(() => {
  killAll();
  process.exit(2);
}, (seconds + 120) * 1000);
process.on('exit', killAll);

const origin = await forkFixture(new URL('./fixtures/origin.ts', import.meta.url), []);
const db = await drawbridge(origin.ready.port as number, { auth, execArgv: ['--cpu-prof', '--cpu-prof-dir', dir] });
try {
  if (workload === '1k') {
    await wrk(db, { connections: 50, seconds: 2 });
    const r = await wrk(db, { connections: 50, seconds });
    console.log(`1k: ${r.rps.toFixed(0)} req/s p50 ${r.p50Ms.toFixed(2)} ms p99 ${r.p99Ms.toFixed(2)} ms`);
  } else if (workload === 'download' || workload === 'upload') {
    const n = 256 * 2 ** 20;
    const t0 = performance.now();
    let total = 0;
    while (performance.now() - t0 < seconds * 1000) {
      const v = workload === 'download' ? await download(db, n, 60) : await upload(db, n, 60);
      total += 1;
      console.log(`${workload}: ${v.toFixed(0)} MiB/s`);
    }
    console.log(`${total} transfers`);
  }
} finally {
  await db.stop();
  await origin.stop();
}

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
  children?: number[];
}
function summarize(file: string): void {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[] };
  const total = prof.nodes.reduce((a, n) => a + n.hitCount, 0);
  const byFn = new Map<string, number>();
  const byPkg = new Map<string, number>();
  for (const n of prof.nodes) {
    const url = n.callFrame.url.replace(/^file:\/\//, '');
    const short = url.replace(/.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, '').replace(/.*\/work\/main\//, '');
    const key = `${n.callFrame.functionName || '(anon)'} ${short}:${n.callFrame.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + n.hitCount);
    const pkg = url === '' ? n.callFrame.functionName : url.startsWith('node:') ? url : /node_modules\/\.pnpm\/[^/]+\/node_modules\/((@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? short.split('/').slice(0, 3).join('/');
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + n.hitCount);
  }
  const top = (m: Map<string, number>, k: number): string =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([name, hits]) => `  ${((hits / total) * 100).toFixed(1).padStart(5)}%  ${name}`)
      .join('\n');
  // Inclusive time: each function's own samples plus those of everything it called (counted once per stack).
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map<string, number>();
  const keyOf = (n: Node): string => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/^file:\/\//, '').replace(/.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, '').replace(/.*\/work\/main\//, '')}:${n.callFrame.lineNumber + 1}`;
  for (const n of prof.nodes) {
    if (n.hitCount === 0) continue;
    const seen = new Set<string>();
    for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
      const k = keyOf(byId.get(id)!);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + n.hitCount);
    }
  }
  for (const k of [...inclusive.keys()]) if (/^\((root|idle|program|garbage collector)\)|^\(anon\) :0/.test(k)) inclusive.delete(k);
  console.log(`\n== ${file} (${total} samples)\n-- by package/file\n${top(byPkg, 15)}\n-- by function (self)\n${top(byFn, 30)}\n-- by function (inclusive)\n${top(inclusive, process.env.PROFILE_INCLUSIVE ? Number(process.env.PROFILE_INCLUSIVE) : 40)}`);
}
for (const f of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) summarize(join(dir, f));
console.log(`\nprofiles in ${dir}`);
clearTimeout(watchdog);
process.exit(0);
