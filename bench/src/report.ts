// The benchmark report: every benchmark's last results (bench/results/*.json)
// in one Markdown page, docs/benchmark-report.md, and one JSON file,
// bench/results/all.json: the date, the machine, both engines' versions,
// and each figure with Stevedore's value, Docker's and their ratio.
//
//   node bench/dist/report.js
import * as fs from 'node:fs';
import * as path from 'node:path';
import { markdownTable, type Row } from './stats';

interface Report {
  benchmark: string;
  date: string;
  machine: { cores: number; memoryGiB: number; kernel: string };
  engines: { stevedore: string; docker: string };
  rows: Row[];
}

const ORDER = ['api', 'containers', 'network', 'images', 'build', 'events-memory'];

function main(): void {
  const dir = path.join(__dirname, '..', 'results');
  const reports = ORDER.filter((b) => fs.existsSync(path.join(dir, `${b}.json`))).map((b) => JSON.parse(fs.readFileSync(path.join(dir, `${b}.json`), 'utf8')) as Report);
  if (!reports.length) throw new Error('no benchmark results in bench/results: run the benchmarks first');
  const lines = [
    '# Benchmark report: Stevedore and the Docker engine 20.10, side by side',
    '',
    'Written by `node bench/dist/report.js` (the last step of `./stevedore bench`)',
    'from each benchmark\'s last results; the ratio is Stevedore / Docker, and',
    '"better is" says which way is better. Notes on the figures and on what each',
    'change bought are in [benchmarks.md](benchmarks.md); the round trips each',
    'API call costs inside Stevedore in [round-trips.md](../bench/results/round-trips.md).',
    '',
  ];
  for (const r of reports) {
    lines.push(`## ${r.benchmark}`, '', `${r.date}; ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, kernel ${r.machine.kernel}; ${r.engines.stevedore} vs ${r.engines.docker}.`, '', markdownTable(r.rows), '');
  }
  fs.writeFileSync(path.join(__dirname, '..', '..', 'docs', 'benchmark-report.md'), lines.join('\n'));
  fs.writeFileSync(path.join(dir, 'all.json'), `${JSON.stringify(reports, null, 2)}\n`);
  process.stdout.write(lines.join('\n'));
}

main();
