/**
 * Reading a flow table of 100,000 flows from user space.
 *
 * knp_flows (PERCPU_HASH, 48-byte value per possible CPU) is filled from
 * user space with distinct keys (bpf_map_update_batch, bound here), then
 * each round times, order rotated:
 *   (a) BpfMap.dump()               raw batch read (BPF_MAP_LOOKUP_BATCH)
 *   (b) NetworkMonitor.getFlowStats() fully decoded FlowStats objects
 *   baseline: bpf_map_get_next_key + bpf_map_lookup_elem per key, into the
 *             same packed buffers dump() fills
 * and, to see where (b)'s time goes, dump() plus only the key decoding and
 * dump() plus only the per-CPU value merging. A last phase refills the table
 * with flows of an interface that no longer exists and times (b) again.
 */
import { NetworkMonitor } from '../src/monitor/network-monitor.js';
import { libbpf } from '../src/ffi/native.js';
import { possibleCpus, type BpfMap } from '../src/loader/map.js';
import { FLOW_KEY, FLOW_VALUE } from '../src/abi/layouts.js';
import { decodeFlowKey, decodeFlowValuePerCpu } from '../src/abi/decode.js';
import { envInt, fillFlowTable, fmt, fmtSummary, log, makeFlowTable, nowNs, pairedRatios, rotate, summarize, newResult, writeResult, type ResultRow } from './common.js';

const FLOWS = envInt('BENCH_FLOWS', 100_000);
const CAPACITY = 131072;
const ROUNDS = envInt('BENCH_ROUNDS', 9);
const GONE_ROUNDS = 5;
const GOAL_MS = 60;
const ENOENT = 2;
const LO_IFINDEX = 1;
/** An ifindex no interface has (the flows of a deleted pod's veth). */
const GONE_IFINDEX = 0x7ffffff0;

/** The baseline: one get_next_key and one lookup per flow (two syscalls each). */
function readPerKey(map: BpfMap, keys: Buffer, values: Buffer): number {
  let prev: Buffer | null = null;
  let n = 0;
  for (;;) {
    const next = keys.subarray(n * map.keySize, (n + 1) * map.keySize);
    let rc = libbpf.bpf_map_get_next_key(map.fd, prev, next) as number;
    if (rc === -ENOENT) return n;
    if (rc < 0) throw new Error(`bpf_map_get_next_key: ${rc}`);
    rc = libbpf.bpf_map_lookup_elem(map.fd, next, values.subarray(n * map.valueStride, (n + 1) * map.valueStride)) as number;
    if (rc < 0) throw new Error(`bpf_map_lookup_elem: ${rc}`);
    prev = next;
    n++;
  }
}

type Variant = 'baseline' | 'dump' | 'flowstats' | 'dump+keys' | 'dump+values';

