/**
 * The flow pipeline on real traffic: records add up to exactly what was
 * sent, idle flows leave the kernel table with a final record, long flows
 * get active records.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFlowPipeline, type PipelineCycle } from '../src/agent/flow-pipeline.js';
import { onTestNode } from './helpers/testnet.js';
import { sleep, waitFor } from './helpers/attached.js';

test('active and final records of a UDP flow add up to exactly the datagrams sent, and the idle flow leaves the table', async () => {
  await onTestNode({ ipv6: false }, { packetSampleRate: 0 }, async ({ net, mon, a, b }) => {
    const { ifindex } = await mon.attachToInterface(a.hostIf, { tc: { egress: false } });
    const cycles: PipelineCycle[] = [];
    let maxRate = 0;
    const pipeline = startFlowPipeline(mon, { intervalMs: 100, idleTimeoutMs: 1500, activeTimeoutMs: 250 }, (c) => {
      cycles.push(c);
      // Rates as each cycle computed them (the accounter keeps only the latest).
      for (let i = 0; i < c.snapshot.count; i++) {
        const f = c.snapshot.flow(i);
        if (f.key.ifindex === ifindex && f.key.dstPort === 5801) maxRate = Math.max(maxRate, c.rate(i)?.packetsPerSec ?? 0);
      }
    });
    try {
      for (let i = 0; i < 4; i++) {
        net.traffic(a, ['udp-send', b.ipv4, '5801', '100', '40', '47001']);
        await sleep(150);
      }
      const mine = (c: PipelineCycle) => c.records.filter((r) => r.flow.key.ifindex === ifindex && r.flow.key.dstPort === 5801);
      await waitFor('the final record', () => cycles.some((c) => mine(c).some((r) => r.reason === 'final')), 8000);
      const records = cycles.flatMap(mine);
      assert.ok(records.filter((r) => r.reason === 'active').length >= 1, 'a long flow gets active records');
      assert.equal(records.filter((r) => r.reason === 'final').length, 1);
      assert.equal(records.reduce((s, r) => s + r.deltaPackets, 0), 400, 'exactly the 400 datagrams');
      assert.equal(records.reduce((s, r) => s + r.deltaBytes, 0), 400 * (20 + 8 + 40));
      assert.ok(maxRate > 0, 'rates while it ran');
      assert.ok(!mon.getFlowStats().some((f) => f.key.dstPort === 5801), 'gone from the kernel table');
      const last = cycles.at(-1)!;
      assert.ok(last.durationMs < 1000);
    } finally {
      await pipeline.close();
    }
  });
});

test('a closed TCP connection leaves the table once idle for endedTimeoutMs, with exact final figures; an idle UDP flow waits for idleTimeoutMs', async () => {
  await onTestNode({ ipv6: false }, { packetSampleRate: 0 }, async ({ net, mon, a, b }) => {
    await net.background(b, ['tcp-server', '7300']);
    // Both veths, as pods of one node: each direction is counted where it enters.
    const ifA = (await mon.attachToInterface(a.hostIf)).ifindex;
    const ifB = (await mon.attachToInterface(b.hostIf)).ifindex;
    const cycles: PipelineCycle[] = [];
    const pipeline = startFlowPipeline(mon, { intervalMs: 100, idleTimeoutMs: 30_000, endedTimeoutMs: 400, activeTimeoutMs: 60_000 }, (c) => cycles.push(c));
    try {
      net.traffic(a, ['udp-send', b.ipv4, '7301', '50', '40', '47301']);
      net.traffic(a, ['tcp-send', b.ipv4, '7300', '20000']);
      const tcp = (f: { key: { protocol: string; srcPort: number; dstPort: number } }): boolean => f.key.protocol === 'TCP' && (f.key.dstPort === 7300 || f.key.srcPort === 7300);
      const inTable = (): number => mon.getFlowStats().filter(tcp).length;
      assert.equal(inTable(), 2, 'both directions of the connection, once each');
      const tcpPackets = mon.getFlowStats().filter(tcp).map((f) => f.packets);
      await waitFor('the TCP flows to leave the table', () => inTable() === 0, 5000);
      const finals = cycles.flatMap((c) => c.records).filter((r) => r.reason === 'final' && tcp(r.flow));
      assert.equal(finals.length, 2, 'one final record per direction');
      assert.deepEqual(finals.map((r) => r.deltaPackets).sort(), [...tcpPackets].sort(), 'every packet in the final records');
      assert.ok(finals.every((r) => r.flow.finCount >= 1), 'both ended with a FIN');
      assert.deepEqual(new Set(finals.map((r) => r.flow.key.ifindex)), new Set([ifA, ifB]));
      // The UDP flow, idle as long, is still there: it has no end to see.
      const udp = mon.getFlowStats().filter((f) => f.key.protocol === 'UDP' && f.key.srcPort === 47301);
      assert.equal(udp.length, 1);
      assert.equal(udp[0]!.packets, 50);
    } finally {
      await pipeline.close();
    }
  });
});
