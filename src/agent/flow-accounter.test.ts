import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FLOW_KEY_BYTES, FlowAccounter, type EvictedFlow, type FlowTableView } from './flow-accounter.js';
import type { FlowKey, FlowStats } from '../types.js';

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

const evictedOf = (flows: FlowStats[]): EvictedFlow[] => flows.map((f) => ({ key: keyOf(f), flow: f }));

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
