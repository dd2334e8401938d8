import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowAccounter, flowId, type EvictedFlow, type FlowTableView } from './flow-accounter.js';
import type { FlowStats } from '../types.js';

/** A table view over decoded flows (the pipeline passes a FlowSnapshot). */
function table(flows: FlowStats[]): FlowTableView {
  return {
    count: flows.length,
    removed: new Uint8Array(flows.length),
    id: (i) => flowId(flows[i]!.key),
    packetsAt: (i) => flows[i]!.packets,
    bytesAt: (i) => flows[i]!.bytes,
    flow: (i) => flows[i]!,
  };
}

const evictedOf = (flows: FlowStats[]): EvictedFlow[] => flows.map((f) => ({ id: flowId(f.key), flow: f }));

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
