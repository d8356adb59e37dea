export { createCsr, generateIdentity, type Identity } from './csr.ts';
