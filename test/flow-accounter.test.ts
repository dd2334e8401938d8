/**
 * The accounter stage as pure logic, over fake reads of the table: records
 * add up to exactly each flow's counts whichever way a flow ends, and taking
 * a read a batch at a time gives the same records as taking it whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowAccounter, FLOW_KEY_BYTES, type EvictedFlow, type FlowRecord, type FlowTableView } from '../src/agent/flow-accounter.js';
import type { FlowStats } from '../src/types.js';

const W = FLOW_KEY_BYTES / 4;

/** A read of the table: flow id -> packets (bytes = 100 per packet). */
function view(flows: [id: number, packets: number][]): FlowTableView & { ids: number[] } {
  const keyWords = new Uint32Array(flows.length * W);
  flows.forEach(([id], i) => {
    keyWords[i * W] = id;
    keyWords[i * W + 3] = 0xabcd; // the rest of a key, the same for all
  });
  const stats = (i: number): FlowStats => {
    const [id, packets] = flows[i]!;
    return {
      key: { srcIp: `198.18.0.${id}`, dstIp: '198.18.1.1', srcPort: id, dstPort: 53, protocol: 'udp', family: 4, ifindex: 1, direction: 'ingress' },
      interface: 'veth0',
      packets,
      bytes: packets * 100,
      firstSeen: new Date(0),
      lastSeen: new Date(0),
      tcpFlags: [],
      synCount: 0,
      finCount: 0,
      rstCount: 0,
      opened: false,
    } as unknown as FlowStats;
  };
  return {
    ids: flows.map(([id]) => id),
    count: flows.length,
    removed: new Uint8Array(flows.length),
    keyWords,
    packetsAt: (i) => flows[i]![1],
    bytesAt: (i) => flows[i]![1] * 100,
    flow: stats,
  };
}

function evict(v: ReturnType<typeof view>, id: number, finalPackets: number): EvictedFlow {
  const i = v.ids.indexOf(id);
  v.removed[i] = 1;
  const key = new Uint8Array(v.keyWords.buffer, i * FLOW_KEY_BYTES, FLOW_KEY_BYTES).slice();
  return { key, flow: { ...v.flow(i), packets: finalPackets, bytes: finalPackets * 100 } };
}

const idOf = (r: FlowRecord): number => r.flow.key.srcPort;

/** Runs the same reads through ingest() and through begin/add/end in batches of `batch`. */
function both(batch: number, steps: { flows: [number, number][]; evict?: [number, number][] }[], activeTimeoutMs = 1e9): [FlowRecord[], FlowRecord[]][] {
  const whole = new FlowAccounter({ activeTimeoutMs });
  const batched = new FlowAccounter({ activeTimeoutMs });
  return steps.map((s, n) => {
    const at = n * 1000;
    const v1 = view(s.flows);
    const ev1 = (s.evict ?? []).map(([id, p]) => evict(v1, id, p));
    const a = whole.ingest(v1, ev1, at);
    const v2 = view(s.flows);
    const read = batched.begin(at);
    for (let i = 0; i < v2.count; i += batch) read.add(v2.keyWords, v2, i, Math.min(batch, v2.count - i));
    // Eviction happens after the batches were taken, as in the pipeline.
    const ev2 = (s.evict ?? []).map(([id, p]) => evict(v2, id, p));
    const b = read.end(v2, ev2);
    return [a, b] as [FlowRecord[], FlowRecord[]];
  });
}

const sorted = (rs: FlowRecord[]): string[] => rs.map((r) => `${r.reason}:${idOf(r)}:${r.deltaPackets}:${r.deltaBytes}`).sort();

test('records of a flow sum to its counts: active on the timeout, final on eviction', () => {
  const out = both(2, [
    { flows: [[1, 10], [2, 5], [3, 1]] },
    { flows: [[1, 30], [2, 5], [3, 2]] },
    { flows: [[1, 70], [2, 9], [3, 2]], evict: [[3, 4]] },
    { flows: [[1, 71], [2, 9]], evict: [[2, 12]] },
  ], 2000);
  for (const [whole, batched] of out) assert.deepEqual(sorted(batched), sorted(whole));
  const all = out.flatMap(([w]) => w);
  const sum = (id: number): number => all.filter((r) => idOf(r) === id).reduce((s, r) => s + r.deltaPackets, 0);
  // Flow 1 reaches 71 and is never evicted: its active records so far cover the 70 it had at the last one.
  assert.equal(sum(1), 70);
  assert.equal(sum(2), 12, 'active up to 9, then a final with what eviction returned');
  assert.equal(sum(3), 4);
  assert.deepEqual(sorted(out[2]![0]!), ['active:1:70:7000', 'active:2:9:900', 'final:3:4:400'], 'an evicted flow gets only its final record');
});

test('a flow gone from the table without eviction is closed with what was last read; a counter that went down starts a new flow', () => {
  const out = both(1, [
    { flows: [[1, 10], [2, 20]] },
    { flows: [[2, 5]] }, // 1 vanished; 2 was deleted and re-created under us
    { flows: [[2, 6]] },
  ]);
  for (const [whole, batched] of out) assert.deepEqual(sorted(batched), sorted(whole));
  assert.deepEqual(sorted(out[1]![0]!), ['final:1:10:1000', 'final:2:20:2000']);
  assert.deepEqual(sorted(out[2]![0]!), []);
});

test('rates come from the difference between reads; a key read twice in one read counts once', () => {
  const acc = new FlowAccounter({ activeTimeoutMs: 1e9 });
  acc.ingest(view([[1, 100]]), [], 0);
  const v = view([[1, 600], [2, 1]]);
  acc.ingest(v, [], 2000);
  assert.deepEqual(acc.rateAt(0), { packetsPerSec: 250, bytesPerSec: 25000 });
  assert.deepEqual(acc.rateAt(1), { packetsPerSec: 0, bytesPerSec: 0 }, 'a new flow has no rate yet');
  assert.equal(acc.size, 2);
  const dup = view([[1, 800], [2, 2], [1, 800]]);
  const recs = acc.ingest(dup, [], 4000);
  assert.deepEqual(recs, []);
  assert.equal(acc.size, 2);
  assert.equal(acc.rateAt(0), undefined, 'the earlier copy is dropped');
  assert.deepEqual(acc.rateAt(2), { packetsPerSec: 100, bytesPerSec: 10000 });
});

test('batches of any size give the same records over many flows', () => {
  const flows = (n: number, scale: number): [number, number][] => Array.from({ length: n }, (_, i) => [i + 1, (i % 7) * scale + 1] as [number, number]);
  for (const batch of [1, 3, 64, 5000]) {
    const out = both(batch, [{ flows: flows(3000, 1) }, { flows: flows(2500, 2), evict: [[5, 50]] }, { flows: flows(2600, 3) }], 1500);
    for (const [whole, batched] of out) assert.deepEqual(sorted(batched), sorted(whole), `batch ${batch}`);
    assert.equal(out[1]![0]!.filter((r) => r.reason === 'final').length, 501, '500 vanished, 1 evicted');
  }
});