async function main(): Promise<void> {
  const started = nowNs();
  const result = newResult('flow-read', { flows: FLOWS, capacity: CAPACITY, rounds: ROUNDS, cpus: possibleCpus(), valueBytesPerFlow: FLOW_VALUE.size * possibleCpus() });
  let mon: NetworkMonitor | undefined;
  try {
    mon = await NetworkMonitor.create({ flowTableCapacity: CAPACITY, packetSampleRate: 0 });
    const m = mon;
    const map = mon.map('knp_flows');
    const cpus = possibleCpus();
    const table = makeFlowTable(FLOWS, LO_IFINDEX, map.valueStride, cpus);
    const fillMs = fillFlowTable(map, table);
    const scratchKeys = Buffer.alloc(CAPACITY * map.keySize);
    const scratchValues = Buffer.alloc(CAPACITY * map.valueStride);

    let sink = 0; // keeps the decoders' results alive
    const variants: Record<Variant, () => number> = {
      baseline: () => readPerKey(map, scratchKeys, scratchValues),
      dump: () => map.dump().count,
      flowstats: () => m.getFlowStats().length,
      'dump+keys': () => {
        const d = map.dump();
        const kv = new DataView(d.keys.buffer, d.keys.byteOffset, d.keys.byteLength);
        for (let i = 0; i < d.count; i++) sink += decodeFlowKey(kv, i * FLOW_KEY.size).srcPort;
        return d.count;
      },
      'dump+values': () => {
        const d = map.dump();
        const vv = new DataView(d.values.buffer, d.values.byteOffset, d.values.byteLength);
        for (let i = 0; i < d.count; i++) sink += decodeFlowValuePerCpu(vv, i * d.valueStride, cpus).packets;
        return d.count;
      },
    };
    const ids = Object.keys(variants) as Variant[];
    const times = new Map<Variant, number[]>(ids.map((id) => [id, []]));
    const time = (id: Variant): number => {
      const t0 = nowNs();
      const n = variants[id]();
      const ms = (nowNs() - t0) / 1e6;
      if (n !== FLOWS) throw new Error(`${id}: read ${n} flows, expected ${FLOWS}`);
      return ms;
    };

    // Correctness, once: every flow, every packet.
    const stats = mon.getFlowStats();
    const packets = stats.reduce((a, s) => a + s.packets, 0);
    result.checks.push({
      what: 'getFlowStats() returns every flow with its per-CPU packets summed',
      ok: stats.length === FLOWS && packets === table.totalPackets && stats.every((s) => s.interface === 'lo'),
      detail: `${stats.length} flows, ${packets} packets (expected ${FLOWS}, ${table.totalPackets})`,
    });
    const d = map.dump();
    result.checks.push({
      what: 'dump() returns exactly the keys written',
      ok: d.count === FLOWS && sameKeySet(d.keys, table.keys, map.keySize, FLOWS),
      detail: `${d.count} keys`,
    });

    for (const id of ids) time(id); // warm-up (first dump() allocates its buffers)
    for (let round = 0; round < ROUNDS; round++) {
      for (const id of rotate(ids, round)) times.get(id)!.push(time(id));
      log(`flow-read: round ${round + 1}/${ROUNDS}`);
    }

    // Flows of an interface that is gone: refill, then time (b) against (a).
    const deleted = map.deleteBatch(Buffer.from(table.keys), FLOWS);
    if (deleted !== FLOWS) throw new Error(`deleteBatch: ${deleted} of ${FLOWS}`);
    fillFlowTable(map, makeFlowTable(FLOWS, GONE_IFINDEX, map.valueStride, cpus));
    const gone = { dump: [] as number[], flowstats: [] as number[] };
    for (let round = 0; round < GONE_ROUNDS; round++) {
      for (const id of rotate(['dump', 'flowstats'] as const, round)) gone[id].push(time(id));
    }
    if (sink === -1) log('unreachable');

    const base = times.get('baseline')!;
    const row = (id: Variant, label: string): ResultRow => {
      const ours = times.get(id)!;
      const s = summarize(ours);
      return {
        case: `${label}, ${FLOWS} flows`,
        metric: 'ms per full read',
        unit: 'ms',
        value: s,
        baseline: { name: 'bpf_map_get_next_key + bpf_map_lookup_elem per key', metric: 'ms', value: summarize(base) },
        ratio: summarize(pairedRatios(ours, base)),
        ratioMeaning: 'time, ours / baseline (lower is better)',
        goal: { text: `<= ${GOAL_MS} ms`, pass: s.median <= GOAL_MS },
      };
    };
    result.rows.push(row('dump', '(a) BpfMap.dump() raw batch read'));
    result.rows.push(row('flowstats', '(b) NetworkMonitor.getFlowStats() decoded'));
    result.rows.push({ case: `baseline itself: get_next_key + lookup_elem, ${FLOWS} flows`, metric: 'ms per full read', unit: 'ms', value: summarize(base) });
    const goneRatio = summarize(pairedRatios(gone.flowstats, gone.dump));
    result.rows.push({
      case: `(b) getFlowStats(), ${FLOWS} flows of a deleted interface`,
      metric: 'ms per full read',
      unit: 'ms',
      value: summarize(gone.flowstats),
      baseline: { name: '(a) dump() of the same table', metric: 'ms', value: summarize(gone.dump) },
      ratio: goneRatio,
      ratioMeaning: 'time, getFlowStats / dump (lower is better)',
      goal: { text: `<= ${GOAL_MS} ms`, pass: summarize(gone.flowstats).median <= GOAL_MS },
      note: `the interface name is looked up again for every flow (if_indextoname), as only found names are cached; ${GONE_ROUNDS} rounds`,
    });

    const med = (id: Variant): number => summarize(times.get(id)!).median;
    result.tables.push({
      title: `Where getFlowStats() time goes (${FLOWS} flows, ${cpus} CPUs, median ms)`,
      header: ['step', 'ms', 'increment'],
      rows: [
        ['dump() (BPF_MAP_LOOKUP_BATCH, 8192 per call)', fmt(med('dump')), fmt(med('dump'))],
        ['dump() + decodeFlowKey() per flow', fmt(med('dump+keys')), fmt(med('dump+keys') - med('dump'))],
        ['dump() + decodeFlowValuePerCpu() per flow', fmt(med('dump+values')), fmt(med('dump+values') - med('dump'))],
        ['getFlowStats() (both, plus names, Dates, flag names)', fmt(med('flowstats')), fmt(med('flowstats') - med('dump+keys') - med('dump+values') + med('dump'))],
      ],
    });
    result.notes.push(`Filling ${FLOWS} flows with bpf_map_update_batch took ${fmt(fillMs)} ms.`);
  } finally {
    await mon?.close();
  }
  result.durationMs = (nowNs() - started) / 1e6;
  const path = writeResult(result);
  for (const r of result.rows) {
    log(`${r.case}: ${fmtSummary(r.value)} ms${r.baseline ? ` vs ${fmtSummary(r.baseline.value)}, ratio ${fmtSummary(r.ratio!, 3)}` : ''}${r.goal ? (r.goal.pass ? ' PASS' : ' MISS') : ''}`);
  }
  for (const t of result.tables) {
    log(t.title);
    for (const r of [t.header, ...t.rows]) log(`  ${r.join(' | ')}`);
  }
  for (const c of result.checks) log(`check ${c.ok ? 'ok  ' : 'FAIL'} ${c.what}: ${c.detail}`);
  log(`flow-read: ${fmt(result.durationMs / 1000)} s, wrote ${path}`);
  if (result.checks.some((c) => !c.ok)) process.exitCode = 1;
}

function sameKeySet(a: Buffer, b: Buffer, size: number, n: number): boolean {
  const set = new Set<string>();
  for (let i = 0; i < n; i++) set.add(a.toString('hex', i * size, (i + 1) * size));
  for (let i = 0; i < n; i++) if (!set.has(b.toString('hex', i * size, (i + 1) * size))) return false;
  return set.size === n;
}

await main();
