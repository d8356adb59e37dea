import { randomBytes } from 'node:crypto';

/**
 * A fresh certificate serial: 128 random bits, DER-encoded as a positive
 * INTEGER. Returns the hex forge writes into the certificate (with a 00 prefix
 * when the top bit is set, and no redundant leading zero bytes) and the
 * normalized form used everywhere else.
 */
export function randomSerial(): { derHex: string; serial: string } {
  for (;;) {
    let bytes = randomBytes(16);
    let start = 0;
    while (start < bytes.length && bytes[start] === 0) start++;
    if (start === bytes.length) continue;
    bytes = bytes.subarray(start);
    const hex = bytes.toString('hex');
    const derHex = (bytes[0] ?? 0) & 0x80 ? `00${hex}` : hex;
    return { derHex, serial: normalizeSerial(hex) };
  }
}

/**
 * The one spelling of a serial used in the store: lower-case hex without
 * leading zeros. Node prints serials upper-case and may keep the sign byte;
 * `openssl x509 -serial` does the same; all of them normalize to this.
 *
 * @example normalizeSerial('00A1B2') === 'a1b2'
 */
export function normalizeSerial(hex: string): string {
  const clean = hex.replace(/[:\s]/g, '').toLowerCase();
  const trimmed = clean.replace(/^0+/, '');
  return trimmed === '' ? '0' : trimmed;
}
