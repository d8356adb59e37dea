import { noteBulkBytes } from './gc.ts';

/**
 * A bound on how much of one bulk source a process handles in one turn of
 * the event loop. libuv reads a readable socket up to 32 times per turn, so a
 * transfer whose window has grown to megabytes can be decrypted, framed and
 * written in one uninterrupted stretch while every other socket waits its
 * turn; on a small host that is what other users' requests wait behind
 * during a download. A source that has delivered its share of the current
 * turn is paused by its owner and resumed with `nextTurn`, after the other
 * sockets' events of the turn.
 */
export const DEFAULT_BYTES_PER_TURN = 256 * 1024;

let turn = 0;
let counting = false;
const advance = (): void => {
  turn++;
  counting = false;
};

/** Which turn a source's bytes were last counted in, and how many. */
export interface TurnShare {
  turn: number;
  bytes: number;
}

export function turnShare(): TurnShare {
  return { turn: -1, bytes: 0 };
}

/**
 * Counts `bytes` a source delivered; true once it has delivered `limit` in
 * the current turn, when its owner should pause it and resume it in
 * `nextTurn`. A `limit` of 0 never asks for a pause. Every bulk source
 * passes here, so the bytes are also counted for the young-generation
 * collections of `noteBulkBytes` (gc.ts).
 */
export function usedTurnShare(share: TurnShare, bytes: number, limit = DEFAULT_BYTES_PER_TURN): boolean {
  noteBulkBytes(bytes);
  if (limit === 0) return false;
  if (share.turn !== turn) {
    share.turn = turn;
    share.bytes = 0;
  }
  share.bytes += bytes;
  // Turns are counted only while some source moves more than a quarter
  // share: small requests, whose sources deliver a few KiB a turn, schedule
  // nothing per turn. Until then a slow source's count runs on over turns, so
  // it may carry up to a quarter share of old bytes into the turn in which
  // counting starts, and pause after three quarters of a fresh share.
  if (share.bytes >= limit / 4 && !counting) {
    counting = true;
    setImmediate(advance);
  }
  return share.bytes >= limit;
}

/** Runs `task` once the other events of this turn have been handled. */
export function nextTurn(task: () => void): void {
  setImmediate(task);
}

/**
 * For a source with pause and resume (a WebSocket, a request): returns the
 * function to call with each chunk it delivers, which pauses it until the
 * next turn once it has used its share of this one. `canResume` says whether
 * it may go on then (false when something else holds it paused, such as a
 * full tunnel window, which resumes it itself).
 */
export function limitTurns(source: { pause(): unknown; resume(): unknown }, canResume: () => boolean = () => true, limit = DEFAULT_BYTES_PER_TURN): (bytes: number) => void {
  const share = turnShare();
  let waiting = false;
  const resume = (): void => {
    waiting = false;
    if (canResume()) source.resume();
  };
  return (bytes) => {
    if (waiting || !usedTurnShare(share, bytes, limit)) return;
    waiting = true;
    source.pause();
    nextTurn(resume);
  };
}
