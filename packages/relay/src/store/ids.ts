import { createHash, randomBytes } from 'node:crypto';

export type IdPrefix = 'con' | 'app' | 'grp' | 'usr' | 'tok';

const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';

/** A new id such as `app_k3j9x2m4q7r8t5vw`: a type prefix and 80 random bits in lower-case base32. */
export function newId(prefix: IdPrefix): string {
  const bytes = randomBytes(10);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += alphabet[(value >>> bits) & 31];
    }
  }
  return `${prefix}_${out}`;
}

/**
 * What the store keeps of a registration token's secret: its SHA-256 in
 * lower-case hex. Tokens carry 128+ random bits, so a plain hash suffices.
 */
export function hashToken(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}
