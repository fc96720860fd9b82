// Medians, percentiles and the report table.

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

export function markdownTable(rows: Row[]): string {
  const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 1 ? n.toFixed(2) : n.toFixed(3));
  const lines = ['| figure | Stevedore | Docker 20.10 | Stevedore/Docker | better is |', '|---|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${r.figure} | ${fmt(r.stevedore)} ${r.unit} | ${fmt(r.docker)} ${r.unit} | ${r.ratio.toFixed(2)} | ${r.better} |`);
  return lines.join('\n');
}
