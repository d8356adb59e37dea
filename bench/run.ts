/**
 * `pnpm bench`: Drawbridge against the other ways of doing its job, in one run
 * on this machine, over loopback only. See docs/performance.md.
 *
 *   pnpm bench                 full run (about 15 minutes), 3 alternating rounds
 *   pnpm bench --quick         seconds-long smoke run (CI): figures only, no thresholds
 *   --rounds N                 rounds of the throughput workloads
 *   --only a,b                 these paths only (direct, nginx, drawbridge, drawbridge-log, drawbridge-auth, ssh, wstunnel, localtunnel)
 *   --profile DIR              relay and connector write --cpu-prof profiles to DIR
 *   --write-docs               put the table into docs/performance.md
 *   --baseline DIR             also run Drawbridge from another checkout (A/B while optimising)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { download, sseFanout, slowReader, upload, wrk } from './lib/load.ts';
import { direct, drawbridge, type DrawbridgePath, LABELS, localtunnel, nginx, type Path, PATH_NAMES, type PathName, ssh, wstunnel } from './lib/paths.ts';
import { prepare } from './lib/prepare.ts';
import { cpuMeter, forkFixture, killAll, rssOf, sleep } from './lib/proc.ts';
import { emptyResults, record, type Results, setSingle, table, targets } from './lib/report.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    only: { type: 'string' },
    profile: { type: 'string' },
    'write-docs': { type: 'boolean', default: false },
    baseline: { type: 'string' },
  },
});
const quick = args.quick;
const MiB = 2 ** 20;
const cfg = quick
  ? { rounds: 1, transferRounds: 1, warmTransfers: 1, rpsSeconds: 2, rateSeconds: 2, warmSeconds: 1, bytes: 10 * MiB, sse: { streams: 100, events: 3, intervalMs: 200 }, idle: 100, slow: { seconds: 3 }, deadlineMs: 5 * 60_000 }
  : { rounds: 3, transferRounds: 5, warmTransfers: 3, rpsSeconds: 10, rateSeconds: 10, warmSeconds: 3, bytes: 100 * MiB, sse: { streams: 1000, events: 10, intervalMs: 500 }, idle: 2000, slow: { seconds: 20 }, deadlineMs: 40 * 60_000 };
if (args.rounds) cfg.rounds = Math.max(1, Number(args.rounds));
// A 100 MiB transfer takes well under a second, so its rounds are cheap and
// its figures the noisiest of the run: at least 5 of them.
cfg.transferRounds = Math.max(cfg.rounds, cfg.transferRounds);
const only = args.only ? new Set(args.only.split(',')) : undefined;

// Every run is bounded: whatever happens, the benchmark ends by itself.
const watchdog = setTimeout(() => {
  process.stderr.write(`bench: deadline of ${cfg.deadlineMs / 60_000} min reached, stopping\n`);
  killAll();
  process.exit(2);
}, cfg.deadlineMs);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}
process.on('exit', killAll);

const log = (msg: string): boolean => process.stderr.write(`bench: ${msg}\n`);
const results: Results = emptyResults();

const loadBefore = loadavg()[0]!;
const prepared = await prepare();
for (const note of prepared.notes) log(note);

const origin = await forkFixture(new URL('./fixtures/origin.ts', import.meta.url), []);
const originPort = origin.ready.port as number;

const paths = new Map<PathName, Path>();
const wanted = PATH_NAMES.filter((p) => (p === 'baseline' ? args.baseline !== undefined : !only || only.has(p)));
const profileArgs = args.profile ? ['--cpu-prof', '--cpu-prof-dir', args.profile] : [];
const starters: Record<PathName, () => Promise<Path> | Path> = {
  direct: () => direct(originPort),
  nginx: () => (prepared.nginx ? nginx(originPort) : Promise.reject(new Error('nginx is not installed'))),
  drawbridge: () => drawbridge(originPort, { auth: false, execArgv: profileArgs }),
  'drawbridge-log': () => drawbridge(originPort, { auth: false, accessLog: true, execArgv: profileArgs }),
  'drawbridge-auth': () => drawbridge(originPort, { auth: true, execArgv: profileArgs }),
  ssh: () => (prepared.ssh ? ssh(originPort) : Promise.reject(new Error('OpenSSH server or client is not installed'))),
  wstunnel: () => (prepared.npm.wstunnel ? wstunnel(originPort) : Promise.reject(new Error('wstunnel (npm) is not installed'))),
  baseline: () => drawbridge(originPort, { auth: false, root: args.baseline! }),
  localtunnel: () => (prepared.npm.localtunnel ? localtunnel(originPort) : Promise.reject(new Error('localtunnel and its server (npm) are not installed'))),
};
for (const name of wanted) {
  try {
    log(`starting ${name}`);
    paths.set(name, await starters[name]());
  } catch (err) {
    results.skipped[name] = (err as Error).message.split('\n')[0]!.slice(0, 300);
    log(`skipping ${name}: ${results.skipped[name]}`);
  }
}
const live = [...paths.keys()];

/** Runs `fn` on every path, rotating the order each round so no path always goes first. */
async function rounds(what: string, fn: (p: Path, round: number) => Promise<void>, count = cfg.rounds): Promise<void> {
  for (let round = 0; round < count; round++) {
    const order = live.map((_, i) => live[(i + round) % live.length]!);
    for (const name of order) {
      try {
        await fn(paths.get(name)!, round);
      } catch (err) {
        const msg = `${what}, ${name}, round ${round + 1}: ${(err as Error).message.slice(0, 300)}`;
        results.errors.push(msg);
        log(msg);
      }
    }
  }
}

