/**
 * The benchmark's verdicts (bench/lib/report.ts) are what a reader of a run
 * takes away, so the arithmetic behind them is pinned here: ratios pair the
 * rounds they come from, failed rounds drop out, a figure just short of its
 * bound is never printed as the bound, the comparison of two runs
 * (bench/compare.ts) lines them up, and the CPU meter counts the processes a
 * path's processes started.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { compare } from '../bench/compare.ts';
import { treeCpuNs } from '../bench/lib/proc.ts';
import { emptyResults, median, ratio, record, type Results, setSingle, targets } from '../bench/lib/report.ts';

function results(rounds: Record<string, Record<string, number[]>>): Results {
  const r = emptyResults();
  for (const [figure, byPath] of Object.entries(rounds)) {
    for (const [path, values] of Object.entries(byPath)) values.forEach((v, i) => record(r, figure, path, i, v));
  }
  return r;
}

const target = (r: Results, figure: string, bound: string): { value: string; met: boolean | undefined } => {
  const t = targets(r).find((x) => x.figure === figure && x.target === bound);
  assert.ok(t, `${figure} / ${bound} is checked`);
  return t;
};

describe('bench report', () => {
  it('takes each ratio within a round, so the machine drifting between rounds cancels out', () => {
    // The machine halves its speed in round 2; the proxy is at 0.5 × nginx in every round.
    const r = results({ rps: { nginx: [20_000, 10_000, 20_000], drawbridge: [10_000, 5_000, 10_000] } });
    assert.equal(ratio(r, 'rps', 'drawbridge', 'nginx'), 0.5);
    // Medians taken apart would pair round 1's nginx with another round's Drawbridge.
    const skewed = results({ rps: { nginx: [20_000, 10_000, 30_000], drawbridge: [5_000, 6_000, 15_000] } });
    assert.equal(ratio(skewed, 'rps', 'drawbridge', 'nginx'), 0.5);
    assert.equal(median([5_000, 6_000, 15_000]) / median([20_000, 10_000, 30_000]), 0.3);
  });

  it('leaves failed rounds out instead of counting them as zero', () => {
    const r = results({ rps: { nginx: [20_000, 20_000, 20_000], drawbridge: [10_000, Number.NaN, 12_000] } });
    assert.equal(ratio(r, 'rps', 'drawbridge', 'nginx'), 0.55);
  });

  it('never prints a figure that misses its bound as the bound itself', () => {
    const r = results({
      rps: { nginx: [10_000], drawbridge: [4_999], wstunnel: [10_000], 'drawbridge-auth': [4_500] },
      rateP50: { direct: [0.25], drawbridge: [1.252] },
      rateP99: { direct: [1], drawbridge: [6] },
    });
    // 0.4999 rounds to 0.500, which would read as met.
    assert.deepEqual(target(r, '1 KiB req/s, passthrough', '≥ 0.50 × nginx'), { figure: '1 KiB req/s, passthrough', target: '≥ 0.50 × nginx', value: '0.499×', met: false });
    const p50 = target(r, 'added latency at 1,000 req/s', 'p50 ≤ +1 ms over direct');
    assert.equal(p50.value, '1.002 ms');
    assert.equal(p50.met, false);
    const justOver = targets(results({ rateP50: { direct: [0.25], drawbridge: [1.2502] } })).find((x) => x.target === 'p50 ≤ +1 ms over direct')!;
    assert.deepEqual([justOver.value, justOver.met], ['1.001 ms', false]);
    assert.equal(target(r, '1 KiB req/s, pre-auth + header rules', '≥ 0.9 × passthrough').value, '0.900×');
    assert.equal(target(r, '1 KiB req/s, pre-auth + header rules', '≥ 0.9 × passthrough').met, true);
    assert.equal(target(r, 'added latency at 1,000 req/s', 'p99 ≤ +5 ms over direct').met, true);
    // What was not measured says so rather than passing or failing.
    assert.deepEqual(target(r, '100 MiB upload', '≥ 1.5 × ssh -R'), { figure: '100 MiB upload', target: '≥ 1.5 × ssh -R', value: 'not measured', met: undefined });
  });

  it('lines two runs up figure by figure, with each run’s ratio to nginx', () => {
    const run = (scale: number, proxy: number): Parameters<typeof compare>[0] => {
      const r = results({ rps: { nginx: [20_000 * scale], drawbridge: [proxy * scale] }, cpuReq: { nginx: [25], drawbridge: [100] } });
      setSingle(r, 'idle', 'relay', 70 * 1024);
      return { date: '2026-12-06T00:00:00.000Z', quick: false, commit: { sha: 'a'.repeat(40), dirty: scale === 2 }, machine: { cpuModel: 'test cpu', kernel: '6.1' }, node: 'v24.0.0', cpus: 2, results: r, targets: targets(r) };
    };
    // The new run is on a machine twice as fast, where Drawbridge gained against nginx.
    const text = compare(run(1, 8_000), run(2, 10_000));
    assert.match(text, /\*\*new\*\*: .*aaaaaaaaaa \(with uncommitted changes\), 2 × test cpu, kernel 6\.1/);
    assert.match(text, /\| Drawbridge passthrough \| 8,000 \| 20,000 \| 2\.50× \| 0\.40× \| 0\.50× \|/);
    assert.match(text, /\| nginx one-hop \(unbuffered\) \| 25\.0 \| 25\.0 \| 1\.00× \| 1\.00× \| 1\.00× \|/);
    assert.match(text, /\| 1 KiB req\/s, passthrough \| ≥ 0\.50 × nginx \| 0\.400× \| 0\.500× \(met\) \|/);
    assert.match(text, /Targets met: old 1 of 16, new 2 of 16\./);
  });

  it('counts the CPU of the processes a path’s process started, not only its own', async () => {
    // An idle parent whose child burns 300 ms of CPU (CPU time, however busy
    // the machine), says so and stays: an exited process is no longer counted.
    const child = 'while (process.cpuUsage().user < 300000); console.log(1); setInterval(() => {}, 60000)';
    const parent = spawn(process.execPath, ['-e', `require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(child)}], { stdio: ['ignore', 'inherit', 'inherit'] }); setInterval(() => {}, 60000)`], {
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true, // its own process group, so both go at the end
    });
    try {
      await once(parent, 'spawn');
      const before = treeCpuNs([parent.pid!]);
      await once(parent.stdout, 'data');
      const spentMs = (treeCpuNs([parent.pid!]) - before) / 1e6;
      assert.ok(spentMs >= 250, `the tree spent ${spentMs.toFixed(0)} ms, the busy child alone about 300`);
    } finally {
      process.kill(-parent.pid!, 'SIGKILL');
    }
  });
});
