// Medians, percentiles, the report table, the reports' files, and the
// benchmarks' command-line options.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export interface Summary {
  median: number;
  p95: number;
  p99: number;
  n: number;
}

export function summarize(samples: number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  return { median: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), n: s.length };
}

export interface Row {
  figure: string;
  unit: string;
  stevedore: number;
  docker: number;
  /** Stevedore / Docker. */
  ratio: number;
  better: 'lower' | 'higher';
  detail?: Record<string, unknown>;
}

export function row(figure: string, unit: string, stevedore: number, docker: number, better: 'lower' | 'higher', detail?: Record<string, unknown>): Row {
  return { figure, unit, stevedore, docker, ratio: stevedore / docker, better, detail };
}

/** The two columns compared: Stevedore and Docker unless a benchmark compares others (the cluster with one host). */
export function markdownTable(rows: Row[], columns: [string, string] = ['Stevedore', 'Docker 20.10']): string {
  const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 1 ? n.toFixed(2) : n.toFixed(3));
  const lines = [`| figure | ${columns[0]} | ${columns[1]} | ${columns[0]}/${columns[1]} | better is |`, '|---|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${r.figure} | ${fmt(r.stevedore)} ${r.unit} | ${fmt(r.docker)} ${r.unit} | ${r.ratio.toFixed(2)} | ${r.better} |`);
  return lines.join('\n');
}

/** A numeric command-line option (`--runs 20`), or its default. */
export function option(name: string, fallback: number): number {
  const args = process.argv.slice(2);
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

/**
 * Writes a benchmark's report to bench/results/<benchmark>.json and .md (and
 * prints the Markdown): the date, the machine, both engines' versions, what
 * was measured (`about`), the figures, and `extra` (settings, samples) in the JSON.
 */
export function writeReport(benchmark: string, title: string, engines: { stevedore: string; docker: string }, about: string, rows: Row[], extra: Record<string, unknown> = {}, columns?: [string, string]): void {
  const report = {
    benchmark,
    date: new Date().toISOString(),
    machine: { cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release() },
    engines,
    ...extra,
    rows,
  };
  const dir = path.join(__dirname, '..', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${benchmark}.json`), `${JSON.stringify(report, null, 2)}\n`);
  const { machine } = report;
  const md = `# ${title}\n\n${report.date}, ${machine.cores} cores, ${machine.memoryGiB} GiB, kernel ${machine.kernel}; ${engines.stevedore} vs ${engines.docker}. ${about}\n\n${markdownTable(rows, columns)}\n`;
  fs.writeFileSync(path.join(dir, `${benchmark}.md`), md);
  process.stdout.write(md);
}