const db = paths.get('drawbridge') as DrawbridgePath | undefined;
try {
  if (prepared.wrk) {
    log('warm-up');
    for (const name of live) await wrk(paths.get(name)!, { connections: 50, seconds: cfg.warmSeconds }).catch(() => undefined);
    log('1 KiB at 50 connections');
    await rounds('1 KiB', async (p, round) => {
      const cpu = cpuMeter(Object.values(p.procs));
      const r = await wrk(p, { connections: 50, seconds: cfg.rpsSeconds });
      if (r.errors > r.requests / 100) throw new Error(`${r.errors} errors in ${r.requests} requests`);
      record(results, 'rps', p.name, round, r.rps);
      if (cpu) record(results, 'cpuReq', p.name, round, cpu() / 1000 / r.requests);
      record(results, 'p50', p.name, round, r.p50Ms);
      record(results, 'p99', p.name, round, r.p99Ms);
      log(`  ${p.name}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms`);
    });
    log('fixed rate');
    await rounds('fixed rate', async (p, round) => {
      const r = await wrk(p, { connections: 10, seconds: cfg.rateSeconds, delayMs: 10 });
      record(results, 'rateRps', p.name, round, r.rps);
      record(results, 'rateP50', p.name, round, r.p50Ms);
      record(results, 'rateP99', p.name, round, r.p99Ms);
      log(`  ${p.name}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms`);
    });
  } else {
    log('wrk is not installed: skipping the small-request workloads');
    results.errors.push('wrk is not installed: small-request workloads not measured');
  }
  if (prepared.curl) {
    // Every path moves bytes both ways before it is measured, as every path
    // took requests before the 1 KiB rounds: a fresh Node process spends
    // about twice the CPU per MiB on its first 100 MiB while V8 compiles its
    // bulk path, and that warm-up is over by the third (docs/performance.md,
    // "Warm-up of the bulk path"). C programs (nginx, OpenSSH) are unaffected.
    log(`warm-up: ${cfg.warmTransfers} × ${cfg.bytes / MiB} MiB each way`);
    for (const name of live) {
      if (name === 'drawbridge-log') continue;
      for (let i = 0; i < cfg.warmTransfers; i++) {
        await download(paths.get(name)!, cfg.bytes, 120).catch(() => undefined);
        await upload(paths.get(name)!, cfg.bytes, 120).catch(() => undefined);
      }
    }
    log(`${cfg.bytes / MiB} MiB download and upload`);
    await rounds('transfer', async (p, round) => {
      // One request per transfer: the access log changes nothing there.
      if (p.name === 'drawbridge-log') return;
      let cpu = cpuMeter(Object.values(p.procs));
      const down = await download(p, cfg.bytes, 120);
      record(results, 'down', p.name, round, down);
      if (cpu) record(results, 'cpuDown', p.name, round, cpu() / 1e6 / (cfg.bytes / MiB));
      cpu = cpuMeter(Object.values(p.procs));
      const up = await upload(p, cfg.bytes, 120);
      record(results, 'up', p.name, round, up);
      if (cpu) record(results, 'cpuUp', p.name, round, cpu() / 1e6 / (cfg.bytes / MiB));
      log(`  ${p.name}: down ${down.toFixed(0)} MiB/s, up ${up.toFixed(0)} MiB/s`);
    }, cfg.transferRounds);
  }

  if (db) {
    await db.relay.ask('gc');
    await db.connector.ask('gc');
    setSingle(results, 'afterLoad', 'relay', rssOf(db.relay.pid));
    setSingle(results, 'afterLoad', 'connector', rssOf(db.connector.pid));
  }

  log(`SSE: ${cfg.sse.streams} streams`);
  for (const name of live) {
    const p = paths.get(name)!;
    if (name === 'direct' || name === 'drawbridge-log') continue;
    try {
      const r = await sseFanout(p, cfg.sse.streams, cfg.sse.events, cfg.sse.intervalMs, p.procs);
      setSingle(results, 'sseDelivered', name, r.delivered);
      setSingle(results, 'sseExpected', name, r.expected);
      for (const [proc, g] of Object.entries(r.growth)) setSingle(results, `sseGrowth:${name}`, proc, g);
      log(`  ${name}: ${r.delivered}/${r.expected} events in ${r.seconds.toFixed(1)} s`);
    } catch (err) {
      results.errors.push(`SSE, ${name}: ${(err as Error).message}`);
    }
    await sleep(500);
  }

  if (db) {
    // Memory figures come from a fresh relay and connector: the throughput
    // workloads above leave each process with a heap sized for them.
    log('memory: fresh relay and connector');
    for (const p of paths.values()) await p.stop().catch(() => undefined);
    paths.clear();
    const mem = await drawbridge(originPort, { auth: false });
    paths.set('drawbridge', mem);
    await mem.relay.ask('gc');
    await mem.connector.ask('gc');
    setSingle(results, 'fresh', 'relay', rssOf(mem.relay.pid));
    setSingle(results, 'fresh', 'connector', rssOf(mem.connector.pid));
    if (prepared.wrk) await wrk(mem, { connections: 50, seconds: 1 });
    await download(mem, 32 * MiB, 60).catch(() => undefined);

    // As many runs as rounds: peak RSS includes buffers already garbage, and
    // when V8 collects them varies from run to run (docs/performance.md, item 11).
    for (let round = 0; round < cfg.rounds; round++) {
      log(`slow reader, ${cfg.slow.seconds} s, run ${round + 1} of ${cfg.rounds}`);
      await mem.relay.ask('gc');
      await mem.connector.ask('gc');
      const r = await slowReader(mem, 1024 * MiB, MiB, cfg.slow.seconds, { relay: mem.relay.pid, connector: mem.connector.pid });
      record(results, 'slowGrowth', 'relay', round, r.growth.relay!);
      record(results, 'slowGrowth', 'connector', round, r.growth.connector!);
      log(`  read ${(r.received / MiB).toFixed(1)} MiB; growth relay ${(r.growth.relay! / MiB).toFixed(1)} MiB, connector ${(r.growth.connector! / MiB).toFixed(1)} MiB`);
    }

    log(`idle tunnel connections: ${cfg.idle}`);
    const before = (await mem.relay.ask('gc')).rss as number;
    const extra = await mem.addConnector(cfg.idle);
    const after = (await mem.relay.ask('gc')).rss as number;
    const conRss = (await extra.ask('gc')).rss as number;
    setSingle(results, 'idle', 'relay', (after - before) / cfg.idle);
    // The connector's baseline: a fresh 2-connection connector, measured the same way.
    setSingle(results, 'idle', 'connector', (conRss - (results.single.fresh?.connector ?? 0)) / cfg.idle);
    log(`  relay +${((after - before) / MiB).toFixed(1)} MiB for ${cfg.idle} connections`);
    await extra.stop();
  }
} finally {
  for (const p of paths.values()) await p.stop().catch(() => undefined);
  await origin.stop();
}

