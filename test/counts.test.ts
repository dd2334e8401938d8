/**
 * Known traffic between two pod namespaces gives exact counts in the kernel
 * tables: UDP over IPv4 and IPv6, a TCP transfer against the interface's own
 * counters, ICMP echo, and VLAN-tagged frames.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { IFACE_FLAG_SLOTS } from '../src/abi/layouts.js';
import { NetworkMonitor, type FlowStats } from 'kubenetprobe';
import { TestNet, onTestNode, type Pod } from './helpers/testnet.js';
import { sleep, waitFor } from './helpers/attached.js';
import { ethernet, ipv4, mac, udp } from '../tools/frames.js';

function udpFlow(flows: FlowStats[], src: string, dst: string, sport: number, dport: number, ifindex: number, direction: 'ingress' | 'egress'): FlowStats[] {
  return flows.filter(
    (f) =>
      f.key.protocol === 'UDP' &&
      f.key.srcIp === src &&
      f.key.dstIp === dst &&
      f.key.srcPort === sport &&
      f.key.dstPort === dport &&
      f.key.ifindex === ifindex &&
      f.key.direction === direction,
  );
}

describe('exact counts on a two-pod node', () => {
  let net: TestNet;
  let mon: NetworkMonitor;
  let a: Pod;
  let b: Pod;
  let ifA: number;
  let ifB: number;

  before(async () => {
    net = TestNet.create(2);
    a = net.pod('a');
    b = net.pod('b');
    mon = await NetworkMonitor.create({ packetSampleRate: 0 });
    ifA = (await mon.attachToInterface(a.hostIf)).ifindex;
    ifB = (await mon.attachToInterface(b.hostIf)).ifindex;
  });

  after(async () => {
    await mon?.close();
    await net?.close();
  });

  for (const family of ['ipv4', 'ipv6'] as const) {
    test(`1000 UDP datagrams over ${family} give exactly 1000 packets in that flow, counted once where they enter the node`, async () => {
      const N = 1000;
      const PAYLOAD = 200;
      const src = family === 'ipv4' ? a.ipv4 : a.ipv6;
      const dst = family === 'ipv4' ? b.ipv4 : b.ipv6;
      const sport = family === 'ipv4' ? 40001 : 40002;
      const dport = family === 'ipv4' ? 5001 : 5002;
      const leavingB = (): number => mon.getPacketStats().interfaces.find((c) => c.ifindex === ifB && c.hook === 'tc-egress')?.packets.parsed ?? 0;
      const leftBefore = leavingB();
      const out = net.traffic(a, ['udp-send', dst, String(dport), String(N), String(PAYLOAD), String(sport)]);
      assert.match(out, /sent 1000/);
      // The sender's kernel holds the first datagrams until it has resolved b's address
      // (ARP, IPv6 neighbour discovery), which now and then takes longer than a fixed wait:
      // wait for them to arrive, then count exactly.
      const arrived = (): number => udpFlow(mon.getFlowStats(), src, dst, sport, dport, ifA, 'ingress')[0]?.packets ?? 0;
      await waitFor(`${N} datagrams at ${a.hostIf}`, () => arrived() >= N, 5000).catch(() => {});
      await sleep(100);
      const flows = mon.getFlowStats();
      const ipHeader = family === 'ipv4' ? 20 : 40;
      const bytes = N * (ipHeader + 8 + PAYLOAD);
      // Host side of pod a: the datagrams enter the node (ingress).
      const atA = udpFlow(flows, src, dst, sport, dport, ifA, 'ingress');
      assert.equal(atA.length, 1, `one flow at ${a.hostIf} ingress`);
      assert.equal(atA[0]!.packets, N);
      assert.equal(atA[0]!.bytes, bytes);
      assert.equal(atA[0]!.key.family, family);
      assert.equal(atA[0]!.interface, a.hostIf);
      // Host side of pod b: they leave towards b through TC egress, which
      // counts the frames on the interface but not again in a flow: a
      // packet is one flow's once per node.
      assert.ok(leavingB() - leftBefore >= N, `${b.hostIf} tc-egress counted the frames`);
      assert.equal(udpFlow(flows, src, dst, sport, dport, ifB, 'egress').length, 0, `no second flow at ${b.hostIf} egress`);
      // And never in the wrong direction.
      assert.equal(udpFlow(flows, src, dst, sport, dport, ifA, 'egress').length, 0);
      assert.equal(udpFlow(flows, src, dst, sport, dport, ifB, 'ingress').length, 0);
      assert.ok(atA[0]!.lastSeen >= atA[0]!.firstSeen);
      assert.ok(Math.abs(atA[0]!.lastSeen.getTime() - Date.now()) < 60_000, 'timestamps convert to wall-clock time');
    });
  }

  test('first and last seen follow the packets, to the kernel tick', async () => {
    const send = () => net.traffic(a, ['udp-send', b.ipv4, '5090', '5', '10', '40090']);
    const t0 = Date.now();
    send();
    const t1 = Date.now();
    await sleep(1500);
    const t2 = Date.now();
    send();
    const t3 = Date.now();
    await sleep(50);
    const f = udpFlow(mon.getFlowStats(), a.ipv4, b.ipv4, 40090, 5090, ifA, 'ingress')[0];
    assert.ok(f, 'the flow is there');
    assert.equal(f.packets, 10);
    const tick = 10; // ms: one jiffy at HZ=100, the coarsest
    assert.ok(f.firstSeen.getTime() >= t0 - tick && f.firstSeen.getTime() <= t1 + tick, `firstSeen ${f.firstSeen.toISOString()} within the first send`);
    assert.ok(f.lastSeen.getTime() >= t2 - tick && f.lastSeen.getTime() <= t3 + tick, `lastSeen ${f.lastSeen.toISOString()} within the second send [${new Date(t2).toISOString()}, ${new Date(t3).toISOString()}]`);
  });

  test('ICMP echo gives exactly its count, requests and replies apart', async () => {
    const N = 25;
    net.exec(a, 'ping', ['-c', String(N), '-i', '0.01', '-W', '2', '-q', b.ipv4]);
    await sleep(100);
    const flows = mon.getFlowStats().filter((f) => f.key.protocol === 'ICMP' && f.key.direction === 'ingress');
    // Each counted where it entered the node: requests at a's veth, replies at b's.
    const requests = flows.filter((f) => f.key.icmp?.type === 8 && f.key.srcIp === a.ipv4 && f.key.ifindex === ifA);
    const replies = flows.filter((f) => f.key.icmp?.type === 0 && f.key.srcIp === b.ipv4 && f.key.ifindex === ifB);
    assert.equal(mon.getFlowStats().filter((f) => f.key.protocol === 'ICMP' && f.key.direction === 'egress' && (f.key.srcIp === a.ipv4 || f.key.srcIp === b.ipv4)).length, 0, 'none again on the way out');
    assert.equal(requests.reduce((s, f) => s + f.packets, 0), N);
    assert.equal(replies.reduce((s, f) => s + f.packets, 0), N);
    // ping uses one identifier per run: one flow each way
    assert.equal(requests.length, 1);
    assert.equal(requests[0]!.key.srcPort, replies[0]!.key.srcPort, 'echo identifier is kept as the source port');
    assert.equal(requests[0]!.bytes, N * 84, 'default ping: 20 IP + 8 ICMP + 56 data');
  });
});

describe('one flow per packet per node: where a frame is counted', () => {
  const sent = (flows: FlowStats[], port: number) => flows.filter((f) => f.key.protocol === 'UDP' && f.key.dstPort === port);

  // Interfaces numbered below 65 536 keep their flags in an array slot, the rest in a hash: both ways.
  for (const [where, hostIfIndexFrom] of [
    ['', undefined],
    [' (interfaces numbered above the array slots)', 70_000 + randomInt(1_000_000)],
  ] as const) {
    test(`a frame from an interface we do not watch is counted at the egress where we first see it, and again once its ingress is watched and then not${where}`, async () => {
      await onTestNode({ ipv6: false, hostIfIndexFrom }, { packetSampleRate: 0 }, async ({ net, mon, a, b }) => {
        const N = 300;
        // Only b's veth: a's frames come in unwatched, so b's TC egress is their first sighting.
        const ifB = (await mon.attachToInterface(b.hostIf)).ifindex;
        assert.match(net.traffic(a, ['udp-send', b.ipv4, '6601', String(N), '32', '46601']), /sent 300/);
        await sleep(100);
        let flows = sent(mon.getFlowStats(), 6601);
        assert.deepEqual(flows.map((f) => [f.key.ifindex, f.key.direction, f.packets]), [[ifB, 'egress', N]]);

        // Watch a's veth too: now they are counted entering at a, and b's egress leaves them be.
        const ifA = (await mon.attachToInterface(a.hostIf)).ifindex;
        if (hostIfIndexFrom !== undefined) assert.ok(ifA >= IFACE_FLAG_SLOTS && ifB >= IFACE_FLAG_SLOTS, `ifindex ${ifA}, ${ifB}`);
        assert.match(net.traffic(a, ['udp-send', b.ipv4, '6602', String(N), '32', '46602']), /sent 300/);
        await sleep(100);
        flows = sent(mon.getFlowStats(), 6602);
        assert.deepEqual(flows.map((f) => [f.key.ifindex, f.key.direction, f.packets]), [[ifA, 'ingress', N]]);

        // And after a's veth is let go, b's egress counts them again: nothing is lost.
        assert.equal(await mon.detachFromInterface(a.hostIf), true);
        assert.match(net.traffic(a, ['udp-send', b.ipv4, '6603', String(N), '32', '46603']), /sent 300/);
        await sleep(100);
        flows = sent(mon.getFlowStats(), 6603);
        assert.deepEqual(flows.map((f) => [f.key.ifindex, f.key.direction, f.packets]), [[ifB, 'egress', N]]);
      });
    });
  }
});

describe('a TCP transfer matches the interface counters', () => {
  test('packets seen by TC equal rx/tx_packets of the veth, and all of them land in flows', async () => {
    await onTestNode({ ipv6: false }, { packetSampleRate: 0 }, async ({ net, mon, a, b }) => {
      await net.background(b, ['tcp-server', '7000']);
      const { ifindex } = await mon.attachToInterface(a.hostIf);
      await sleep(200);

      // Snapshot both sides while the link is quiet; retry if a stray frame lands in between.
      const snapshot = (): { rx: number; tx: number; tcIn: number; tcOut: number } => {
        for (;;) {
          const rx = net.ifStat(a.hostIf, 'rx_packets');
          const tx = net.ifStat(a.hostIf, 'tx_packets');
          const st = mon.getPacketStats().interfaces.filter((c) => c.ifindex === ifindex);
          const tcIn = st.find((c) => c.hook === 'tc-ingress')?.packets.total ?? 0;
          const tcOut = st.find((c) => c.hook === 'tc-egress')?.packets.total ?? 0;
          if (net.ifStat(a.hostIf, 'rx_packets') === rx && net.ifStat(a.hostIf, 'tx_packets') === tx) return { rx, tx, tcIn, tcOut };
        }
      };
      const before = snapshot();
      const out = net.traffic(a, ['tcp-send', b.ipv4, '7000', String(8 << 20)]);
      assert.match(out, /echoed 8388608/);
      await sleep(300);
      const afterSnap = snapshot();

      const rx = afterSnap.rx - before.rx;
      const tx = afterSnap.tx - before.tx;
      assert.ok(rx > 100, `the transfer produced traffic (${rx} frames)`);
      assert.equal(afterSnap.tcIn - before.tcIn, rx, 'TC ingress = veth rx_packets');
      assert.equal(afterSnap.tcOut - before.tcOut, tx, 'TC egress = veth tx_packets');

      const tcp = mon
        .getFlowStats()
        .filter((f) => f.key.protocol === 'TCP' && f.key.ifindex === ifindex && (f.key.dstPort === 7000 || f.key.srcPort === 7000));
      const tcpIn = tcp.filter((f) => f.key.direction === 'ingress');
      const tcpOut = tcp.filter((f) => f.key.direction === 'egress');
      assert.equal(tcpIn.length, 1);
      assert.equal(tcpOut.length, 1);
      const st = mon.getPacketStats().interfaces.filter((c) => c.ifindex === ifindex);
      const parsedIn = st.find((c) => c.hook === 'tc-ingress')!.packets.parsed;
      const flowsIn = mon.getFlowStats().filter((f) => f.key.ifindex === ifindex && f.key.direction === 'ingress');
      assert.equal(flowsIn.reduce((s, f) => s + f.packets, 0), parsedIn, 'coverage: every parsed packet is in a flow');
      assert.equal(tcpIn[0]!.synCount, 1);
      assert.ok(tcpIn[0]!.finCount >= 1);
      for (const flag of ['SYN', 'ACK', 'FIN']) assert.ok(tcpIn[0]!.tcpFlags.includes(flag), `${flag} seen`);
      // TCP segments on veth keep their headers linear: nothing needed pulling.
      assert.equal(mon.getPacketStats().headersPulled, 0);
    });
  });
});

describe('VLAN', () => {
  test('802.1Q and QinQ (802.1ad + 802.1Q) tagged frames are parsed by TC and XDP and counted exactly', async () => {
    await onTestNode({ ipv6: false }, { packetSampleRate: 0 }, async ({ net, mon, a, b }) => {
      const { ifindex } = await mon.attachToInterface(a.hostIf, { xdp: 'generic' });
      const dst = mac(net.mac(b));
      const src = mac(net.mac(a));
      const single = ethernet(dst, src, ipv4('198.19.0.1', '198.19.0.2', udp(41000, 6100, Buffer.alloc(64))), [[0x8100, 100]]);
      const qinq = ethernet(dst, src, ipv4('198.19.0.1', '198.19.0.2', udp(41001, 6101, Buffer.alloc(32))), [
        [0x88a8, 200],
        [0x8100, 100],
      ]);
      assert.match(net.rawSend(a, 300, [single, qinq]), /sent 600/);
      await sleep(100);
      const flows = mon.getFlowStats().filter((f) => f.key.ifindex === ifindex && f.key.protocol === 'UDP' && f.key.direction === 'ingress');
      const one = flows.find((f) => f.key.dstPort === 6100);
      const two = flows.find((f) => f.key.dstPort === 6101);
      assert.ok(one && two, 'both tagged flows are in the table');
      assert.equal(one.packets, 300);
      assert.equal(one.bytes, 300 * (20 + 8 + 64));
      assert.equal(one.key.srcIp, '198.19.0.1');
      assert.equal(one.key.srcPort, 41000);
      assert.equal(two.packets, 300);
      assert.equal(two.bytes, 300 * (20 + 8 + 32));
      // XDP sees the frames with their tags in the data.
      const xdp = mon.getPacketStats().interfaces.find((c) => c.ifindex === ifindex && c.hook === 'xdp');
      assert.ok(xdp, 'XDP counted frames');
      assert.ok(xdp.packets.parsed >= 600, `XDP parsed the tagged frames (${xdp.packets.parsed})`);
      assert.equal(xdp.packets.truncated + xdp.packets.malformed, 0);
    });
  });
});

describe('a full flow table', () => {
  test('inserts beyond capacity fail and are counted, packet for packet; the flows inside keep exact counts', async () => {
    await onTestNode({ ipv6: false }, { packetSampleRate: 0, flowTableCapacity: 8 }, async ({ net, mon, a, b }) => {
      // Settle ARP so the only IP packets on pod a's ingress are the datagrams.
      net.exec(a, 'ping', ['-c', '1', '-W', '2', b.ipv4]);
      const { ifindex } = await mon.attachToInterface(a.hostIf, { tc: { egress: false } });
      assert.match(net.traffic(a, ['udp-spray', b.ipv4, '6000', '20', '10', '16']), /sent 200/);
      await sleep(100);
      const st = mon.getPacketStats();
      const flows = mon.getFlowStats().filter((f) => f.key.ifindex === ifindex);
      assert.equal(st.ingress.packets.parsed, 200);
      assert.equal(flows.length, 8, 'the table holds its capacity');
      assert.deepEqual(
        flows.map((f) => f.key.dstPort).sort((x, y) => x - y),
        [6000, 6001, 6002, 6003, 6004, 6005, 6006, 6007],
        'the first eight flows got in',
      );
      for (const f of flows) assert.equal(f.packets, 10);
      assert.equal(st.flowTable.insertFailed, 120, '12 flows x 10 packets could not be recorded');
      assert.equal(st.flowTable.entries, 8);
      assert.equal(st.flowTable.capacity, 8);
      // Coverage: parsed packets = packets in flows + counted failures.
      assert.equal(flows.reduce((s, f) => s + f.packets, 0) + st.flowTable.insertFailed, st.ingress.packets.parsed);
    });
  });
});

describe('evicting idle flows', () => {
  test('idle flows leave the table with their final figures; busy ones stay; a later packet starts a new flow', async () => {
    await onTestNode({ ipv6: false }, { packetSampleRate: 0 }, async ({ net, mon, a, b }) => {
      const { ifindex } = await mon.attachToInterface(a.hostIf, { tc: { egress: false } });
      const mine = (f: FlowStats): boolean => f.key.ifindex === ifindex && f.key.protocol === 'UDP';
      net.traffic(a, ['udp-send', b.ipv4, '5701', '100', '30', '46001']);
      await sleep(600);
      net.traffic(a, ['udp-send', b.ipv4, '5702', '50', '30', '46002']);
      await sleep(50);
      const before = mon.getPacketStats().flowTable.entries;

      const evicted = mon.evictIdleFlows(400).filter(mine);
      assert.deepEqual(
        evicted.map((f) => [f.key.dstPort, f.packets, f.bytes]),
        [[5701, 100, 100 * (20 + 8 + 30)]],
        'the idle flow, with its exact final counts',
      );
      const left = mon.getFlowStats().filter(mine);
      assert.deepEqual(
        left.map((f) => [f.key.dstPort, f.packets]),
        [[5702, 50]],
        'the recent flow stays',
      );
      assert.ok(mon.getPacketStats().flowTable.entries <= before - 1, 'entries count the eviction');

      net.traffic(a, ['udp-send', b.ipv4, '5701', '10', '30', '46001']);
      await sleep(50);
      const again = mon.getFlowStats().filter((f) => mine(f) && f.key.dstPort === 5701);
      assert.equal(again.length, 1);
      assert.equal(again[0]!.packets, 10, 'a new flow, counted from zero');
      assert.ok(again[0]!.firstSeen.getTime() > evicted[0]!.lastSeen.getTime());
      assert.throws(() => mon.evictIdleFlows(-1), /idleMs must be a non-negative number/);
    });
  });
});
