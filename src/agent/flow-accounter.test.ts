import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlowAccounter, flowId } from './flow-accounter.js';
import type { FlowStats } from '../types.js';

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
  acc.ingest([flow(1, 10)], [], 0);
  acc.ingest([flow(1, 30)], [], 2000);
  const recs = acc.ingest([flow(1, 30)], [flow(1, 35)], 3000);
  assert.equal(recs.length, 1);
  assert.equal(recs[0]!.reason, 'final');
  assert.equal(recs[0]!.packetsPerSec, 0, 'no packets in the last second');
  assert.equal(acc.size, 0);
});

test('active and final records add up to exactly the flow’s totals', () => {
  const acc = new FlowAccounter({ activeTimeoutMs: 1000 });
  const recs = [
    ...acc.ingest([flow(2, 5)], [], 0),
    ...acc.ingest([flow(2, 12)], [], 500),
    ...acc.ingest([flow(2, 20)], [], 1000), // active: 20 so far
    ...acc.ingest([flow(2, 26)], [], 1500),
    ...acc.ingest([flow(2, 40)], [], 2000), // active: 20 more
    ...acc.ingest([], [flow(2, 47)], 2600), // final: 7 more
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
  assert.deepEqual(acc.ingest([flow(3, 4)], [], 0), []);
  assert.deepEqual(acc.ingest([flow(3, 4)], [], 5000).map((r) => [r.reason, r.deltaPackets]), [['active', 4]]);
  assert.deepEqual(acc.ingest([flow(3, 4)], [], 10000), [], 'nothing new since its last record');
  const recs = acc.ingest([flow(3, 4)], [flow(9, 3)], 11000);
  assert.deepEqual(recs.map((r) => [r.reason, r.flow.key.dstPort, r.deltaPackets]), [['final', 9, 3]]);
});

test('a flow that left the table behind our back is closed with what was last read; if it returns it starts over', () => {
  const acc = new FlowAccounter({ activeTimeoutMs: 1000 });
  acc.ingest([flow(4, 50), flow(5, 7)], [], 0);
  const back = acc.ingest([flow(4, 2), flow(5, 9)], [], 500);
  assert.deepEqual(back.map((r) => [r.reason, r.flow.key.dstPort, r.deltaPackets]), [['final', 4, 50]]);
  const gone = acc.ingest([flow(4, 3)], [], 700);
  assert.deepEqual(gone.map((r) => [r.reason, r.flow.key.dstPort, r.deltaPackets]), [['final', 5, 9]]);
  assert.equal(acc.size, 1);
  assert.notEqual(flowId(flow(4, 1).key), flowId(flow(5, 1).key));
});
