/**
 * Byte helpers for the codec. Strings on the wire are either Latin-1 (HTTP
 * header names and values, request targets, reason phrases: HTTP carries bytes
 * and Node hands them over as Latin-1 strings, so this keeps them byte-exact) or
 * UTF-8 (human-readable messages).
 */
const utf8Encoder = new TextEncoder();

/** 1 for the RFC 9110 `tchar` bytes allowed in a field name or method, 0 otherwise. */
export const TOKEN_BYTES = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN_BYTES[c.charCodeAt(0)] = 1;

/** True when code unit `c` may not appear in a field value, reason or id: CR, LF or NUL. */
export function isForbiddenInValue(c: number): boolean {
  return c === 0x0a || c === 0x0d || c === 0x00;
}

/** True when code unit `c` may not appear in a request target: controls, space and DEL. */
export function isForbiddenInTarget(c: number): boolean {
  return c <= 0x20 || c === 0x7f;
}
const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

/** Number of bytes `s` takes as Latin-1; -1 if it has a code unit above 0xff. */
export function latin1Length(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return -1;
  return s.length;
}

/**
 * From this length on, a field value is checked with the engine's string
 * search and copied by its native encoder rather than one character at a time
 * in JavaScript: 17 times faster for the 700-character signed assertion every
 * pre-authenticated request carries; slower below about 32 characters.
 */
export const LONG_VALUE = 32;

/** Whether `s` holds CR, LF or NUL, the characters no field value may hold. */
export function hasForbiddenInValue(s: string): boolean {
  return s.indexOf('\n') >= 0 || s.indexOf('\r') >= 0 || s.indexOf('\0') >= 0;
}

/**
 * Writes `s` at `offset` with the native encoder when it is ASCII without CR,
 * LF or NUL (ASCII is the same bytes in Latin-1 and UTF-8) and returns true;
 * returns false otherwise, and the caller writes (or refuses) it character by
 * character, overwriting whatever this left there.
 */
export function writeAsciiValue(buf: Uint8Array, offset: number, s: string): boolean {
  if (hasForbiddenInValue(s)) return false;
  // Any character above 0x7f takes two or more UTF-8 bytes, so it cannot all
  // fit in s.length bytes: reading the whole string means it was all ASCII.
  return utf8Encoder.encodeInto(s, buf.subarray(offset, offset + s.length)).read === s.length;
}

export function writeLatin1(buf: Uint8Array, offset: number, s: string): number {
  for (let i = 0; i < s.length; i++) buf[offset + i] = s.charCodeAt(i);
  return offset + s.length;
}

/**
 * Node's native Latin-1 slice, when the runtime has it: header names and
 * values are decoded for every request, and the native call is several times
 * faster than building the string in JavaScript. Feature-detected, so the
 * codec still runs anywhere.
 */
const nativeLatin1 = (globalThis as { Buffer?: { prototype: { latin1Slice?: (start: number, end: number) => string } } }).Buffer?.prototype.latin1Slice;

export function readLatin1(buf: Uint8Array, start: number, end: number): string {
  if (nativeLatin1 !== undefined) return nativeLatin1.call(buf, start, end);
  // fromCharCode over chunks: fast for the short strings of HTTP heads, and
  // chunking keeps the argument count far below engine limits.
  let out = '';
  for (let i = start; i < end; i += 4096) {
    out += String.fromCharCode.apply(null, buf.subarray(i, Math.min(end, i + 4096)) as unknown as number[]);
  }
  return out;
}

export function utf8(s: string): Uint8Array {
  return utf8Encoder.encode(s);
}

export function readUtf8(buf: Uint8Array, start: number, end: number): string {
  return utf8Decoder.decode(buf.subarray(start, end));
}
