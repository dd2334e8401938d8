/**
 * Evicting flows by the knp_flow_evict program (bpf/flow-evict.bpf.h),
 * against the real kernel: more flows than one run takes, exact final
 * figures (the same a batch read gives), and flows already gone.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetworkMonitor, VerifierError, type FlowStats } from 'kubenetprobe';
import { packageRoot } from '../src/paths.js';
import { TestNet } from './helpers/testnet.js';
import { sleep } from './helpers/attached.js';
import { monitoredPods } from './helpers/monitored-pods.js';
import { atLeast, kernelFeatures } from '../src/loader/features.js';

const PAYLOAD = 40;
const FIRST_PORT = 20000;
/** More than one run of the program evicts (KNP_FLOW_EVICT_BATCH, 4096). */
const PORTS = 5000;
const PER_PORT = 3;

const old = !atLeast(kernelFeatures().version, [5, 19]);

describe('evicting flows by the knp_flow_evict program', { skip: old ? `kernel ${kernelFeatures().release} is older than 5.19: flows are evicted one system call each` : false }, () => {
  const node = monitoredPods();

  const sprayed = (flows: FlowStats[]): FlowStats[] =>
    flows.filter((f) => f.key.protocol === 'UDP' && f.key.srcIp === node.a.ipv4 && f.key.dstPort >= FIRST_PORT && f.key.dstPort < FIRST_PORT + PORTS);
  const byPort = (flows: FlowStats[]): Map<number, FlowStats> => new Map(flows.map((f) => [f.key.dstPort, f]));

  test('a kernel from 5.19 on evicts by the program', () => {
    // Fails, not skips, where a new kernel cannot take it.
    assert.equal(node.mon.flowEvict.method, 'program', node.mon.flowEvict.detail);
  });

  test(`${PORTS} flows leave in two runs, each with exactly its ${PER_PORT} datagrams and the figures a batch read gives`, async () => {
    assert.match(node.net.traffic(node.a, ['udp-spray', node.b.ipv4, String(FIRST_PORT), String(PORTS), String(PER_PORT), String(PAYLOAD)], 120000), new RegExp(`sent ${PORTS * PER_PORT}`));
    await sleep(100);
    // The links carry stray control traffic, so flows come and go besides: evictions are counted as inserts - entries.
    const evictedSoFar = (): number => {
      const t = node.mon.getPacketStats().flowTable;
      return t.inserted - t.entries;
    };
    // Every CPU's copy, summed in user space: what the program's sums must equal.
    const batch = byPort(sprayed(node.mon.getFlowStats()));
    assert.equal(batch.size, PORTS);
    const snap = await node.mon.readFlowSnapshotAsync();
    const stale = await node.mon.readFlowSnapshotAsync(); // the same table, read again

    const evictedAtStart = evictedSoFar();
    const all = node.mon.evictIdle(snap, 0).map((e) => e.flow);
    assert.equal(evictedSoFar() - evictedAtStart, all.length, 'each eviction counted once');
    const evicted = sprayed(all);
    assert.equal(evicted.length, PORTS);
    for (const f of evicted) {
      assert.equal(f.packets, PER_PORT, `port ${f.key.dstPort}`);
      assert.equal(f.bytes, PER_PORT * (20 + 8 + PAYLOAD));
      const want = batch.get(f.key.dstPort)!;
      assert.deepEqual({ ...f, lastSeen: f.lastSeen.getTime(), firstSeen: f.firstSeen.getTime() }, { ...want, lastSeen: want.lastSeen.getTime(), firstSeen: want.firstSeen.getTime() });
    }
    assert.equal(new Set(evicted.map((f) => f.key.dstPort)).size, PORTS, 'each flow once');
    assert.equal(sprayed(node.mon.getFlowStats()).length, 0, 'gone from the kernel table');
    assert.equal(sprayed((await node.mon.readFlowSnapshotAsync()).flows()).length, 0, 'gone from the reads');

    // Evicting from a read taken before: every one of them is gone already, and nothing is counted twice.
    const evictedBefore = evictedSoFar();
    const again = node.mon.evictIdle(stale, 0).map((e) => e.flow);
    assert.equal(sprayed(again).length, 0);
    assert.equal(evictedSoFar() - evictedBefore, again.length, 'the evictions counted are exactly the flows removed');
  });

  test('flowEvict: lookup-and-delete takes the same flows with the same figures; a bad value is refused', async () => {
    await assert.rejects(NetworkMonitor.create({ flowEvict: 'sometimes' as 'auto' }), /flowEvict must be auto, program or lookup-and-delete, got sometimes/);
    // A second monitor on the same interface counts the same packets in a table of its own.
    const other = await NetworkMonitor.create({ packetSampleRate: 0, flowEvict: 'lookup-and-delete' });
    try {
      assert.equal(other.flowEvict.method, 'lookup-and-delete');
      assert.match(other.flowEvict.detail, /asked for/);
      await other.attachToInterface(node.a.hostIf);
      assert.match(node.net.traffic(node.a, ['udp-spray', node.b.ipv4, String(FIRST_PORT), '300', '4', String(PAYLOAD)], 60000), /sent 1200/);
      await sleep(100);
      const byProgram = byPort(sprayed(node.mon.evictIdle(await node.mon.readFlowSnapshotAsync(), 0).map((e) => e.flow)));
      const byCalls = byPort(sprayed(other.evictIdle(await other.readFlowSnapshotAsync(), 0).map((e) => e.flow)));
      assert.equal(byProgram.size, 300);
      assert.equal(byCalls.size, 300);
      const figures = (f: FlowStats) => [f.key, f.interface, f.packets, f.bytes, f.tcpFlags, f.synCount, f.finCount, f.rstCount, f.opened];
      for (const [port, f] of byProgram) {
        assert.equal(f.packets, 4);
        assert.deepEqual(figures(f), figures(byCalls.get(port)!), `port ${port}`);
      }
      assert.equal(sprayed(other.getFlowStats()).length, 0);
    } finally {
      await other.close();
    }
  });

  test('a flow evicted then sent to again is counted anew', async () => {
    assert.match(node.net.traffic(node.a, ['udp-spray', node.b.ipv4, String(FIRST_PORT), '1', '5', String(PAYLOAD)]), /sent 5/);
    await sleep(50);
    const [f] = sprayed(node.mon.evictIdle(await node.mon.readFlowSnapshotAsync(), 0).map((e) => e.flow));
    assert.equal(f?.packets, 5);
    assert.match(node.net.traffic(node.a, ['udp-spray', node.b.ipv4, String(FIRST_PORT), '1', '2', String(PAYLOAD)]), /sent 2/);
    await sleep(50);
    assert.equal(sprayed(node.mon.getFlowStats())[0]?.packets, 2);
  });
});

