/** Normalization and checks of values before they reach the database. */
import { StoreInvalidError } from './errors.ts';

export function requireName(value: string, what: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw new StoreInvalidError(`${what} must not be empty`);
  return value;
}

/** Lower case, no trailing dot: `Hello.Example.COM.` → `hello.example.com`. */
export function normalizeHost(host: string): string {
  const h = requireName(host, 'external host').trim().toLowerCase().replace(/\.$/, '');
  if (h === '' || /[\s/]/.test(h)) throw new StoreInvalidError(`external host "${host}" is not a host name`);
  return h;
}

/** A Host header to look up: as `normalizeHost`, and without a `:port` suffix. */
export function hostForLookup(host: string): string {
  return host.trim().toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
}

/** Certificate serials compare as numbers: lower-case hex, no separators, no leading zeros. */
export function normalizeSerial(serial: string): string {
  const s = String(serial).toLowerCase().replaceAll(':', '');
  if (!/^[0-9a-f]+$/.test(s)) throw new StoreInvalidError(`certificate serial "${serial}" is not hexadecimal`);
  return s.replace(/^0+(?=.)/, '');
}

export function requireTokenHash(hash: string): string {
  if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) {
    throw new StoreInvalidError('token hash must be the lower-case hex SHA-256 of the secret (use hashToken); the secret itself is never stored');
  }
  return hash;
}

export function requireTime(value: number, what: string): number {
  if (!Number.isSafeInteger(value)) throw new StoreInvalidError(`${what} must be epoch milliseconds, got ${String(value)}`);
  return value;
}

export function requireCount(value: number, what: string, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) throw new StoreInvalidError(`${what} must be a whole number of at least ${min}`);
  return value;
}
