import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FLOW_KEY_BYTES, FlowAccounter, evictedFlowOf, type EvictedFlow, type FlowRecord, type FlowTableView } from './flow-accounter.js';
import type { FlowKey, FlowStats } from '../types.js';
import { keyWordsOf } from '../../test/helpers/flow-keys.js';

/** A readable identity of a test flow (interface, direction, 5-tuple). */
function flowId(k: FlowKey): string {
  return `${k.ifindex}/${k.direction}/${k.protocolNumber}/${k.srcIp}/${k.srcPort}/${k.dstIp}/${k.dstPort}`;
}

/** A 44-byte key for a test flow (the kernel's key bytes in real use). */
function keyOf(f: FlowStats): Uint8Array {
  const k = new Uint8Array(FLOW_KEY_BYTES);
  k.set(Buffer.from(flowId(f.key)).subarray(0, FLOW_KEY_BYTES));
  return k;
}

/** A table view over decoded flows (the pipeline passes a FlowSnapshot). */
function table(flows: FlowStats[]): FlowTableView {
  return {
    count: flows.length,
    removed: new Uint8Array(flows.length),
    keyWords: (() => {
      const w = new Uint32Array(flows.length * (FLOW_KEY_BYTES / 4));
      const b = new Uint8Array(w.buffer);
      flows.forEach((f, i) => b.set(keyOf(f), i * FLOW_KEY_BYTES));
      return w;
    })(),
    packetsAt: (i) => flows[i]!.packets,
    bytesAt: (i) => flows[i]!.bytes,
    flow: (i) => flows[i]!,
  };
}

const evictedOf = (flows: FlowStats[]): EvictedFlow[] => flows.map((f) => ({ keyWords: keyWordsOf(keyOf(f)), keyAt: 0, packets: f.packets, bytes: f.bytes, flow: f }));

function flow(dport: number, packets: number, bytes = packets * 100): FlowStats {
  return {
    key: { family: 'ipv4', srcIp: '198.18.0.1', dstIp: '198.18.0.2', srcPort: 1000, dstPort: dport, protocol: 'UDP', protocolNumber: 17, direction: 'ingress', ifindex: 3 },
    interface: 'veth0',
    packets,
    bytes,
    firstSeen: new Date(0),
    lastSeen: new Date(0),
    tcpFlags: [],
    synCount: 0,
    finCount: 0,
    rstCount: 0,
    opened: false,
  };
}

test('rates over the last interval', () => {
  const acc = new FlowAccounter({ activeTimeoutMs: 60_000 });
  acc.ingest(table([flow(1, 10)]), evictedOf([]), 0);
  acc.ingest(table([flow(1, 30)]), evictedOf([]), 2000);
  const recs = acc.ingest(table([flow(1, 30)]), evictedOf([flow(1, 35)]), 3000);
  assert.equal(recs.length, 1);
  assert.equal(recs[0]!.reason, 'final');
  assert.equal(recs[0]!.packetsPerSec, 0, 'no packets in the last second');
  assert.equal(acc.size, 0);
});

test('an evicted flow’s final record: decoded only when read, its raw key at hand, and plain as JSON', () => {
  const acc = new FlowAccounter({ activeTimeoutMs: 60_000 });
  acc.ingest(table([flow(9, 10)]), evictedOf([]), 0);
  const f = flow(9, 14);
  let decoded = 0;
  const e: EvictedFlow = {
    keyWords: keyWordsOf(keyOf(f)),
    keyAt: 0,
    packets: f.packets,
    bytes: f.bytes,
    get flow() {
      decoded++;
      return f;
    },
  };
  const [rec] = acc.ingest(table([]), [e], 1000);
  assert.equal(decoded, 0, 'accounting decodes nothing');
  assert.equal(evictedFlowOf(rec!), e);
  assert.deepEqual([rec!.reason, rec!.deltaPackets, rec!.deltaBytes], ['final', 14, 1400]);
  assert.deepEqual(JSON.parse(JSON.stringify(rec)), { ...JSON.parse(JSON.stringify({ reason: 'final', flow: f })), deltaPackets: 14, deltaBytes: 1400, packetsPerSec: 0, bytesPerSec: 0 });
  assert.equal(decoded, 1);
  // A record from a read (not an eviction) has no evicted flow.
  const [active] = new FlowAccounter({ activeTimeoutMs: 0 }).ingest(table([flow(9, 1)]), [], 0);
  assert.equal(active!.reason, 'active');
  assert.equal(evictedFlowOf(active!), undefined);
});

