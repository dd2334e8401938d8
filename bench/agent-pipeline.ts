/**
 * What the agent's flow pipeline costs: one cycle (evict idle flows, read and
 * decode the table, account, merge conversations) over a kernel table of
 * 10 k, 100 k and 1 M flows, with the process's CPU time and peak RSS. Each
 * size runs in its own process so the RSS figures don't carry over. The
 * baseline, in the same process and round: a raw BpfMap.dump() of the same
 * table. Goals (issue 3): <= 150 MB RSS at 100 k flows; a cycle over 1 M
 * flows in <= 1 s.
 *
 * Each size runs twice, with the two ways the monitor can read the table
 * (NetworkMonitorOptions.flowRead): 'iterator' (the default where the kernel
 * has BTF: only flows that changed are written out, summed in the kernel)
 * and 'batch' (every flow, every CPU's copy). The table does not change
 * between cycles, as a large table of idle flows does not; the first cycle,
 * a full read, is reported apart.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NetworkMonitor } from '../src/monitor/network-monitor.js';
import { startFlowPipeline } from '../src/agent/flow-pipeline.js';
import { keepLargeBuffersOnMmap } from '../src/agent/allocator.js';
import { envInt, fillFlowTable, fmt, fmtSummary, log, makeFlowTable, nowNs, pairedRatios, summarize, newResult, writeResult } from './common.js';
import { possibleCpus } from '../src/loader/map.js';

const SIZES = (process.env['BENCH_AGENT_FLOWS'] ?? '10000,100000,1000000').split(',').map(Number);
const ROUNDS = envInt('BENCH_ROUNDS', 5);

interface ChildResult {
  flows: number;
  mode: 'iterator' | 'batch';
  /** The first cycle: the accounter's state is created, and an iterator read is a full one. */
  firstCycleMs: number;
  cycleMs: number[];
  dumpMs: number[];
  cpuMsPerCycle: number[];
  maxRssMb: number;
  /** RSS after the cycles and a full GC: what the agent holds between cycles. */
  steadyRssMb: number;
  recordsOk: boolean;
}

async function child(flows: number, mode: 'iterator' | 'batch'): Promise<void> {
  keepLargeBuffersOnMmap(); // as Agent.start() does
  const mon = await NetworkMonitor.create({ flowTableCapacity: Math.ceil(flows * 1.25), packetSampleRate: 0, flowRead: mode });
  try {
    const map = mon.map('knp_flows');
    fillFlowTable(map, makeFlowTable(flows, 1, map.valueStride, possibleCpus()));
    const pipeline = startFlowPipeline(mon, { intervalMs: 3_600_000, idleTimeoutMs: 3_600_000, activeTimeoutMs: 3_600_000 }, () => {});
    const out: ChildResult = { flows, mode, firstCycleMs: 0, cycleMs: [], dumpMs: [], cpuMsPerCycle: [], maxRssMb: 0, steadyRssMb: 0, recordsOk: true };
    try {
      if (mon.flowRead.method !== mode) throw new Error(`asked for ${mode} reads, got ${mon.flowRead.method}: ${mon.flowRead.detail}`);
      const t0 = nowNs();
      const first = await pipeline.runOnce(); // warm up: first read creates the accounter's state
      out.firstCycleMs = (nowNs() - t0) / 1e6;
      if (first.snapshot.count !== flows) out.recordsOk = false;
      for (let r = 0; r < ROUNDS; r++) {
        const t0 = nowNs();
        // fresh: the agent holds no cached read buffers, so neither does the baseline.
        map.dump(8192, { fresh: true });
        out.dumpMs.push((nowNs() - t0) / 1e6);
        const cpu0 = process.cpuUsage();
        const t1 = nowNs();
        const cycle = await pipeline.runOnce();
        out.cycleMs.push((nowNs() - t1) / 1e6);
        const cpu = process.cpuUsage(cpu0);
        out.cpuMsPerCycle.push((cpu.user + cpu.system) / 1000);
        if (cycle.snapshot.count !== flows) out.recordsOk = false;
      }
    } finally {
      await pipeline.close();
    }
    out.maxRssMb = process.resourceUsage().maxRSS / 1024;
    (globalThis as { gc?: () => void }).gc?.();
    out.steadyRssMb = process.memoryUsage().rss / 1024 / 1024;
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    await mon.close();
  }
}

