import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { DrawbridgeError } from '@drawbridge/shared';
import { children, readTlv, splitSigned } from './der.ts';
import { CaErrorCode } from './errors.ts';

/**
 * What a connector's CSR must look like: an RSA key of at least 2048 bits, a
 * valid self-signature (SHA-256/384/512 with PKCS#1 v1.5), an EMPTY subject and
 * no subjectAltName. The relay alone assigns identity (CN = connector id,
 * O = group id), so a CSR that proposes any name is refused rather than
 * silently rewritten: a client asking for a name it will not get is a bug or
 * an attack, and either way the operator should hear about it.
 */
export const CSR_SUBJECT_CONVENTION = 'empty subject, no subjectAltName';

export const MIN_RSA_BITS = 2048;

const SIGNATURE_HASHES: Record<string, string> = {
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
};

const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';

const PEM_BLOCK = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1CERTIFICATE REQUEST-----/g;

export interface ParsedCsr {
  /** The requester's public key, checked to be RSA ≥ 2048 bits. */
  publicKey: KeyObject;
  /** Same key for forge, to place in the certificate. */
  forgePublicKey: forge.pki.rsa.PublicKey;
}

function fail(code: string, message: string, cause?: unknown): never {
  throw new DrawbridgeError(code, message, cause === undefined ? undefined : { cause });
}

function decodePem(csrPem: string): Buffer {
  if (typeof csrPem !== 'string') fail(CaErrorCode.CSR_MALFORMED, 'CSR must be a PEM string');
  const blocks = [...csrPem.matchAll(PEM_BLOCK)];
  const [block] = blocks;
  if (!block || blocks.length !== 1) {
    fail(CaErrorCode.CSR_MALFORMED, 'CSR is not exactly one PEM "CERTIFICATE REQUEST" block');
  }
  const body = (block[2] ?? '').replace(/[\r\n]/g, '');
  if (body.length === 0 || body.length % 4 !== 0 || /=[^=]/.test(body)) {
    fail(CaErrorCode.CSR_MALFORMED, 'CSR PEM body is not valid base64');
  }
  return Buffer.from(body, 'base64');
}

function subjectText(csr: forge.pki.CertificateSigningRequest): string {
  return csr.subject.attributes.map((a) => `${a.shortName ?? a.name ?? a.type ?? '?'}=${String(a.value)}`).join(', ');
}

/**
 * Parses and checks a connector's CSR. Every refusal is a DrawbridgeError with
 * its own code, in this order: CSR_MALFORMED, CSR_WEAK_KEY, CSR_BAD_SIGNATURE,
 * CSR_SUBJECT (proof of possession is checked before policy).
 *
 * @example const { forgePublicKey } = parseConnectorCsr(pemFromRequestBody);
 */
export function parseConnectorCsr(csrPem: string): ParsedCsr {
  const der = decodePem(csrPem);

  let parts: ReturnType<typeof splitSigned>;
  let spkiDer: Uint8Array;
  let csrAsn1: forge.asn1.Asn1;
  try {
    parts = splitSigned(der);
    const cri = readTlv(parts.tbs, 0);
    const fields = children(parts.tbs, cri);
    const spki = fields[2];
    if (fields.length < 3 || fields.length > 4 || !spki || spki.tag !== 0x30) throw new RangeError('CSR info has the wrong shape');
    spkiDer = parts.tbs.subarray(spki.start, spki.end);
    csrAsn1 = forge.asn1.fromDer(der.toString('binary'));
  } catch (err) {
    fail(CaErrorCode.CSR_MALFORMED, 'CSR is not a valid DER PKCS#10 certification request', err);
  }

  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(spkiDer), format: 'der', type: 'spki' });
  } catch (err) {
    fail(CaErrorCode.CSR_MALFORMED, 'CSR public key cannot be read', err);
  }
  const details = publicKey.asymmetricKeyDetails ?? {};
  if (publicKey.asymmetricKeyType !== 'rsa') {
    fail(CaErrorCode.CSR_WEAK_KEY, `CSR key is ${publicKey.asymmetricKeyType ?? 'of an unknown type'}; connectors must use an RSA key of at least ${MIN_RSA_BITS} bits`);
  }
  const bits = details.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) {
    fail(CaErrorCode.CSR_WEAK_KEY, `CSR key is RSA ${bits} bits; connectors must use at least ${MIN_RSA_BITS} bits`);
  }
  const exponent = details.publicExponent ?? 0n;
  if (exponent < 65537n || exponent % 2n === 0n) {
    fail(CaErrorCode.CSR_WEAK_KEY, `CSR key has public exponent ${exponent}; use 65537`);
  }

  const algorithmOid = forge.asn1.derToOid(csrAsn1Value(csrAsn1, 1, 0));
  const hash = SIGNATURE_HASHES[algorithmOid];
  if (!hash) {
    fail(CaErrorCode.CSR_BAD_SIGNATURE, `CSR is signed with algorithm ${algorithmOid}; sign it with SHA-256 and RSA`);
  }
  let valid: boolean;
  try {
    valid = verify(hash, parts.tbs, { key: publicKey, padding: constants.RSA_PKCS1_PADDING }, parts.signature);
  } catch {
    valid = false;
  }
  if (!valid) {
    fail(CaErrorCode.CSR_BAD_SIGNATURE, 'CSR signature does not verify with its own key; the request was altered or corrupted');
  }

  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = forge.pki.certificationRequestFromAsn1(csrAsn1, false);
  } catch (err) {
    fail(CaErrorCode.CSR_MALFORMED, 'CSR is not a valid PKCS#10 certification request', err);
  }
  if (csr.subject.attributes.length > 0) {
    fail(CaErrorCode.CSR_SUBJECT, `CSR asks for subject "${subjectText(csr)}"; the relay assigns the connector's name, so the CSR subject must be empty`);
  }
  for (const attribute of csr.attributes) {
    if (attribute.type !== OID_EXTENSION_REQUEST) continue;
    const extensions = (attribute.extensions ?? []) as Array<{ id?: string }>;
    if (extensions.some((e) => e.id === OID_SUBJECT_ALT_NAME)) {
      fail(CaErrorCode.CSR_SUBJECT, 'CSR asks for subjectAltName entries; the relay assigns the connector\'s name, so the CSR must not request any');
    }
  }
  if (!csr.publicKey) fail(CaErrorCode.CSR_MALFORMED, 'CSR public key cannot be read');
  return { publicKey, forgePublicKey: csr.publicKey as forge.pki.rsa.PublicKey };
}

/** The bytes of child[i][j] of a forge ASN.1 node; throws CSR_MALFORMED if absent. */
function csrAsn1Value(node: forge.asn1.Asn1, i: number, j: number): string {
  const level1 = Array.isArray(node.value) ? node.value[i] : undefined;
  const level2 = level1 && Array.isArray(level1.value) ? level1.value[j] : undefined;
  if (!level2 || typeof level2.value !== 'string') fail(CaErrorCode.CSR_MALFORMED, 'CSR signature algorithm is missing');
  return level2.value;
}