const shownRounds = cfg.rounds;
const sizes = `${cfg.bytes / MiB} MiB`;
const meta = {
  rounds: shownRounds,
  transferRounds: cfg.transferRounds,
  quick,
  sizes,
  sse: `${cfg.sse.streams} concurrent streams, ${cfg.sse.events} events each, one every ${cfg.sse.intervalMs} ms`,
  idle: cfg.idle,
  slow: `${cfg.slow.seconds} s`,
};
const md = table(results, PATH_NAMES.filter((p) => live.includes(p) || results.skipped[p]), LABELS, meta);
const stamp = new Date().toISOString();
const machine = { cpuModel: cpus()[0]?.model.trim() ?? 'unknown', kernel: release(), memoryBytes: totalmem(), loadAverageBefore: loadBefore };
const header = `Run ${stamp}${quick ? ' (--quick)' : ''} on ${cpus().length} × ${machine.cpuModel}, Node ${process.version}, load average before the run ${loadBefore.toFixed(2)}.`;
process.stdout.write(`\n${header}\n\n${md}\n`);

const dir = new URL('./results/', import.meta.url);
mkdirSync(dir, { recursive: true });
const json = JSON.stringify({ date: stamp, quick, commit: commitOf(), machine, config: cfg, node: process.version, cpus: cpus().length, prepared, results, targets: targets(results) }, null, 2);
writeFileSync(new URL(`${stamp.replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`, dir), json);
writeFileSync(new URL(`latest${quick ? '-quick' : ''}.json`, dir), json);
log(`results written to bench/results/latest${quick ? '-quick' : ''}.json`);

if (args['write-docs']) {
  const doc = new URL('../docs/performance.md', import.meta.url);
  const text = readFileSync(doc, 'utf8');
  const start = '<!-- bench:results:start -->';
  const end = '<!-- bench:results:end -->';
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a >= 0 && b > a) {
    writeFileSync(doc, `${text.slice(0, a + start.length)}\n${header}\n\n${md}\n${text.slice(b)}`);
    log('docs/performance.md updated');
  }
}
clearTimeout(watchdog);
process.exit(0);

/** The commit the run measured, and whether the tree had changes on top of it; undefined outside a git checkout. */
function commitOf(): { sha: string; dirty: boolean } | undefined {
  try {
    const cwd = new URL('..', import.meta.url).pathname;
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return { sha, dirty };
  } catch {
    return undefined;
  }
}
