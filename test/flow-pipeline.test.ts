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
