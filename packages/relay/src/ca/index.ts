export { CertificateAuthority, type CreateCaOptions, type IssuedCertificate, type ServerCertOptions, type ServerCertificate, type SignCsrOptions } from './authority.ts';
export { CSR_SUBJECT_CONVENTION, MIN_RSA_BITS, parseConnectorCsr, type ParsedCsr } from './csr.ts';
export { CaErrorCode } from './errors.ts';
export { pin } from './pin.ts';
export { normalizeSerial } from './serial.ts';
export { openCaFiles, type CaFilesOptions } from './ca-files.ts';
export { clientCertInfo, verifyClientCert, type ClientCertInfo, type ClientCertInput } from './client-cert.ts';
