/**
 * Just enough DER to cut a signed structure into its parts byte-exactly, so a
 * signature is checked over the bytes that were signed, not over a re-encoding.
 */

export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset one past the last content byte. */
  end: number;
}

/** Reads one definite-length TLV at `offset`; throws RangeError on anything else. */
export function readTlv(buf: Uint8Array, offset: number): Tlv {
  const tag = buf[offset];
  if (tag === undefined) throw new RangeError('DER: truncated tag');
  if ((tag & 0x1f) === 0x1f) throw new RangeError('DER: multi-byte tags are not used here');
  const first = buf[offset + 1];
  if (first === undefined) throw new RangeError('DER: truncated length');
  let length: number;
  let contentStart: number;
  if (first < 0x80) {
    length = first;
    contentStart = offset + 2;
  } else {
    const count = first & 0x7f;
    if (count === 0) throw new RangeError('DER: indefinite length');
    if (count > 4) throw new RangeError('DER: length too large');
    length = 0;
    for (let i = 0; i < count; i++) {
      const b = buf[offset + 2 + i];
      if (b === undefined) throw new RangeError('DER: truncated length');
      length = length * 256 + b;
    }
    contentStart = offset + 2 + count;
  }
  const end = contentStart + length;
  if (end > buf.length) throw new RangeError('DER: content runs past the end');
  return { tag, start: offset, contentStart, end };
}

/** The children of the constructed TLV that spans all of `buf`. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let offset = parent.contentStart;
  while (offset < parent.end) {
    const child = readTlv(buf, offset);
    if (child.end > parent.end) throw new RangeError('DER: child runs past its parent');
    out.push(child);
    offset = child.end;
  }
  return out;
}

/** Splits a signed SEQUENCE { tbs, algorithm, BIT STRING signature } that must fill `der`. */
export function splitSigned(der: Uint8Array): { tbs: Uint8Array; algorithm: Uint8Array; signature: Uint8Array } {
  const outer = readTlv(der, 0);
  if (outer.tag !== 0x30 || outer.end !== der.length) throw new RangeError('DER: not a single SEQUENCE');
  const parts = children(der, outer);
  const [tbs, algorithm, signature] = parts;
  if (parts.length !== 3 || !tbs || !algorithm || !signature) throw new RangeError('DER: expected three parts');
  if (tbs.tag !== 0x30 || algorithm.tag !== 0x30 || signature.tag !== 0x03) throw new RangeError('DER: unexpected part types');
  if (der[signature.contentStart] !== 0) throw new RangeError('DER: signature has unused bits');
  return {
    tbs: der.subarray(tbs.start, tbs.end),
    algorithm: der.subarray(algorithm.start, algorithm.end),
    signature: der.subarray(signature.contentStart + 1, signature.end),
  };
}
