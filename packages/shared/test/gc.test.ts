import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { helperFlagsToTurnOff, tuneGcForStreaming } from '../src/node/index.ts';

/**
 * Runs `work` (module code that may use `noteBulkBytes`) in a child process
 * after `tuneGcForStreaming()`, counting V8's collections of `kind`
 * ('MAJOR' or 'MINOR').
 */
function collectionsInChild(kind: 'MAJOR' | 'MINOR', work: string, env: Record<string, string>, flags: string[] = []): { applied: boolean; count: number } {
  const script = `
    import { PerformanceObserver, constants } from 'node:perf_hooks';
    import { noteBulkBytes, tuneGcForStreaming } from ${JSON.stringify(new URL('../src/node/index.ts', import.meta.url).href)};
    const applied = tuneGcForStreaming();
    let count = 0;
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_${kind}) count += 1;
    });
    obs.observe({ entryTypes: ['gc'] });
    ${work}
    await new Promise((r) => setTimeout(r, 20));
    obs.disconnect();
    console.log(JSON.stringify({ applied, count }));
  `;
  const r = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { applied: boolean; count: number };
}

/**
 * A child process churns through 2 GiB of 256 KiB buffers (as a proxy does,
 * one per socket read or tunnel message, never more than 8 alive) and counts
 * V8's full mark-compacts. The child collects on its own thread only: on a
 * busy machine V8's helper threads free backing stores late, and the count
 * would depend on the load rather than on the setting.
 */
function fullGcsUnderBufferChurn(env: Record<string, string>): { applied: boolean; fullGcs: number } {
  const churn = `
    const alive = [];
    for (let i = 0; i < 8192; i++) {
      const b = Buffer.allocUnsafe(256 * 1024);
      b[0] = i;
      alive.push(b);
      if (alive.length > 8) alive.shift();
      if (i % 64 === 0) await new Promise((r) => setImmediate(r));
    }
  `;
  const { applied, count } = collectionsInChild('MAJOR', churn, env, ['--single-threaded-gc']);
  return { applied, fullGcs: count };
}

/**
 * A child process runs 200 young collections, each after 1 MiB of
 * short-lived 64 KiB buffers (what a transfer leaves between two of them),
 * and counts how often V8's helper threads went to sleep meanwhile (their
 * voluntary context switches, from /proc): each sleep follows a wake-up.
 * With the tuning applied the collections are the ones `noteBulkBytes` asks
 * for, one per MiB counted; without it, V8's own (`gc()`).
 */