async function main(): Promise<void> {
  const started = nowNs();
  const result = newResult('agent-pipeline', { sizes: SIZES, rounds: ROUNDS, cpus: possibleCpus() }, ['Each size runs in a fresh process. RSS between cycles is taken after a full GC; the peak also counts building the synthetic table in the same process. Kernel map memory is in neither.']);
  const run = (flows: number, mode: 'iterator' | 'batch'): ChildResult => {
    const r = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=8192', fileURLToPath(import.meta.url), '--child', String(flows), mode], { encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) throw new Error(`child for ${flows} flows (${mode}) failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as ChildResult;
  };
  for (const flows of SIZES) {
    log(`agent-pipeline: ${flows} flows`);
    const b = run(flows, 'batch');
    const c = run(flows, 'iterator');
    for (const x of [b, c]) result.checks.push({ what: `every ${x.mode} cycle had all ${flows} flows`, ok: x.recordsOk, detail: x.recordsOk ? 'yes' : 'no' });
    const bc = summarize(b.cycleMs);
    const bcpu = summarize(b.cpuMsPerCycle);
    result.rows.push({
      case: `a cycle over ${flows} idle flows, iterator reads against batch reads`,
      metric: 'CPU ms per cycle (iterator)',
      unit: 'ms',
      value: summarize(c.cpuMsPerCycle),
      baseline: { name: 'the same cycle with flowRead: batch', metric: 'CPU ms per cycle', value: bcpu },
      ratio: summarize([summarize(c.cpuMsPerCycle).median / bcpu.median]),
      ratioMeaning: 'CPU, iterator / batch (lower is better)',
      note: `wall time ${fmt(summarize(c.cycleMs).median)} ms against ${fmt(bc.median)} ms; first cycle (a full read) ${fmt(c.firstCycleMs)} ms against ${fmt(b.firstCycleMs)} ms`,
    });
    log(`  iterator: cycle ${fmtSummary(summarize(c.cycleMs))} ms (CPU ${fmt(summarize(c.cpuMsPerCycle).median)} ms), first ${fmt(c.firstCycleMs)} ms; batch: cycle ${fmtSummary(bc)} ms (CPU ${fmt(bcpu.median)} ms), first ${fmt(b.firstCycleMs)} ms`);
    const cycle = summarize(c.cycleMs);
    const dump = summarize(c.dumpMs);
    result.rows.push({
      case: `one pipeline cycle, ${flows} flows`,
      metric: 'ms per cycle',
      unit: 'ms',
      value: cycle,
      baseline: { name: 'BpfMap.dump() of the same table', metric: 'ms per read', value: dump },
      ratio: summarize(pairedRatios(c.cycleMs, c.dumpMs)),
      ratioMeaning: 'time, cycle / raw read (lower is better)',
      ...(flows >= 1_000_000 ? { goal: { text: '<= 1 s per cycle at 1 M flows', pass: cycle.median <= 1000 } } : {}),
      note: `CPU ${fmt(summarize(c.cpuMsPerCycle).median)} ms per cycle`,
    });
    result.rows.push({
      case: `agent process RSS between cycles, ${flows} flows`,
      metric: 'MB',
      unit: 'MB',
      value: summarize([c.steadyRssMb]),
      ...(flows === 100_000 ? { goal: { text: '<= 150 MB at 100 k flows', pass: c.steadyRssMb <= 150 } } : {}),
      note: `peak RSS ${fmt(c.maxRssMb)} MB, which includes building the test table in this process`,
    });
    log(`  cycle ${fmtSummary(cycle)} ms, raw read ${fmtSummary(dump)} ms, RSS ${fmt(c.steadyRssMb)} MB between cycles (peak ${fmt(c.maxRssMb)} MB)`);
  }
  result.durationMs = (nowNs() - started) / 1e6;
  log(`agent-pipeline: wrote ${writeResult(result)}`);
}

if (process.argv[2] === '--child') await child(Number(process.argv[3]), process.argv[4] === 'batch' ? 'batch' : 'iterator');
else await main();
