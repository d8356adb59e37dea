/**
 * The admin credential: a random bearer token in `<dataDir>/admin.token`
 * (mode 0600). The relay creates it on first start; the CLI reads it, so only
 * users who may read the data dir may change the relay.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DrawbridgeError } from '@drawbridge/shared';
import { createFileExclusive } from '@drawbridge/shared/node';

export const ADMIN_TOKEN_FILE = 'admin.token';

export const CredentialErrorCode = {
  /** The file does not exist: the relay has never started on this data dir. */
  missing: 'ERR_ADMIN_CREDENTIAL_MISSING',
  /** The file exists but this user may not read it. */
  unreadable: 'ERR_ADMIN_CREDENTIAL_UNREADABLE',
  /** The file is empty or holds something that is not a token. */
  invalid: 'ERR_ADMIN_CREDENTIAL_INVALID',
} as const;

export class CredentialError extends DrawbridgeError {}

/** Path of the credential file in a data dir. */
export function adminCredentialPath(dataDir: string): string {
  return join(dataDir, ADMIN_TOKEN_FILE);
}

/**
 * Returns the admin credential of the data dir, creating it on first start.
 * Creation is atomic and never replaces an existing file: the token is written
 * to a temporary file and hard-linked into place, so two relays starting on one
 * data dir agree on a single token, and a crash leaves no half-written file.
 *
 * @example
 * const adminToken = await ensureAdminCredential(config.dataDir);
 */
export async function ensureAdminCredential(dataDir: string): Promise<string> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = adminCredentialPath(dataDir);
  try {
    return await readExisting(path);
  } catch (err) {
    if (!(err instanceof CredentialError && err.code === CredentialErrorCode.missing)) throw err;
  }
  const token = randomBytes(32).toString('base64url');
  try {
    await createFileExclusive(path, `${token}\n`, 0o600);
    return token;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readExisting(path);
    throw err;
  }
}

/**
 * Reads the admin credential of a data dir (what the CLI sends as
 * `Authorization: Bearer …`). Throws `ERR_ADMIN_CREDENTIAL_*` with a message
 * that says what to do.
 */
export async function readAdminCredential(dataDir: string): Promise<string> {
  return readExisting(adminCredentialPath(dataDir));
}

async function readExisting(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CredentialError(
        CredentialErrorCode.missing,
        `no admin credential at ${path}: start the relay once with \`drawbridge-relay serve\` on this data dir, pass the relay's --data-dir, or set DRAWBRIDGE_ADMIN_TOKEN`,
      );
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new CredentialError(CredentialErrorCode.unreadable, `cannot read the admin credential ${path}: run as the user the relay runs as, or set DRAWBRIDGE_ADMIN_TOKEN`);
    }
    throw err;
  }
  const token = text.trim();
  if (!/^[A-Za-z0-9_-]{16,512}$/.test(token)) {
    throw new CredentialError(CredentialErrorCode.invalid, `the admin credential ${path} is not a token; delete it and restart the relay to create a new one`);
  }
  // A file copied in by hand may be readable by others; the credential grants full control.
  const mode = (await stat(path)).mode & 0o777;
  if ((mode & 0o077) !== 0) await chmod(path, 0o600).catch(() => undefined);
  return token;
}

/**
 * Compares a presented token with the credential in constant time. Both sides
 * are hashed first, so the comparison takes the same time for any length and
 * a matching prefix gains nothing.
 */
export function credentialMatches(presented: string, credential: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(credential, 'utf8').digest();
  return timingSafeEqual(a, b) && credential.length > 0;
}