function helperWakeupsPerYoungCollection(env: Record<string, string>): { applied: boolean; perCollection: number } {
  const script = `
    import { readdirSync, readFileSync } from 'node:fs';
    import { noteBulkBytes, tuneGcForStreaming } from ${JSON.stringify(new URL('../src/node/index.ts', import.meta.url).href)};
    const applied = tuneGcForStreaming();
    const collect = applied ? async () => { noteBulkBytes(1024 * 1024); await new Promise((r) => setImmediate(r)); } : async () => gc({ type: 'minor' });
    const helperSleeps = () => {
      let n = 0;
      for (const t of readdirSync('/proc/self/task')) {
        if (Number(t) === process.pid) continue;
        try { n += Number(/\\nvoluntary_ctxt_switches:\\s+(\\d+)/.exec(readFileSync('/proc/self/task/' + t + '/status', 'utf8'))[1]); } catch {}
      }
      return n;
    };
    const oneMiB = () => { for (let j = 0; j < 16; j++) Buffer.allocUnsafe(64 * 1024)[0] = j; };
    for (let i = 0; i < 50; i++) { oneMiB(); await collect(); }
    await new Promise((r) => setTimeout(r, 50));
    const before = helperSleeps();
    for (let i = 0; i < 200; i++) { oneMiB(); await collect(); }
    await new Promise((r) => setTimeout(r, 50));
    console.log(JSON.stringify({ applied, perCollection: (helperSleeps() - before) / 200 }));
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { applied: boolean; perCollection: number };
}

describe('tuneGcForStreaming', () => {
  it('is off with DRAWBRIDGE_GC_TUNING=0, off or false, and on a V8 it was not measured on', () => {
    for (const v of ['0', 'off', 'FALSE']) assert.equal(tuneGcForStreaming({ DRAWBRIDGE_GC_TUNING: v }), false);
    assert.equal(tuneGcForStreaming({}, '99.1.0'), false);
    assert.equal(tuneGcForStreaming({}, '12.4.254'), false);
  });

  it('leaves alone the helper-thread flags that the command line turned off', () => {
    assert.deepEqual(helperFlagsToTurnOff('--max-semi-space-size=16 --parallel-scavenge'), ['parallel-scavenge', 'concurrent-array-buffer-sweeping']);
    assert.deepEqual(helperFlagsToTurnOff('--no-parallel-scavenge'), ['concurrent-array-buffer-sweeping']);
    assert.deepEqual(helperFlagsToTurnOff('--no_concurrent_array_buffer_sweeping'), ['parallel-scavenge']);
    assert.deepEqual(helperFlagsToTurnOff('--no-parallel-scavenge-xyz'), ['parallel-scavenge', 'concurrent-array-buffer-sweeping']);
    assert.deepEqual(helperFlagsToTurnOff('--expose-gc --single-threaded-gc'), []);
  });

  it('lets young collections free short-lived buffers instead of forcing full collections', () => {
    const tuned = fullGcsUnderBufferChurn({});
    const plain = fullGcsUnderBufferChurn({ DRAWBRIDGE_GC_TUNING: '0' });
    assert.equal(plain.applied, false);
    // V8's default: one full collection per 64 MiB or so of buffers.
    assert.ok(plain.fullGcs >= 10, `expected V8's default to run many full collections, saw ${plain.fullGcs}`);
    if (tuned.applied) assert.ok(tuned.fullGcs <= plain.fullGcs / 3, `tuned: ${tuned.fullGcs} full collections, default: ${plain.fullGcs}`);
    else assert.notEqual(Number.parseInt(process.versions.v8, 10), 13, 'the setting applies on the V8 of Node 24');
  });

  it('runs a young collection per MiB of counted bulk bytes, after the turn, and none when the tuning is off', () => {
    // 64 MiB counted in 16 KiB pieces, 16 pieces (256 KiB) per turn: 64 collections expected, none of them by allocation.
    const counted = `
      for (let turn = 0; turn < 256; turn++) {
        for (let i = 0; i < 16; i++) noteBulkBytes(16 * 1024);
        await new Promise((r) => setImmediate(r));
      }
    `;
    const tuned = collectionsInChild('MINOR', counted, {});
    const plain = collectionsInChild('MINOR', counted, { DRAWBRIDGE_GC_TUNING: '0' });
    assert.equal(plain.applied, false);
    assert.ok(plain.count < 8, `no collections are requested without the tuning, saw ${plain.count}`);
    if (!tuned.applied) return;
    assert.ok(tuned.count >= 60 && tuned.count <= 80, `expected about one young collection per MiB (64), saw ${tuned.count}`);
  });

  it('runs its young collections on the JavaScript thread: V8\'s helper threads are not woken for them', { skip: process.platform !== 'linux' && 'reads /proc' }, () => {
    const tuned = helperWakeupsPerYoungCollection({});
    const plain = helperWakeupsPerYoungCollection({ DRAWBRIDGE_GC_TUNING: '0' });
    assert.equal(plain.applied, false);
    // V8's default wakes helpers for every young collection (observed 1.4–1.6 per collection); the tuned ones, 0.0–0.3.
    assert.ok(plain.perCollection >= 0.8, `expected V8's default to wake its helper threads for young collections, saw ${plain.perCollection} per collection`);
    if (!tuned.applied) return;
    assert.ok(tuned.perCollection <= plain.perCollection / 3, `tuned: ${tuned.perCollection} helper wake-ups per young collection, default: ${plain.perCollection}`);
  });
});
