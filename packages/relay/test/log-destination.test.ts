/**
 * The relay's log destination: the lines of one turn reach standard output in
 * one write, in order, by the end of that turn, and none are lost when the
 * process exits in the middle of a turn.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { TurnBatchedDestination } from '../src/server/log-destination.ts';

describe('relay log destination', () => {
  it('hands the sink the lines of one turn in one write, in order, after that turn', async () => {
    const writes: string[] = [];
    const sink = { write: (s: string) => writes.push(s) > 0, flush: () => undefined, flushSync: () => undefined } as unknown as ReturnType<typeof pino.destination>;
    const dest = new TurnBatchedDestination(sink);
    try {
      const log = pino({ base: null, timestamp: false }, dest);
      log.info('one');
      log.warn({ n: 2 }, 'two');
      assert.deepEqual(writes, [], 'nothing is written during the turn');
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(writes, ['{"level":30,"msg":"one"}\n{"level":40,"n":2,"msg":"two"}\n']);
      log.info('three');
      await new Promise((r) => setImmediate(r));
      assert.equal(writes.length, 2);
      assert.equal(writes[1], '{"level":30,"msg":"three"}\n');
    } finally {
      dest.close();
    }
  });

  it('writes held lines on flushSync, into a real file', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'drawbridge-log-')), 'relay.log');
    const dest = new TurnBatchedDestination(pino.destination({ dest: file, sync: false, mkdir: true }));
    await once(dest.sink, 'ready');
    try {
      const log = pino({ base: null, timestamp: false }, dest);
      for (let i = 0; i < 3; i++) log.info({ i }, 'request');
      dest.flushSync();
      assert.deepEqual(readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { i: number }).i), [0, 1, 2]);
    } finally {
      dest.close();
    }
  });

  it('loses no line when the process exits in the same turn', () => {
    const script = `
      import { relayLogger } from ${JSON.stringify(new URL('../src/server/log-destination.ts', import.meta.url).href)};
      const log = relayLogger('info');
      for (let i = 0; i < 500; i++) log.info({ i }, 'request');
      process.exit(3);
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 3, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { i: number; name: string; msg: string });
    assert.equal(lines.length, 500);
    assert.deepEqual(lines.map((l) => l.i), Array.from({ length: 500 }, (_, i) => i));
    assert.equal(lines[0]!.name, 'drawbridge-relay');
  });
});