describe('a kernel that refuses the evict program', { skip: old ? `kernel ${kernelFeatures().release} is older than 5.19` : false }, () => {
  let dir: string;
  let obj: string;
  before(() => {
    // monitor.bpf.c with a knp_flow_evict the verifier must refuse: its per-CPU lookup returns a number, not a pointer.
    dir = mkdtempSync(join(tmpdir(), 'knp-evict-'));
    const src = join(dir, 'refused.bpf.c');
    obj = join(dir, 'refused.bpf.o');
    writeFileSync(src, '#define bpf_map_lookup_percpu_elem(map, key, cpu) ((void *)(long)((cpu) + 1))\n#include "monitor.bpf.c"\n');
    const arch = `/usr/include/${execFileSync('uname', ['-m'], { encoding: 'utf8' }).trim()}-linux-gnu`;
    execFileSync('clang', ['-O2', '-g', '-target', 'bpf', '-mcpu=v3', `-I${arch}`, `-I${join(packageRoot(), 'bpf')}`, '-c', src, '-o', obj]);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("'auto' loads without it, says why, and evicts by lookup-and-delete with exact figures; 'program' is a verifier error", async () => {
    const net = TestNet.create(2, { ipv6: false });
    const mon = await NetworkMonitor.fromObjectFile(obj, { packetSampleRate: 0 });
    try {
      assert.equal(mon.flowEvict.method, 'lookup-and-delete');
      assert.match(mon.flowEvict.detail, /^lookup-and-delete: the kernel refused knp_flow_evict \(verifier: .*invalid mem access.*\)$/);
      assert.equal(mon.flowRead.method, 'iterator', 'the other programs load as before');
      const [a, b] = [net.pod('a'), net.pod('b')];
      await mon.attachToInterface(a.hostIf);
      assert.match(net.traffic(a, ['udp-spray', b.ipv4, String(FIRST_PORT), '20', '3', String(PAYLOAD)]), /sent 60/);
      await sleep(100);
      const evicted = mon.evictIdleFlows(0).filter((f) => f.key.protocol === 'UDP' && f.key.srcIp === a.ipv4);
      assert.equal(evicted.length, 20);
      assert.ok(evicted.every((f) => f.packets === 3));
    } finally {
      await mon.close();
      await net.close();
    }
    await assert.rejects(NetworkMonitor.fromObjectFile(obj, { flowEvict: 'program' }), (err: unknown) => err instanceof VerifierError && /invalid mem access/.test(err.log));
  });
});
