import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DrawbridgeError } from '@drawbridge/shared';
import { createFileExclusive, readFileIfExists } from '@drawbridge/shared/node';
import { CertificateAuthority, type CreateCaOptions } from './authority.ts';
import { CaErrorCode } from './errors.ts';

export interface CaFilesOptions extends CreateCaOptions {
  certPath: string;
  keyPath: string;
  /** Create a CA when neither file exists (first start). False for an operator-supplied CA. */
  create: boolean;
}

/**
 * Writes `data` to a new file at `path` with `mode`, durably and without
 * ever exposing a partial file: temp file in the same directory, fsync, then
 * link (not rename, so an existing file is never replaced), then fsync the directory.
 */
async function writeNewFile(path: string, data: string, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await createFileExclusive(path, data, mode);
}

/**
 * Loads the CA from `certPath`/`keyPath`, or on first start (`create`)
 * makes one and writes the key with mode 0600. A lone cert or lone key is
 * refused (CA_INVALID) rather than replaced: silently minting a new CA
 * would orphan every registered connector.
 *
 * @example const ca = await openCaFiles({ certPath: `${dataDir}/ca.crt`, keyPath: `${dataDir}/ca.key`, create: true });
 */
export async function openCaFiles(options: CaFilesOptions): Promise<CertificateAuthority> {
  const [certPem, keyPem] = await Promise.all([readFileIfExists(options.certPath), readFileIfExists(options.keyPath)]);
  if (certPem !== undefined && keyPem !== undefined) return CertificateAuthority.load(certPem, keyPem, options.now);
  if (certPem !== undefined || keyPem !== undefined) {
    const missing = certPem === undefined ? options.certPath : options.keyPath;
    throw new DrawbridgeError(CaErrorCode.CA_INVALID, `CA file ${missing} is missing while its pair exists; restore it from backup (if the relay stopped during its very first start, remove the other file)`);
  }
  if (!options.create) {
    throw new DrawbridgeError(CaErrorCode.CA_INVALID, `CA files ${options.certPath} and ${options.keyPath} do not exist`);
  }
  const ca = CertificateAuthority.create(options);
  // Key first: a crash in between leaves a lone key, which is refused loudly above, never a certificate without its key.
  await writeNewFile(options.keyPath, ca.keyPem, 0o600);
  await writeNewFile(options.certPath, ca.chainPem, 0o644);
  return ca;
}
