/**
 * Evicting flows: what `evictIdle()` costs per flow by the knp_flow_evict
 * program (bpf/flow-evict.bpf.h: up to 4096 flows per system call, summed
 * over CPUs in the kernel) against one BPF_MAP_LOOKUP_AND_DELETE_ELEM per
 * flow (`flowEvict: 'lookup-and-delete'`, the baseline).
 *
 * Two monitors, one per method, are attached to the same veths of a client
 * and a server namespace, so each counts the same packets in a table of its
 * own. Each round, the client makes short TCP connections (tools/loadgen.c
 * tcp-churn), then each monitor reads its table and evicts every flow, the
 * order rotating; the time of the evictIdle() call alone is kept.
 */
import { spawn } from 'node:child_process';
import { NetworkMonitor } from '../src/monitor/network-monitor.js';
import { TestNet } from '../test/helpers/testnet.js';
import { envInt, fmt, fmtSummary, loadgenPath, log, nowNs, pairedRatios, rotate, summarize, newResult, writeResult } from './common.js';

const CONNECTIONS = envInt('BENCH_CONNECTIONS', 10_000);
const ROUNDS = envInt('BENCH_ROUNDS', 9);
const PORT = 7601;

type Method = 'program' | 'lookup-and-delete';

async function main(): Promise<void> {
  const started = nowNs();
  const result = newResult('flow-evict', { connections: CONNECTIONS, rounds: ROUNDS });
  const loadgen = loadgenPath();
  const net = TestNet.create(2, { ipv6: false });
  const monitors = new Map<Method, NetworkMonitor>();
  const server = spawn('ip', ['netns', 'exec', net.pod('b').netns, loadgen, 'tcp-echo', String(PORT)], { stdio: 'ignore' });
  try {
    const [a, b] = [net.pod('a'), net.pod('b')];
    net.exec(a, 'sysctl', ['-qw', 'net.ipv4.ip_local_port_range=1024 65535', 'net.ipv4.tcp_tw_reuse=1']);
    for (const method of ['program', 'lookup-and-delete'] as const) {
      const mon = await NetworkMonitor.create({ packetSampleRate: 0, flowEvict: method });
      monitors.set(method, mon);
      await mon.attachToInterface(a.hostIf);
      await mon.attachToInterface(b.hostIf);
    }
    await new Promise((r) => setTimeout(r, 300)); // the server listening
    const perFlow = new Map<Method, number[]>([
      ['program', []],
      ['lookup-and-delete', []],
    ]);
    const evicted = new Map<Method, number[]>([
      ['program', []],
      ['lookup-and-delete', []],
    ]);
    for (let round = -1; round < ROUNDS; round++) {
      net.exec(a, loadgen, ['tcp-churn', b.ipv4, String(PORT), '30', '16', String(CONNECTIONS)]);
      for (const method of rotate(['program', 'lookup-and-delete'] as const, Math.max(0, round))) {
        const mon = monitors.get(method)!;
        const snap = await mon.readFlowSnapshotAsync();
        const t0 = nowNs();
        const out = mon.evictIdle(snap, 0);
        const us = (nowNs() - t0) / 1e3 / Math.max(1, out.length);
        if (round < 0) continue; // warm-up: V8 compiles both paths
        perFlow.get(method)!.push(us);
        evicted.get(method)!.push(out.reduce((n, e) => n + e.packets, 0));
      }
      if (round >= 0) log(`flow-evict: round ${round + 1}/${ROUNDS}`);
    }
    const ours = perFlow.get('program')!;
    const base = perFlow.get('lookup-and-delete')!;
    result.rows.push({
      case: `evictIdle(), every flow of ${CONNECTIONS} short TCP connections (2 flows each), ${ROUNDS} rounds`,
      metric: 'µs per evicted flow',
      unit: 'µs',
      value: summarize(ours),
      baseline: { name: "one BPF_MAP_LOOKUP_AND_DELETE_ELEM per flow (flowEvict: 'lookup-and-delete')", metric: 'µs per evicted flow', value: summarize(base) },
      ratio: summarize(pairedRatios(ours, base)),
      ratioMeaning: 'time, program / lookup-and-delete (lower is better)',
    });
    // Both tables counted the same packets; both evictions must hand back all of them.
    const same = evicted.get('program')!.every((p, i) => p === evicted.get('lookup-and-delete')![i] && p > 0);
    result.checks.push({
      what: 'both methods evict the same packets, round by round (two monitors on the same veths)',
      ok: same,
      detail: `packets per round: program ${evicted.get('program')!.join(' ')}; lookup-and-delete ${evicted.get('lookup-and-delete')!.join(' ')}`,
    });
    result.checks.push({
      what: 'the monitors use the method asked for',
      ok: monitors.get('program')!.flowEvict.method === 'program' && monitors.get('lookup-and-delete')!.flowEvict.method === 'lookup-and-delete',
      detail: [...monitors.values()].map((m) => m.flowEvict.detail).join('; '),
    });
  } finally {
    server.kill('SIGKILL');
    for (const m of monitors.values()) await m.close();
    await net.close();
  }
  result.durationMs = (nowNs() - started) / 1e6;
  const path = writeResult(result);
  for (const r of result.rows) log(`${r.case}: ${fmtSummary(r.value, 2)} µs vs ${fmtSummary(r.baseline!.value, 2)}, ratio ${fmtSummary(r.ratio!, 3)}`);
  for (const c of result.checks) log(`check ${c.ok ? 'ok  ' : 'FAIL'} ${c.what}: ${c.detail}`);
  log(`flow-evict: ${fmt(result.durationMs / 1000)} s, wrote ${path}`);
  if (result.checks.some((c) => !c.ok)) process.exitCode = 1;
}

await main();
