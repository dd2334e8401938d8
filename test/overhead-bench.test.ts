/**
 * A smoke test of the overhead benchmark's harness (bench/overhead.ts), not
 * of its figures: one short A/B pair of the churn, churn-cost and flood workloads runs,
 * writes its JSON and markdown, its flow-table checks hold (no flow missed
 * below capacity, every failed insert counted past it), and nothing it made
 * is left behind. Performance results never go in tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const BENCH = fileURLToPath(new URL('../bench/overhead.js', import.meta.url));
const OUT = fileURLToPath(new URL('../../build/bench', import.meta.url));

test('bench/overhead: one round of churn, churn-cost and flood runs, checks hold, nothing left behind', { timeout: 180_000 }, async () => {
  const tag = `smoke-${randomBytes(3).toString('hex')}`;
  const child = spawn(process.execPath, [BENCH, '--quick', '--pairs', '1', '--seconds', '1', '--pods', '1', '--workloads', 'churn,churn-cost,flood', '--tag', tag], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  try {
    assert.equal(code, 0, `the benchmark exits 0:\n${err}`);
    const json = JSON.parse(readFileSync(join(OUT, `${tag}.json`), 'utf8')) as {
      rows: { case: string; value: { median: number }; ratio?: { median: number } }[];
      checks: { what: string; ok: boolean; detail: string }[];
      runs: { variant: string; workload: string; values: Record<string, number>; detail?: { agentUs?: number }; agent?: { pid: number; warmupCpuPercent?: number } }[];
      tables: { title: string; rows: string[][] }[];
    };
    assert.ok(existsSync(join(OUT, `${tag}.md`)), 'the markdown table is written');
    assert.match(out, /\| workload \| without agent \| with agent \|/);
    assert.equal(json.runs.length, 10, 'one round: three A/B pairs of churn (its runs are short), one of churn-cost, one of flood');
    for (const row of json.rows.filter((r) => r.ratio)) assert.ok(Number.isFinite(row.ratio!.median) && row.ratio!.median > 0, `${row.case}: a ratio`);
    assert.ok(json.checks.length >= 6, 'the churn, churn-cost and flood checks ran');
    assert.ok(json.checks.some((c) => /kept its pace/.test(c.what)), "churn-cost checked its generator's pace");
    // churn-cost: CPU per connection in both runs, the agent's part of it in B, and the table that splits it.
    for (const r of json.runs.filter((x) => x.workload === 'churn-cost')) assert.ok(r.values.cpuUs! > 0, `${r.variant}: CPU per connection`);
    const agentUs = json.runs.find((x) => x.workload === 'churn-cost' && x.agent)?.detail?.agentUs;
    assert.ok(agentUs !== undefined && agentUs > 0, `the agent's µs per connection: ${agentUs}`);
    const split = json.tables.find((t) => t.title.startsWith("Where churn-cost's added CPU goes"));
    assert.equal(split?.rows[0]?.length, 5, 'the split of churn-cost');
    // The churn runs were warmed up (the agent's CPU over it is kept apart); the flood has no warm-up.
    for (const r of json.runs.filter((x) => x.agent)) assert.equal(r.agent!.warmupCpuPercent !== undefined, r.workload === 'churn', `${r.workload}: warm-up CPU recorded`);
    for (const c of json.checks) assert.ok(c.ok, `${c.what}: ${c.detail}`);
    // Nothing left: the agents, the namespaces and links of this node.
    const id = /node ([0-9a-f]{6}):/.exec(err)?.[1];
    assert.ok(id, 'the node id is logged');
    assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), new RegExp(`knp-${id}-`));
    assert.doesNotMatch(execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }), new RegExp(`k[bv]${id}`));
    for (const r of json.runs) if (r.agent) assert.ok(!existsSync(`/proc/${r.agent.pid}`) || !readFileSync(`/proc/${r.agent.pid}/cmdline`, 'utf8').includes('agent'), 'the agent process is gone');
  } finally {
    for (const f of [`${tag}.json`, `${tag}.md`, `${tag}-agent.log`]) rmSync(join(OUT, f), { force: true });
  }
});
