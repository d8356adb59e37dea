/**
 * The per-turn share of a bulk source (shared/node/turns.ts): counted per
 * turn of the event loop, a pause once the share is used, the resume in the
 * next turn after the other events of this one, and no resume while
 * something else holds the source.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { limitTurns, turnShare, usedTurnShare } from '../src/node/turns.ts';

const KiB = 1024;
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('turn shares', () => {
  it('counts a source’s bytes per turn of the event loop', async () => {
    const share = turnShare();
    assert.equal(usedTurnShare(share, 200 * KiB, 256 * KiB), false);
    assert.equal(usedTurnShare(share, 56 * KiB, 256 * KiB), true, 'the share is used');
    await nextTurn();
    assert.equal(usedTurnShare(share, 200 * KiB, 256 * KiB), false, 'a new turn, a new share');
    assert.equal(usedTurnShare(share, 10 * 1024 * KiB, 0), false, 'a limit of 0 never pauses');
  });

  it('pauses a stream that delivered its share, lets the turn’s other events run, and resumes it in the next turn', async () => {
    const source = new PassThrough({ highWaterMark: 4 * 1024 * KiB });
    for (let i = 0; i < 16; i++) source.write(Buffer.alloc(64 * KiB));
    source.end();
    const spent = limitTurns(source, () => true, 256 * KiB);
    const log: string[] = [];
    let inTurn = 0;
    source.on('pause', () => {
      log.push(`${inTurn / KiB} KiB, pause`);
      inTurn = 0;
      // Scheduled during the pause, just before the limiter schedules the resume: it runs first, in the next turn…
      setImmediate(() => log.push('next turn'));
    });
    source.on('data', (chunk: Buffer) => {
      inTurn += chunk.length;
      spent(chunk.length);
    });
    await once(source, 'end');
    await nextTurn();
    // …so each pause is followed by the next turn before more data arrives.
    assert.deepEqual(log, ['256 KiB, pause', 'next turn', '256 KiB, pause', 'next turn', '256 KiB, pause', 'next turn', '256 KiB, pause', 'next turn']);
  });

  it('leaves a source paused when something else holds it', async () => {
    const source = new PassThrough();
    let held = true;
    const spent = limitTurns(source, () => !held, 64 * KiB);
    source.resume();
    spent(64 * KiB);
    assert.equal(source.isPaused(), true);
    await nextTurn();
    await nextTurn();
    assert.equal(source.isPaused(), true, 'not resumed while held');
    held = false;
    spent(64 * KiB);
    assert.equal(source.isPaused(), true);
    await nextTurn();
    await nextTurn();
    assert.equal(source.isPaused(), false);
    source.destroy();
  });
});
