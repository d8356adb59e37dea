/**
 * `node bench/compare.ts OLD.json NEW.json`: two runs of `pnpm bench` side by
 * side (the files it writes to bench/results/), as a markdown table on stdout.
 *
 * Absolute figures from two runs are comparable only on the same machine at
 * the same speed, which a shared VM is not even minutes apart; each run's
 * ratio to nginx *from the same run* is what carries over between runs and
 * machines, so every figure is shown both ways. The CPU cost figures depend
 * least on the machine's mood (docs/performance.md, Method).
 */
import { readFileSync } from 'node:fs';
import { LABELS, type PathName } from './lib/paths.ts';
import { med, ratio, type Results, type Target } from './lib/report.ts';

interface Run {
  date: string;
  quick: boolean;
  commit?: { sha: string; dirty: boolean };
  machine?: { cpuModel: string; kernel: string };
  node: string;
  cpus: number;
  results: Results;
  targets: Target[];
}

const FIGURES: { key: string; label: string; digits: number; lowerIsBetter: boolean }[] = [
  { key: 'rps', label: '1 KiB req/s (50 connections)', digits: 0, lowerIsBetter: false },
  { key: 'p99', label: '1 KiB p99 ms (50 connections)', digits: 2, lowerIsBetter: true },
  { key: 'rateP50', label: 'p50 ms at 1,000 req/s', digits: 3, lowerIsBetter: true },
  { key: 'rateP99', label: 'p99 ms at 1,000 req/s', digits: 3, lowerIsBetter: true },
  { key: 'down', label: 'download MiB/s', digits: 0, lowerIsBetter: false },
  { key: 'up', label: 'upload MiB/s', digits: 0, lowerIsBetter: false },
  { key: 'cpuReq', label: 'CPU µs per 1 KiB request', digits: 1, lowerIsBetter: true },
  { key: 'cpuDown', label: 'CPU ms per MiB downloaded', digits: 2, lowerIsBetter: true },
  { key: 'cpuUp', label: 'CPU ms per MiB uploaded', digits: 2, lowerIsBetter: true },
];

function load(file: string): Run {
  let run: Run;
  try {
    run = JSON.parse(readFileSync(file, 'utf8')) as Run;
  } catch (err) {
    throw new Error(`${file}: not a bench result (${(err as Error).message})`, { cause: err });
  }
  if (typeof run.results?.rounds !== 'object' || !Array.isArray(run.targets)) throw new Error(`${file}: not a bench result (no results or targets): pass a file that pnpm bench wrote to bench/results/`);
  return run;
}

const num = (x: number, digits: number): string => (Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '–');
const times = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '–');

function describe(label: string, run: Run): string {
  const commit = run.commit ? `${run.commit.sha.slice(0, 10)}${run.commit.dirty ? ' (with uncommitted changes)' : ''}` : 'commit not recorded';
  const machine = run.machine ? `${run.cpus} × ${run.machine.cpuModel}, kernel ${run.machine.kernel}` : `${run.cpus} cores`;
  return `- **${label}**: ${run.date}${run.quick ? ' (--quick)' : ''}, ${commit}, ${machine}, Node ${run.node}`;
}

/** The comparison as markdown. */
export function compare(a: Run, b: Run): string {
  const L: string[] = [describe('old', a), describe('new', b), ''];
  if (a.quick !== b.quick) L.push('One run is `--quick` and the other is not: their figures come from different workloads.', '');
  const row = (cells: string[]): number => L.push(`| ${cells.join(' | ')} |`);
  for (const f of FIGURES) {
    const paths = Object.keys(b.results.rounds[f.key] ?? {}).filter((p) => a.results.rounds[f.key]?.[p] !== undefined);
    if (paths.length === 0) continue;
    L.push(`#### ${f.label}${f.lowerIsBetter ? ' (lower is better)' : ''}`, '');
    row(['path', 'old', 'new', 'new ÷ old', 'old × nginx', 'new × nginx']);
    row(['---', '---:', '---:', '---:', '---:', '---:']);
    for (const p of paths) {
      const oldV = med(a.results, f.key, p);
      const newV = med(b.results, f.key, p);
      const vsNginx = (r: Run): string => (p === 'nginx' ? '1.00×' : times(ratio(r.results, f.key, p, 'nginx')));
      row([LABELS[p as PathName] ?? p, num(oldV, f.digits), num(newV, f.digits), times(newV / oldV), vsNginx(a), vsNginx(b)]);
    }
    L.push('');
  }
  L.push('#### Targets', '');
  row(['figure', 'target', 'old', 'new']);
  row(['---', '---', '---:', '---:']);
  const mark = (t: Target | undefined): string => (t === undefined ? '–' : `${t.value}${t.met === true ? ' (met)' : ''}`);
  const oldTargets = new Map(a.targets.map((t) => [`${t.figure}|${t.target}`, t]));
  for (const t of b.targets) row([t.figure, t.target, mark(oldTargets.get(`${t.figure}|${t.target}`)), mark(t)]);
  const met = (r: Run): number => r.targets.filter((t) => t.met === true).length;
  L.push('', `Targets met: old ${met(a)} of ${a.targets.length}, new ${met(b)} of ${b.targets.length}.`);
  return L.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const files = process.argv.slice(2);
  if (files.length !== 2) {
    process.stderr.write('usage: node bench/compare.ts OLD.json NEW.json  (files written by pnpm bench to bench/results/)\n');
    process.exit(2);
  }
  try {
    process.stdout.write(`${compare(load(files[0]!), load(files[1]!))}\n`);
  } catch (err) {
    process.stderr.write(`bench/compare: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
