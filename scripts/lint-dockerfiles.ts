/**
 * Lints the project's Dockerfiles without a Docker engine (`pnpm lint:deploy`):
 *
 *   1. dockerfile-utils (the validator behind VS Code's Docker support): syntax,
 *      unknown instructions and flags, malformed JSON forms, duplicate CMD/ENTRYPOINT.
 *   2. The project's rules, the ones issue 5 asks of the images: the official Node 24
 *      image, a frozen production install, a non-root user, a health check, no ADD.
 *   3. Every file a COPY takes from the build context exists and is not excluded by
 *      .dockerignore, so a build would not fail on a missing path.
 *
 * Exit 0 when clean; 1 with one `file:line: problem` per finding.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { validate } from 'dockerfile-utils';

const ROOT = join(import.meta.dirname, '..');
const NODE_IMAGE = 'node:24-bookworm-slim';

interface Instruction {
  line: number;
  keyword: string;
  args: string;
}

/** Joins continuation lines and drops comments; keeps the line each instruction starts on. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      i++;
      const next = lines[i]!;
      if (/^\s*#/.test(next)) continue;
      line = line.replace(/\\\s*$/, ' ') + next;
    }
    const m = /^\s*(\S+)\s*(.*)$/.exec(line);
    if (m) out.push({ line: start + 1, keyword: m[1]!.toUpperCase(), args: m[2]!.trim() });
  }
  return out;
}

/** Stands for `**` while the other segments become regular expressions. */
const GLOBSTAR = '<globstar>';

/** A .dockerignore matcher: Go filepath.Match per segment, `**` across segments, `!` re-includes, last match wins. */
export function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = (negate ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, '');
      const source = pattern
        .split('/')
        .map((seg) => (seg === '**' ? GLOBSTAR : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')))
        .join('/')
        .replaceAll(`${GLOBSTAR}/`, '(?:.*/)?')
        .replaceAll(`/${GLOBSTAR}`, '(?:/.*)?')
        .replaceAll(GLOBSTAR, '.*');
      return { negate, re: new RegExp(`^${source}$`) };
    });
  return (path) => {
    // A path is excluded when it, or a directory above it, matches (Docker's rule).
    const parts = path.split('/');
    let excluded = false;
    for (const rule of rules) {
      for (let n = 1; n <= parts.length; n++) {
        if (rule.re.test(parts.slice(0, n).join('/'))) {
          excluded = !rule.negate;
          break;
        }
      }
    }
    return excluded;
  };
}

function filesUnder(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path).flatMap((name) => filesUnder(join(path, name)));
}

/** Splits `COPY [--flag=x]... SRC... DEST` (shell or JSON form) into flags and paths. */
function copyArgs(args: string): { flags: string[]; paths: string[] } {
  const words = args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const paths = words.filter((w) => !w.startsWith('--'));
  return { flags, paths };
}

export function lintDockerfile(file: string, text: string, ignored: (path: string) => boolean): string[] {
  const problems: string[] = [];
  const at = (line: number, message: string): void => void problems.push(`${relative(ROOT, file)}:${line}: ${message}`);

  for (const d of validate(text)) at(d.range.start.line + 1, `dockerfile-utils: ${typeof d.message === 'string' ? d.message : d.message.value}`);

  const all = parseDockerfile(text);
  const args = new Map<string, string>();
  for (const i of all) {
    const m = /^(\w+)=(\S+)$/.exec(i.args);
    if (i.keyword === 'ARG' && m) args.set(m[1]!, m[2]!);
  }
  const froms = all.filter((i) => i.keyword === 'FROM');
  if (froms.length === 0) at(1, 'no FROM');
  const stages = new Set<string>();
  for (const f of froms) {
    const [ref = '', as, name] = f.args.split(/\s+/);
    const image = ref.replace(/^\$\{?(\w+)\}?$/, (_, arg: string) => args.get(arg) ?? `$${arg}`);
    if (image !== NODE_IMAGE && !stages.has(image)) at(f.line, `FROM ${image}: build on the official ${NODE_IMAGE} image`);
    if (as?.toUpperCase() === 'AS' && name) stages.add(name);
  }
  const lastFrom = froms.at(-1)?.line ?? 0;
  const final = all.filter((i) => i.line >= lastFrom);
  const user = final.filter((i) => i.keyword === 'USER').at(-1);
  if (!user) at(lastFrom, 'the final stage sets no USER: the container would run as root');
  else if (/^(root|0)(:|$)/.test(user.args)) at(user.line, `USER ${user.args}: run as a non-root user`);
  const start = final.find((i) => i.keyword === 'ENTRYPOINT' || i.keyword === 'CMD');
  if (user && start && user.line > start.line) at(user.line, 'USER comes after ENTRYPOINT/CMD');
  if (!final.some((i) => i.keyword === 'HEALTHCHECK' && !/^NONE$/i.test(i.args))) at(lastFrom, 'the final stage has no HEALTHCHECK');
  for (const i of all) {
    if (i.keyword === 'ADD') at(i.line, 'use COPY, not ADD (no remote URLs, no implicit unpacking)');
    if (i.keyword === 'RUN' && /\bpnpm\s+install\b/.test(i.args) && !(/--frozen-lockfile/.test(i.args) && /--prod\b/.test(i.args))) {
      at(i.line, 'pnpm install must use --frozen-lockfile --prod: images install exactly what the lockfile says, without dev dependencies');
    }
    if (i.keyword === 'RUN' && /\b(curl|wget)\b[^|]*\|\s*(ba)?sh\b/.test(i.args)) at(i.line, 'do not pipe a download into a shell');
    if (i.keyword === 'COPY') {
      const { flags, paths } = copyArgs(i.args);
      if (flags.some((f) => f.startsWith('--from='))) continue;
      for (const src of paths.slice(0, -1)) {
        const path = join(ROOT, src);
        if (!existsSync(path)) {
          at(i.line, `COPY ${src}: no such file in the build context (the repository root)`);
          continue;
        }
        const excluded = filesUnder(path).map((p) => relative(ROOT, p)).filter(ignored);
        if (excluded.length > 0) at(i.line, `COPY ${src}: .dockerignore excludes ${excluded.slice(0, 3).join(', ')}${excluded.length > 3 ? ', …' : ''}`);
      }
    }
  }
  return problems;
}

function findDockerfiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name === 'Dockerfile' || entry.name.endsWith('.Dockerfile')) out.push(path);
    }
  };
  walk(ROOT);
  return out.sort();
}

if (import.meta.main) {
  const ignoreFile = join(ROOT, '.dockerignore');
  const ignored = existsSync(ignoreFile) ? dockerignore(readFileSync(ignoreFile, 'utf8')) : () => false;
  const files = findDockerfiles();
  const problems = files.flatMap((f) => lintDockerfile(f, readFileSync(f, 'utf8'), ignored));
  for (const p of problems) process.stderr.write(`${p}\n`);
  if (files.length === 0) process.stderr.write('no Dockerfile found\n');
  process.stdout.write(`lint-dockerfiles: ${files.length} Dockerfile(s), ${problems.length} problem(s)\n`);
  process.exit(problems.length > 0 || files.length === 0 ? 1 : 0);
}