test('active and final records add up to exactly the flow’s totals', () => {
  const acc = new FlowAccounter({ activeTimeoutMs: 1000 });
  const recs = [
    ...acc.ingest(table([flow(2, 5)]), evictedOf([]), 0),
    ...acc.ingest(table([flow(2, 12)]), evictedOf([]), 500),
    ...acc.ingest(table([flow(2, 20)]), evictedOf([]), 1000), // active: 20 so far
    ...acc.ingest(table([flow(2, 26)]), evictedOf([]), 1500),
    ...acc.ingest(table([flow(2, 40)]), evictedOf([]), 2000), // active: 20 more
    ...acc.ingest(table([]), evictedOf([flow(2, 47)]), 2600), // final: 7 more
  ];
  assert.deepEqual(
    recs.map((r) => [r.reason, r.deltaPackets, r.deltaBytes]),
    [
      ['active', 20, 2000],
      ['active', 20, 2000],
      ['final', 7, 700],
    ],
  );
  assert.equal(recs[0]!.packetsPerSec, 16, '(20 - 12) / 0.5 s');
  assert.equal(recs.reduce((s, r) => s + r.deltaPackets, 0), 47);
});

test('a quiet flow is reported once, then not again until it moves; one evicted unseen gets a final record with all of it', () => {
  const acc = new FlowAccounter({ activeTimeoutMs: 1000 });
  assert.deepEqual(acc.ingest(table([flow(3, 4)]), evictedOf([]), 0), []);
  assert.deepEqual(acc.ingest(table([flow(3, 4)]), evictedOf([]), 5000).map((r) => [r.reason, r.deltaPackets]), [['active', 4]]);
  assert.deepEqual(acc.ingest(table([flow(3, 4)]), evictedOf([]), 10000), [], 'nothing new since its last record');
  const recs = acc.ingest(table([flow(3, 4)]), evictedOf([flow(9, 3)]), 11000);
  assert.deepEqual(recs.map((r) => [r.reason, r.flow.key.dstPort, r.deltaPackets]), [['final', 9, 3]]);
});

test('a flow that left the table behind our back is closed with what was last read; if it returns it starts over', () => {
  const acc = new FlowAccounter({ activeTimeoutMs: 1000 });
  acc.ingest(table([flow(4, 50), flow(5, 7)]), evictedOf([]), 0);
  const back = acc.ingest(table([flow(4, 2), flow(5, 9)]), evictedOf([]), 500);
  assert.deepEqual(back.map((r) => [r.reason, r.flow.key.dstPort, r.deltaPackets]), [['final', 4, 50]]);
  const gone = acc.ingest(table([flow(4, 3)]), evictedOf([]), 700);
  assert.deepEqual(gone.map((r) => [r.reason, r.flow.key.dstPort, r.deltaPackets]), [['final', 5, 9]]);
  assert.equal(acc.size, 1);
  assert.notEqual(flowId(flow(4, 1).key), flowId(flow(5, 1).key));
});

test('many flows coming, growing, evicted and vanishing: every incarnation’s records add up to its packets', () => {
  // Seeded, so a failure repeats. Exercises the table's growth, rehash and backward-shift deletion.
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const acc = new FlowAccounter({ activeTimeoutMs: 3 });
  const live = new Map<number, number>(); // port -> packets
  const delivered = new Map<number, number>(); // port -> packets reported (current incarnation)
  const expected: number[] = [];
  const got: number[] = [];
  const settle = (port: number, total: number): void => {
    expected.push(total);
    got.push(delivered.get(port) ?? 0);
    delivered.delete(port);
  };
  for (let t = 0; t < 60; t++) {
    for (let j = 0; j < 400; j++) {
      const port = 1 + rnd(3000);
      live.set(port, (live.get(port) ?? 0) + 1 + rnd(5));
    }
    const evicted: FlowStats[] = [];
    for (const [port, packets] of [...live]) {
      const r = rnd(100);
      if (r < 4) {
        evicted.push(flow(port, packets));
        live.delete(port);
      } else if (r < 6) {
        live.delete(port); // gone without eviction: final from the last read
      }
    }
    const recs = acc.ingest(table([...live].map(([p, n]) => flow(p, n))), evictedOf(evicted), t * 1);
    for (const r of recs) {
      const port = r.flow.key.dstPort;
      delivered.set(port, (delivered.get(port) ?? 0) + r.deltaPackets);
      if (r.reason === 'final') settle(port, r.flow.packets);
    }
  }
  assert.equal(acc.size, live.size, 'one state per live flow');
  assert.ok(expected.length > 1000, `many incarnations ended (${expected.length})`);
  assert.deepEqual(got, expected);
});

// The pipeline accounts a read a batch at a time (begin/add/end) while the
// kernel copies out the next batch, and evicts after the batches were
// taken. It must give exactly the records that ingest() gives for the whole read.

type Step = { flows: [dport: number, packets: number][]; evict?: [dport: number, finalPackets: number][] };

function evictIn(view: FlowTableView, flows: FlowStats[], evict: Step['evict']): EvictedFlow[] {
  return (evict ?? []).map(([dport, p]) => {
    const i = flows.findIndex((f) => f.key.dstPort === dport);
    view.removed[i] = 1;
    return evictedOf([flow(dport, p)])[0]!;
  });
}

