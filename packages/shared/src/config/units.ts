/**
 * Human-friendly durations and sizes used by config files and CLI flags:
 * `85s`, `10m`, `1h`, `7d`, `250ms`; `16KiB`, `10MiB`, `1GiB`. A bare number is
 * milliseconds or bytes.
 */
import { DrawbridgeError } from '../protocol/errors.ts';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1000, kib: 1024, mb: 1e6, mib: 2 ** 20, gb: 1e9, gib: 2 ** 30 };

/**
 * Milliseconds from `85s`, `1h30m`, `250ms` or a number of milliseconds.
 *
 * @example parseDuration('1h') // 3600000
 */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return Math.round(value);
  } else {
    const s = value.trim().toLowerCase();
    if (/^\d+$/.test(s)) return Number(s);
    const parts = [...s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
    if (parts.length > 0 && parts.map((p) => p[0]).join('') === s) {
      return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * DURATION_UNITS[p[2]!]!, 0));
    }
  }
  throw new DrawbridgeError('ERR_INVALID_DURATION', `${JSON.stringify(value)} is not a duration: use a number of milliseconds or a value like 250ms, 85s, 10m, 1h, 7d`);
}

/** Bytes from `16KiB`, `10MB` or a number of bytes. */
export function parseSize(value: string | number): number {
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0) return value;
  } else {
    const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
    const unit = m ? (m[2] || 'b').toLowerCase() : '';
    if (m && SIZE_UNITS[unit] !== undefined) return Math.round(Number(m[1]) * SIZE_UNITS[unit]);
  }
  throw new DrawbridgeError('ERR_INVALID_SIZE', `${JSON.stringify(value)} is not a size: use a number of bytes or a value like 16KiB, 10MiB, 1GiB`);
}

/** `85s`-style rendering for messages and listings. */
export function formatDuration(ms: number): string {
  if (ms % 86_400_000 === 0 && ms > 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
