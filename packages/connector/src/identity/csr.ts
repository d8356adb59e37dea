import { createPrivateKey, createPublicKey, generateKeyPair, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';

const generateKeyPairAsync = promisify(generateKeyPair);
const OID_SHA256_WITH_RSA = '1.2.840.113549.1.1.11';

/** forge has this, its typings do not. */
const pki = forge.pki as typeof forge.pki & {
  getCertificationRequestInfo(csr: forge.pki.CertificateSigningRequest): forge.asn1.Asn1;
};

export interface Identity {
  /** PKCS#8 PEM. Generated here and never sent anywhere. */
  keyPem: string;
  /** PKCS#10 PEM to send to the relay with the registration token (or over mTLS to renew). */
  csrPem: string;
}

/**
 * A CSR for `privateKey`, signed with SHA-256. Its subject is empty and it
 * requests no extensions: the relay assigns the identity (CN = connector id,
 * O = group id) and refuses a CSR that proposes one. The connector does not
 * even know its id at first registration, and must not be able to pick
 * another one at renewal.
 */
export function createCsr(privateKey: KeyObject | string): string {
  const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
  const csr = pki.createCertificationRequest();
  csr.publicKey = pki.publicKeyFromPem(createPublicKey(key).export({ type: 'spki', format: 'pem' }) as string);
  csr.setSubject([]);
  csr.signatureOid = OID_SHA256_WITH_RSA;
  csr.siginfo.algorithmOid = OID_SHA256_WITH_RSA;
  const info = pki.getCertificationRequestInfo(csr);
  csr.certificationRequestInfo = info;
  // Signed by OpenSSL through Node, so the private key never goes through forge's JavaScript RSA.
  csr.signature = sign('sha256', Buffer.from(forge.asn1.toDer(info).getBytes(), 'binary'), key).toString('binary');
  return pki.certificationRequestToPem(csr);
}

/**
 * A fresh RSA key (2048 bits by default) and a CSR for it, generated off the
 * event loop's critical path so a rotation does not stall open tunnels.
 *
 * @example
 * const { keyPem, csrPem } = await generateIdentity();
 */
export async function generateIdentity(options: { keyBits?: number } = {}): Promise<Identity> {
  const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: options.keyBits ?? 2048 });
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    csrPem: createCsr(privateKey),
  };
}