/** The same reads through ingest() and through begin/add/end in batches of `batch`. */
function wholeAndBatched(batch: number, steps: Step[], activeTimeoutMs = 1e9): [string[], string[]][] {
  const whole = new FlowAccounter({ activeTimeoutMs });
  const batched = new FlowAccounter({ activeTimeoutMs });
  const show = (rs: FlowRecord[]): string[] => rs.map((r) => `${r.reason}:${r.flow.key.dstPort}:${r.deltaPackets}:${r.deltaBytes}`).sort();
  return steps.map((s, n) => {
    const at = n * 1000;
    const flows = s.flows.map(([d, p]) => flow(d, p));
    const v1 = table(flows);
    const a = whole.ingest(v1, evictIn(v1, flows, s.evict), at);
    const v2 = table(flows);
    const read = batched.begin(at);
    for (let i = 0; i < v2.count; i += batch) read.add(v2.keyWords, v2, i, Math.min(batch, v2.count - i));
    const b = read.end(v2, evictIn(v2, flows, s.evict));
    return [show(a), show(b)];
  });
}

test('batch by batch: the same records as the whole read, an evicted flow gets only its final record', () => {
  const out = wholeAndBatched(2, [
    { flows: [[1, 10], [2, 5], [3, 1]] },
    { flows: [[1, 30], [2, 5], [3, 2]] },
    { flows: [[1, 70], [2, 9], [3, 2]], evict: [[3, 4]] },
    { flows: [[1, 71], [2, 9]], evict: [[2, 12]] },
  ], 2000);
  for (const [whole, batched] of out) assert.deepEqual(batched, whole);
  // At 2 s flows 1, 2 and 3 are all due an active record; 3 is evicted in the same cycle.
  assert.deepEqual(out[2]![0], ['active:1:70:7000', 'active:2:9:900', 'final:3:4:400']);
  assert.deepEqual(out[3]![0], ['final:2:3:300']);
});

test('batch by batch, over thousands of flows that grow, vanish and get evicted, for any batch size', () => {
  const flows = (n: number, scale: number): [number, number][] => Array.from({ length: n }, (_, i) => [i + 1, (i % 7) * scale + 1]);
  for (const batch of [1, 3, 64, 5000]) {
    const out = wholeAndBatched(batch, [{ flows: flows(3000, 1) }, { flows: flows(2500, 2), evict: [[5, 50]] }, { flows: flows(2600, 3) }], 1500);
    for (const [whole, batched] of out) assert.deepEqual(batched, whole, `batch ${batch}`);
    assert.equal(out[1]![0].filter((r) => r.startsWith('final')).length, 501, '500 vanished, 1 evicted');
  }
});

test('a key read twice in one read (deleted and re-added under the read) counts once, with the later copy', () => {
  const acc = new FlowAccounter({ activeTimeoutMs: 1e9 });
  acc.ingest(table([flow(1, 100)]), [], 0);
  acc.ingest(table([flow(1, 600), flow(2, 1)]), [], 2000);
  const recs = acc.ingest(table([flow(1, 800), flow(2, 2), flow(1, 800)]), [], 4000);
  assert.deepEqual(recs, []);
  assert.equal(acc.size, 2);
  assert.equal(acc.rateAt(0), undefined, 'the earlier copy is dropped');
  assert.deepEqual(acc.rateAt(2), { packetsPerSec: 100, bytesPerSec: 10000 });
});

test('room made up front (initialFlows) changes nothing but when memory is taken', () => {
  const sized = new FlowAccounter({ activeTimeoutMs: 1500, initialFlows: 4096 });
  const grown = new FlowAccounter({ activeTimeoutMs: 1500 });
  const summary = (recs: FlowRecord[]): string[] => recs.map((r) => `${r.reason} ${r.flow.key.dstPort} ${r.deltaPackets} ${r.packetsPerSec}`).sort();
  const reads: [FlowStats[], FlowStats[]][] = [
    [Array.from({ length: 3000 }, (_, i) => flow(6000 + i, 1)), []],
    [Array.from({ length: 3000 }, (_, i) => flow(6000 + i, 1 + i)), []],
    // 1000 flows gone through eviction with their final figures, the rest carry on.
    [Array.from({ length: 2000 }, (_, i) => flow(7000 + i, 2 + i)), Array.from({ length: 1000 }, (_, i) => flow(6000 + i, 1 + i))],
  ];
  reads.forEach(([live, evicted], n) => {
    const at = 1000 * (n + 1);
    const a = sized.ingest(table(live), evictedOf(evicted), at);
    const b = grown.ingest(table(live), evictedOf(evicted), at);
    assert.deepEqual(summary(a), summary(b), `read ${n}`);
    for (let i = 0; i < live.length; i += 97) assert.deepEqual(sized.rateAt(i), grown.rateAt(i), `read ${n}, flow ${i}`);
  });
  // Something was reported, so the comparison compared something: the evicted flows' finals, and active records.
  assert.equal(summary(sized.ingest(table([]), [], 4000)).filter((r) => r.startsWith('final')).length, 2000);
});
