import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { DrawbridgeError } from '@drawbridge/shared';
import { readFileIfExists, replaceFile, syncDir } from '@drawbridge/shared/node';
import { IdentityErrorCode } from './errors.ts';

/**
 * Layout of the state directory (mode 0700; every file 0600):
 *
 *   key.pem     the connector's private key (never leaves the host)
 *   cert.pem    its client certificate
 *   ca.pem      the relay's CA chain, trusted for the connector listener
 *   state.json  relay URL, ids, pin and whatever else the caller stores
 *
 * Each file is replaced atomically (temp file in the same directory, fsync,
 * rename, fsync the directory). Key and certificate must also change
 * together, which two renames cannot do; so both are first written complete
 * as `key.pem.next` / `cert.pem.next`, then renamed key first. If the
 * process dies between the two renames, `key.pem` is new and `cert.pem` old;
 * `readState` then takes `cert.pem.next`, which matches, and the next write
 * finishes the job. At every instant some key/certificate pair on disk matches.
 */
export const STATE_FILES = { key: 'key.pem', cert: 'cert.pem', ca: 'ca.pem', meta: 'state.json' } as const;

const NEXT = '.next';
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

/** Non-secret facts about the registration, kept in state.json. */
export interface StateMeta {
  /** URL of the relay's connector listener. */
  relayUrl: string;
  connectorId?: string;
  groupId?: string;
  name?: string;
  /** The `--ca-pin` used at registration, kept to check a CA change against. */
  caPin?: string;
  /** Other fields callers add; kept as they are. */
  [field: string]: unknown;
}

export interface StateFiles extends StateMeta {
  /** Private key PEM. */
  key: string;
  /** Client certificate PEM. */
  cert: string;
  /** CA chain PEM. */
  ca: string;
}

function fail(code: string, message: string, cause?: unknown): never {
  throw new DrawbridgeError(code, message, cause === undefined ? undefined : { cause });
}

/** Writes a complete file at `path` via a temp file; does not fsync the directory. */
function writeAtomic(path: string, data: string): Promise<void> {
  return replaceFile(path, data, FILE_MODE);
}

function pairMatches(keyPem: string | undefined, certPem: string | undefined): boolean {
  if (keyPem === undefined || certPem === undefined) return false;
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}

async function ensureDir(stateDir: string): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: DIR_MODE });
  const info = await stat(stateDir);
  if (!info.isDirectory()) fail(IdentityErrorCode.STATE_CORRUPT, `state path ${stateDir} is not a directory`);
  // An existing directory may have been created looser (or by mkdir -p); it holds a private key.
  if ((info.mode & 0o777) !== DIR_MODE) await chmod(stateDir, DIR_MODE);
}

/** Finishes a key/cert replacement cut short, then removes leftovers. */
async function recover(stateDir: string): Promise<void> {
  const keyPath = join(stateDir, STATE_FILES.key);
  const certPath = join(stateDir, STATE_FILES.cert);
  const [key, cert, nextCert] = await Promise.all([readFileIfExists(keyPath), readFileIfExists(certPath), readFileIfExists(certPath + NEXT)]);
  if (!pairMatches(key, cert) && pairMatches(key, nextCert)) {
    await rename(certPath + NEXT, certPath);
    await syncDir(stateDir);
  }
  const names = await readdir(stateDir);
  const ours = Object.values(STATE_FILES) as string[];
  await Promise.all(
    names
      .filter((n) => ours.some((f) => n === f + NEXT || n.startsWith(`${f}.tmp-`) || n.startsWith(`${f}${NEXT}.tmp-`)))
      .map((n) => unlink(join(stateDir, n)).catch(() => undefined)),
  );
}

/**
 * Writes the connector's key, certificate, CA chain and metadata, each
 * atomically with mode 0600, in a directory with mode 0700. Used at
 * registration and at every rotation; a crash at any point leaves a
 * matching key and certificate (the old pair or the new one).
 *
 * @example
 * await writeStateFiles(stateDir, { key: keyPem, cert: certPem, ca: caChainPem, relayUrl, connectorId });
 */
export async function writeStateFiles(stateDir: string, files: StateFiles): Promise<void> {
  const { key, cert, ca, ...meta } = files;
  if (!pairMatches(key, cert)) fail(IdentityErrorCode.STATE_CORRUPT, 'refusing to store a certificate that does not match the private key');
  await ensureDir(stateDir);
  await recover(stateDir);
  const path = (name: string): string => join(stateDir, name);

  // The CA first: a new certificate may be signed by a new CA, never the other way round.
  await writeAtomic(path(STATE_FILES.ca), ca);
  await writeAtomic(path(STATE_FILES.key) + NEXT, key);
  await writeAtomic(path(STATE_FILES.cert) + NEXT, cert);
  await syncDir(stateDir);
  await rename(path(STATE_FILES.key) + NEXT, path(STATE_FILES.key));
  await rename(path(STATE_FILES.cert) + NEXT, path(STATE_FILES.cert));
  await writeAtomic(path(STATE_FILES.meta), `${JSON.stringify(meta, null, 2)}\n`);
  await syncDir(stateDir);
}

/**
 * Reads what `writeStateFiles` wrote. Does not modify the directory: when a
 * replacement was cut short it returns the matching pair (see STATE_FILES).
 * Throws STATE_MISSING when the connector was never registered here and
 * STATE_CORRUPT when the files cannot be used.
 *
 * @example const { key, cert, ca, relayUrl } = await readState(stateDir);
 */
export async function readState(stateDir: string): Promise<StateFiles> {
  const path = (name: string): string => join(stateDir, name);
  let key: string | undefined;
  let cert: string | undefined;
  let nextCert: string | undefined;
  let ca: string | undefined;
  let metaText: string | undefined;
  try {
    [key, cert, nextCert, ca, metaText] = await Promise.all([
      readFileIfExists(path(STATE_FILES.key)),
      readFileIfExists(path(STATE_FILES.cert)),
      readFileIfExists(path(STATE_FILES.cert) + NEXT),
      readFileIfExists(path(STATE_FILES.ca)),
      readFileIfExists(path(STATE_FILES.meta)),
    ]);
  } catch (err) {
    fail(IdentityErrorCode.STATE_CORRUPT, `cannot read connector state in ${stateDir}`, err);
  }
  if (key === undefined && cert === undefined && metaText === undefined) {
    fail(IdentityErrorCode.STATE_MISSING, `no connector registration in ${stateDir}; run \`drawbridge-connector register\``);
  }
  if (!pairMatches(key, cert)) {
    if (!pairMatches(key, nextCert)) fail(IdentityErrorCode.STATE_CORRUPT, `${path(STATE_FILES.key)} and ${path(STATE_FILES.cert)} are missing or do not match; register again`);
    cert = nextCert;
  }
  if (ca === undefined || metaText === undefined) {
    fail(IdentityErrorCode.STATE_CORRUPT, `${path(ca === undefined ? STATE_FILES.ca : STATE_FILES.meta)} is missing; register again`);
  }
  let meta: StateMeta;
  try {
    meta = JSON.parse(metaText) as StateMeta;
    if (typeof meta !== 'object' || meta === null || typeof meta.relayUrl !== 'string') throw new TypeError('relayUrl missing');
  } catch (err) {
    fail(IdentityErrorCode.STATE_CORRUPT, `${path(STATE_FILES.meta)} is not valid connector state`, err);
  }
  return { ...meta, key: key as string, cert: cert as string, ca };
}
