/**
 * The flow table read by BPF iterator (bpf/flow-read.bpf.h), against the
 * real kernel: exact counts, the same flows a batch read gives, only changed
 * flows written out, evictions, and flows lost behind the monitor's back.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkMonitor, type FlowStats } from 'kubenetprobe';
import { sleep } from './helpers/attached.js';
import { monitoredPods } from './helpers/monitored-pods.js';
import { kernelFeatures } from '../src/loader/features.js';

const PAYLOAD = 100;

function id(f: FlowStats): string {
  const k = f.key;
  return `${k.protocol} ${k.srcIp}:${k.srcPort} > ${k.dstIp}:${k.dstPort} if${k.ifindex} ${k.direction}`;
}

describe('reading the flow table by BPF iterator', { skip: kernelFeatures().btf ? false : 'kernel without BTF: batch reads only' }, () => {
  const node = monitoredPods();

  /** `n` datagrams from a to b on source port `sport`. */
  const send = (sport: number, n: number): void => {
    assert.match(node.net.traffic(node.a, ['udp-send', node.b.ipv4, '6001', String(n), String(PAYLOAD), String(sport)]), new RegExp(`sent ${n}`));
  };
  const udp = (flows: FlowStats[], sport: number): FlowStats[] => flows.filter((f) => f.key.protocol === 'UDP' && f.key.srcPort === sport && f.key.srcIp === node.a.ipv4);
  const read = async (): Promise<FlowStats[]> => (await node.mon.readFlowSnapshotAsync()).flows();

  test('auto picks the iterator on a kernel with BTF, and the first read is a full one', async () => {
    assert.equal(node.mon.flowRead.method, 'iterator', node.mon.flowRead.detail);
    await read();
    assert.equal(node.mon.flowRead.last?.full, true);
  });

  test('1000 datagrams give exactly 1000 packets, and every flow matches a batch read field by field', async () => {
    send(42001, 1000);
    await sleep(100);
    const batch = node.mon.getFlowStats(); // BPF_MAP_LOOKUP_BATCH, every CPU's copy summed here
    const viaIter = await read();
    const [f] = udp(viaIter, 42001);
    assert.ok(f, 'the flow is there');
    assert.equal(f.packets, 1000);
    assert.equal(f.bytes, 1000 * (20 + 8 + PAYLOAD));
    assert.equal(node.mon.flowRead.last?.full, false, 'a delta read');
    const byId = new Map(viaIter.map((x) => [id(x), x]));
    for (const x of batch) {
      const y = byId.get(id(x));
      assert.ok(y, `${id(x)} is in the iterator's read`);
      // Nothing reaches these flows between the two reads but stray control traffic.
      if (y.packets === x.packets) assert.deepEqual(y, x, id(x));
      else assert.ok(y.packets > x.packets, id(x));
    }
  });

  test('a read after nothing changed writes no flow out and still has every flow; then only the changed ones', async () => {
    const ports = Array.from({ length: 20 }, (_, i) => 43000 + i);
    for (const p of ports) send(p, 10);
    await sleep(50);
    await read();
    const quiet = await read();
    assert.ok(node.mon.flowRead.last!.records <= 2, `unchanged flows are not written out (${node.mon.flowRead.last!.records} were; stray control traffic aside)`);
    for (const p of ports) assert.equal(udp(quiet, p)[0]?.packets, 10, `port ${p} still there with its count`);
    const moved = ports.slice(0, 3);
    for (const p of moved) send(p, 5);
    await sleep(50);
    const after = await read();
    const { records } = node.mon.flowRead.last!;
    assert.ok(records >= 3 && records <= 5, `the 3 flows that moved were written out (${records} records)`);
    for (const p of ports) assert.equal(udp(after, p)[0]?.packets, moved.includes(p) ? 15 : 10, `port ${p}`);
    assert.equal(node.mon.flowRead.last!.flows, after.length, 'the table is every flow, not the delta');
  });

  test('an evicted flow leaves the table and the reads; its next packet starts a new flow', async () => {
    send(44001, 30);
    await sleep(50);
    const snap = await node.mon.readFlowSnapshotAsync();
    const evicted = node.mon.evictIdle(snap, 0).map((e) => e.flow);
    assert.equal(udp(evicted, 44001)[0]?.packets, 30, 'final figures');
    assert.equal(udp(await read(), 44001).length, 0, 'gone');
    send(44001, 7);
    await sleep(50);
    assert.equal(udp(await read(), 44001)[0]?.packets, 7, 'counted anew');
  });

  test('a flow deleted behind the monitor\'s back is gone after the next full read, within 61 reads', async () => {
    send(45001, 3);
    await sleep(50);
    const snap = await node.mon.readFlowSnapshotAsync();
    const i = Array.from({ length: snap.count }, (_, k) => k).find((k) => !snap.removed[k] && snap.flow(k).key.srcPort === 45001);
    assert.ok(i !== undefined);
    assert.equal(node.mon.map('knp_flows').delete(snap.key(i)), true);
    let reads = 0;
    while (udp(await read(), 45001).length > 0) {
      reads++;
      assert.ok(reads <= 61, 'still there after 61 reads');
    }
    assert.equal(node.mon.flowRead.last?.full, true, 'a full read removed it');
  });

  test('reads asked for at once are taken one after another, and each returns the whole table', async () => {
    send(47001, 12);
    await sleep(50);
    const reads = await Promise.all([node.mon.readFlowSnapshotAsync(), node.mon.readFlowSnapshotAsync(), node.mon.readFlowSnapshotAsync()]);
    for (const snap of reads) assert.equal(udp(snap.flows(), 47001)[0]?.packets, 12);
    assert.ok(node.mon.flowRead.last!.records <= 2, 'the last of them found nothing new');
  });

  test('flowRead: batch reads as before; a bad value is refused', async () => {
    const m = await NetworkMonitor.create({ flowRead: 'batch', packetSampleRate: 0 });
    try {
      assert.equal(m.flowRead.method, 'batch');
      assert.match(m.flowRead.detail, /asked for/);
      await m.attachToInterface(node.b.hostIf);
      assert.match(node.net.traffic(node.b, ['udp-send', node.a.ipv4, '6002', '250', String(PAYLOAD), '46001']), /sent 250/);
      await sleep(50);
      const f = (await m.readFlowSnapshotAsync()).flows().find((x) => x.key.srcPort === 46001);
      assert.equal(f?.packets, 250);
      assert.equal(m.flowRead.last, undefined);
    } finally {
      await m.close();
    }
    await assert.rejects(NetworkMonitor.create({ flowRead: 'bogus' as 'batch' }), /flowRead must be auto, iterator or batch/);
  });
});
