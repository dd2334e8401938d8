/**
 * Packet events at the sampling rate set, security events from crafted TCP
 * flag anomalies with gap-free sequence numbers, and loss that is counted
 * and reported when a ring overflows.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LostEvents, MonitorEvent, PacketInfo, SecurityEvent } from 'kubenetprobe';
import { TestNet, onTestNode } from './helpers/testnet.js';
import { sleep, waitFor } from './helpers/attached.js';
import { TCP, ethernet, ipv4, ipv6, mac, tcp } from '../tools/frames.js';

/** Everything the iterator yields until it has been idle for `idleMs`; then ends it. */
async function collect(it: AsyncIterableIterator<MonitorEvent>, idleMs: number): Promise<MonitorEvent[]> {
  const out: MonitorEvent[] = [];
  for (;;) {
    const r = await Promise.race([it.next(), sleep(idleMs).then(() => 'idle' as const)]);
    if (r === 'idle' || r.done) break;
    out.push(r.value);
  }
  await it.return?.();
  return out;
}

/** Runs the sender on CPU 0 only: veth delivery then runs TC on that CPU too. */
function pinnedUdp(net: TestNet, args: string[]): string {
  const pod = net.pod('a');
  return net.exec(pod, 'taskset', ['-c', '0', process.execPath, ...net.trafficArgs(args)]);
}

describe('packet events', () => {
  test('sampling 1 in 1 delivers every packet of a flow, decoded', async () => {
    await onTestNode({ ipv6: false }, { packetSampleRate: 1 }, async ({ net, mon, a, b }) => {
      const { ifindex } = await mon.attachToInterface(a.hostIf, { tc: { egress: false } });
      const got: PacketInfo[] = [];
      mon.on('packet', (p) => {
        if (p.key.protocol === 'UDP' && p.key.dstPort === 5300) got.push(p);
      });
      mon.startEventProcessing();
      net.traffic(a, ['udp-send', b.ipv4, '5300', '500', '100', '43000']);
      await waitFor('500 packet events', () => got.length >= 500);
      await sleep(50);
      assert.equal(got.length, 500);
      const p = got[0]!;
      assert.equal(p.key.srcIp, a.ipv4);
      assert.equal(p.key.dstIp, b.ipv4);
      assert.equal(p.key.srcPort, 43000);
      assert.equal(p.key.direction, 'ingress');
      assert.equal(p.key.ifindex, ifindex);
      assert.equal(p.interface, a.hostIf);
      assert.equal(p.hook, 'tc-ingress');
      assert.equal(p.packetSize, 14 + 20 + 8 + 100);
      assert.equal(p.ipLength, 20 + 8 + 100);
      assert.ok(Math.abs(p.timestamp.getTime() - Date.now()) < 10_000);
      const st = mon.getPacketStats();
      assert.equal(st.events.packet.dropped, 0);
    });
  });

  test('sampling 1 in 10 delivers exactly a tenth of the packets seen on one CPU', async () => {
    await onTestNode({ ipv6: false }, { packetSampleRate: 10 }, async ({ net, mon, a, b }) => {
      await mon.attachToInterface(a.hostIf, { tc: { egress: false } });
      // Settle ARP first so the only packets pod a sends next are the datagrams.
      net.exec(a, 'ping', ['-c', '1', '-W', '2', b.ipv4]);
      await sleep(100);
      const before = mon.getPacketStats().ingress.packets.parsed;
      const it = mon.events();
      // Whatever tick CPU 0 starts from (0-9), 1000 more packets cross the
      // 1-in-10 boundary exactly 100 times.
      assert.match(pinnedUdp(net, ['udp-send', b.ipv4, '5301', '1000', '50', '43001']), /sent 1000/);
      await sleep(100);
      const parsed = mon.getPacketStats().ingress.packets.parsed - before;
      assert.equal(parsed, 1000);
      const udp = (await collect(it, 800))
        .filter((e) => e.kind === 'packet' && e.packet.key.dstPort === 5301);
      assert.equal(udp.length, 100, `1000 packets on one CPU at 1 in 10 give 100 events, got ${udp.length}`);
      assert.equal(mon.getPacketStats().events.packet.dropped, 0);
    });
  });
});

