/**
 * Merges the benchmarks' results (build/bench/<bench>.json) into
 * build/bench/results.json and prints them as markdown.
 *
 *   node dist/bench/report.js prog-cost=0 ringbuf-read=0 flow-read=0
 *
 * Each argument is a benchmark and its exit status; a benchmark that failed
 * or wrote nothing is listed as such. Exits non-zero if any did.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { benchDir, fmt, type BenchResult, type ResultRow, type Summary } from './common.js';

const DIGITS: Record<string, number> = { ns: 1, 'M/s': 2, ms: 1 };

function range(s: Summary, digits: number): string {
  return `${fmt(s.median, digits)} [${fmt(s.min, digits)}–${fmt(s.max, digits)}]`;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function resultCell(r: ResultRow): string {
  return `${range(r.value, DIGITS[r.unit] ?? 2)} ${r.unit === 'ns' ? 'ns/pkt above empty' : r.unit}`;
}

function baselineCell(r: ResultRow): string {
  if (!r.baseline) return '–';
  return `${r.baseline.name}: ${range(r.baseline.value, DIGITS[r.unit] ?? 2)} ${r.baseline.metric}`;
}

function main(): void {
  const dir = benchDir();
  const args = process.argv.slice(2);
  const wanted = args.length ? args.map((a) => a.split('=')) : [['prog-cost'], ['ringbuf-read'], ['flow-read']];
  const benches: BenchResult[] = [];
  const failures: string[] = [];
  for (const [name, status] of wanted) {
    const path = join(dir, `${name}.json`);
    if (status !== undefined && status !== '0') failures.push(`${name} exited with status ${status}`);
    if (!existsSync(path)) {
      failures.push(`${name} wrote no results`);
      continue;
    }
    benches.push(JSON.parse(readFileSync(path, 'utf8')) as BenchResult);
  }
  for (const b of benches) for (const c of b.checks) if (!c.ok) failures.push(`${b.bench}: check failed: ${c.what} (${c.detail})`);

  const machine = { kernel: release(), cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version };
  const all = { generatedAt: new Date().toISOString(), machine, failures, benches };
  const out = join(dir, 'results.json');
  writeFileSync(out, JSON.stringify(all, null, 2) + '\n');

  const lines: string[] = [];
  lines.push(`## Benchmark results`);
  lines.push('');
  lines.push(`Linux ${machine.kernel}, ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}. Each result is the median [min–max] over interleaved rounds; ratios are paired per round.`);
  lines.push('');
  lines.push('| Benchmark | Case | Result | Baseline (same run) | Ratio ours/baseline | Goal | Status |');
  lines.push('|---|---|---|---|---|---|---|');
  for (const b of benches) {
    for (const r of b.rows) {
      const ratio = r.ratio ? `${range(r.ratio, 2)}×` : '–';
      const status = r.goal ? (r.goal.pass ? '**PASS**' : '**MISS**') : 'info';
      lines.push(`| ${b.bench} | ${cell(r.case)} | ${cell(resultCell(r))} | ${cell(baselineCell(r))} | ${ratio} | ${cell(r.goal?.text ?? '–')} | ${status} |`);
    }
  }
  lines.push('');
  for (const b of benches) {
    lines.push(`### ${b.bench} (${fmt(b.durationMs / 1000)} s)`);
    lines.push('');
    const meanings = [...new Set(b.rows.map((r) => r.ratioMeaning).filter((m): m is string => !!m))];
    if (meanings.length) lines.push(`Ratios: ${meanings.join('; ')}.`, '');
    for (const t of b.tables) {
      lines.push(`${t.title}:`, '');
      lines.push(`| ${t.header.map(cell).join(' | ')} |`);
      lines.push(`|${t.header.map(() => '---').join('|')}|`);
      for (const row of t.rows) lines.push(`| ${row.map(cell).join(' | ')} |`);
      lines.push('');
    }
    for (const r of b.rows) if (r.note) lines.push(`- ${r.case}: ${r.note}`);
    for (const n of b.notes) lines.push(`- ${n}`);
    for (const c of b.checks) lines.push(`- check ${c.ok ? 'ok' : '**FAILED**'}: ${c.what} — ${c.detail}`);
    lines.push('');
  }
  if (failures.length) {
    lines.push('### Failures', '');
    for (const f of failures) lines.push(`- ${f}`);
    lines.push('');
  }
  lines.push(`Results as JSON: ${out}`);
  process.stdout.write(lines.join('\n') + '\n');
  if (failures.length) process.exitCode = 1;
}

main();