describe('security events', () => {
  test('crafted NULL, XMAS, SYN+FIN and SYN+RST packets give typed events with the 5-tuple and gap-free sequence numbers', async () => {
    // No per-source rate limit here: every crafted packet is its own event.
    await onTestNode({}, { packetSampleRate: 0, detectors: { eventIntervalMs: 0 } }, async ({ net, mon, a, b }) => {
      await mon.attachToInterface(a.hostIf, { tc: { egress: false } });
      const events: SecurityEvent[] = [];
      mon.on('security', (e) => events.push(e));
      const lost: LostEvents[] = [];
      mon.on('lost', (l) => lost.push(l));
      mon.startEventProcessing();
      const dst = mac(net.mac(b));
      const src = mac(net.mac(a));
      const cases = [
        { flags: 0, type: 'tcp-null-scan', sport: 50001 },
        { flags: TCP.FIN | TCP.PSH | TCP.URG, type: 'tcp-xmas-scan', sport: 50002 },
        { flags: TCP.SYN | TCP.FIN, type: 'tcp-syn-fin', sport: 50003 },
        { flags: TCP.SYN | TCP.RST, type: 'tcp-syn-rst', sport: 50004 },
      ];
      const frames = cases.map((c) => ethernet(dst, src, ipv4(a.ipv4, b.ipv4, tcp(c.sport, 80, c.flags))));
      frames.push(ethernet(dst, src, ipv6(a.ipv6, b.ipv6, tcp(50005, 443, 0))));
      // Benign traffic must not trigger anything.
      frames.push(ethernet(dst, src, ipv4(a.ipv4, b.ipv4, tcp(50006, 80, TCP.SYN))));
      frames.push(ethernet(dst, src, ipv4(a.ipv4, b.ipv4, tcp(50006, 80, TCP.ACK | TCP.PSH))));
      assert.match(net.rawSend(a, 5, frames), /sent 35/);
      await waitFor('25 security events', () => events.length >= 25);
      await sleep(200);
      mon.pollEvents();
      assert.equal(events.length, 25, 'five of each anomaly, none for the benign packets');
      for (const c of cases) {
        const mine = events.filter((e) => e.key.srcPort === c.sport);
        assert.equal(mine.length, 5, `${c.type}: five events`);
        for (const e of mine) {
          assert.equal(e.type, c.type);
          assert.deepEqual(e.attacker, { ip: a.ipv4, port: c.sport });
          assert.deepEqual(e.target, { ip: b.ipv4, port: 80 });
          assert.equal(e.key.protocol, 'TCP');
          assert.equal(e.interface, a.hostIf);
          assert.ok(e.description.length > 10, 'has a description');
          assert.ok(['medium', 'high'].includes(e.severity));
        }
      }
      const v6 = events.filter((e) => e.key.srcPort === 50005);
      assert.equal(v6.length, 5);
      assert.equal(v6[0]!.type, 'tcp-null-scan');
      assert.deepEqual(v6[0]!.attacker, { ip: a.ipv6, port: 50005 });
      // Sequence numbers: per CPU, consecutive from 1.
      const byCpu = new Map<number, bigint[]>();
      for (const e of events) byCpu.set(e.cpu, [...(byCpu.get(e.cpu) ?? []), e.seq]);
      for (const [cpu, seqs] of byCpu) {
        seqs.forEach((s, i) => assert.equal(s, BigInt(i + 1), `cpu ${cpu} sequence has no gap`));
      }
      const st = mon.getPacketStats();
      assert.equal(st.events.security.sent, 25);
      assert.equal(st.events.security.dropped, 0);
      assert.equal(st.events.security.gaps, 0);
      assert.equal(lost.length, 0);
    });
  });
});

describe('loss is counted, never silent', () => {
  test('an overflowing packet ring: every packet is either delivered or counted as dropped', async () => {
    // One page: 4096 / (64 + 8) = 56 events fit.
    await onTestNode({ ipv6: false }, { packetSampleRate: 1, packetEventRingBytes: 4096 }, async ({ net, mon, a, b }) => {
      await mon.attachToInterface(a.hostIf, { tc: { egress: false } });
      // Nobody reads yet: the ring fills.
      net.traffic(a, ['udp-send', b.ipv4, '5400', '500', '10', '43400']);
      await sleep(100);
      const lost: LostEvents[] = [];
      mon.on('lost', (l) => lost.push(l));
      let delivered = 0;
      mon.on('packet', () => delivered++);
      mon.startEventProcessing();
      await sleep(100);
      mon.pollEvents();
      const st = mon.getPacketStats();
      const parsed = st.ingress.packets.parsed;
      assert.ok(parsed >= 500);
      assert.equal(delivered, st.events.packet.sent, 'everything submitted was delivered');
      assert.equal(st.events.packet.sent + st.events.packet.dropped, parsed, 'sent + dropped = sampled packets');
      assert.ok(st.events.packet.dropped >= 400, `most were dropped (${st.events.packet.dropped})`);
      assert.equal(delivered, 56);
      const reported = lost.filter((l) => l.ring === 'packet').reduce((s, l) => s + l.count, 0);
      assert.equal(reported, st.events.packet.dropped, "'lost' events report every drop");
    });
  });

  test('an overflowing security ring shows up as sequence gaps and drops, and both agree', async () => {
    // One page: 4096 / (160 + 8) = 24 events fit. No per-source rate limit: every packet is an event.
    await onTestNode({ ipv6: false }, { packetSampleRate: 0, securityEventRingBytes: 4096, detectors: { eventIntervalMs: 0 } }, async ({ net, mon, a, b }) => {
      await mon.attachToInterface(a.hostIf, { tc: { egress: false } });
      const nullScan = ethernet(mac(net.mac(b)), mac(net.mac(a)), ipv4(a.ipv4, b.ipv4, tcp(51000, 22, 0)));
      // Pinned to one CPU so all events share one sequence.
      net.exec(a, 'taskset', ['-c', '0', process.execPath, ...net.rawSendArgs(100, [nullScan])]);
      const got: SecurityEvent[] = [];
      mon.on('security', (e) => got.push(e));
      const lost: LostEvents[] = [];
      mon.on('lost', (l) => lost.push(l));
      mon.startEventProcessing();
      await waitFor('24 events', () => got.length >= 24);
      // One more after the gap reveals it through the sequence numbers too.
      net.exec(a, 'taskset', ['-c', '0', process.execPath, ...net.rawSendArgs(1, [nullScan])]);
      await waitFor('the 25th event', () => got.length >= 25);
      mon.pollEvents();
      const st = mon.getPacketStats();
      assert.equal(got.length, 25);
      assert.equal(st.events.security.dropped, 76);
      assert.equal(st.events.security.gaps, 76);
      assert.equal(got[24]!.seq, 101n);
      const reported = lost.filter((l) => l.ring === 'security').reduce((s, l) => s + l.count, 0);
      assert.equal(reported, 76, "'lost' reports the 76 once, not twice");
    });
  });
});
