/**
 * The security detectors against real attack tools, between namespaces this
 * test creates: nmap scans, hping3 floods, a ping sweep, crafted land and
 * martian packets; benign load that must raise nothing; a flood that must
 * not flood the channel; and enforce mode, which blocks, spares the
 * allowlist and lets go on time. Every tool run is bounded in count and time.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { NetworkMonitor, type BlockChange, type LostEvents, type SecurityEvent } from 'kubenetprobe';
import { TestNet, onTestNode, type Pod } from './helpers/testnet.js';
import { sleep, waitFor } from './helpers/attached.js';
import { TCP, ethernet, ipv4, mac, tcp, udp } from '../tools/frames.js';

/** Runs a tool inside a pod without blocking the event loop (events keep arriving). */
function run(pod: Pod, cmd: string, args: string[], timeoutMs = 30000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', pod.netns, cmd, ...args], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

/** Attaches to every pod's veth (both directions) and collects what the monitor reports. */
async function watch(net: TestNet, mon: NetworkMonitor, opts: { martians?: string[] } = {}) {
  for (const p of net.pods) await mon.attachToInterface(p.hostIf, { martians: opts.martians?.includes(p.name) ?? false });
  const events: SecurityEvent[] = [];
  const blocks: BlockChange[] = [];
  const lost: LostEvents[] = [];
  mon.on('security', (e) => events.push(e));
  mon.on('block', (b) => blocks.push(b));
  mon.on('lost', (l) => lost.push(l));
  mon.startEventProcessing();
  return { events, blocks, lost };
}

const SCANS = [
  { flag: '-sS', portScanFlags: ['SYN'], anomaly: undefined },
  { flag: '-sT', portScanFlags: ['SYN'], anomaly: undefined },
  { flag: '-sN', portScanFlags: [], anomaly: 'tcp-null-scan' },
  { flag: '-sF', portScanFlags: ['FIN'], anomaly: 'tcp-fin-scan' },
  { flag: '-sX', portScanFlags: ['FIN', 'PSH', 'URG'], anomaly: 'tcp-xmas-scan' },
] as const;

describe('nmap scans are reported within 2 s, naming attacker and victim', () => {
  for (const scan of SCANS) {
    test(`nmap ${scan.flag}`, async () => {
      await onTestNode({ ipv6: false }, { packetSampleRate: 0 }, async ({ net, mon, a, b }) => {
        const { events } = await watch(net, mon);
        const t0 = Date.now();
        const r = await run(a, 'nmap', ['-n', '-Pn', scan.flag, '-p', '1-200', '--max-retries', '0', '-T5', b.ipv4]);
        assert.equal(r.code, 0, r.out);
        await waitFor('a tcp-port-scan event', () => events.some((e) => e.type === 'tcp-port-scan'), 3000);
        if (scan.anomaly) await waitFor(`a ${scan.anomaly} event`, () => events.some((e) => e.type === scan.anomaly), 3000);
        await sleep(200);
        mon.pollEvents();
        const scanEvents = events.filter((e) => e.type === 'tcp-port-scan');
        const first = scanEvents[0]!;
        assert.ok(first.timestamp.getTime() - t0 <= 2000, `within 2 s of the scan's start (${first.timestamp.getTime() - t0} ms)`);
        assert.equal(first.attacker.ip, a.ipv4);
        assert.equal(first.target.ip, b.ipv4);
        assert.equal(first.severity, 'high');
        assert.ok(first.count >= 20 && first.threshold === 20, `${first.count} distinct ports against a threshold of 20`);
        assert.equal(first.windowMs, 1000);
        assert.deepEqual([...first.tcpFlags].sort(), [...scan.portScanFlags].sort(), 'the probes\' flags name the kind of scan');
        // Seen once: on the attacker's veth as it entered the node, not again leaving
        // through the victim's; and one event per second per source at most.
        for (const e of events) assert.equal(e.interface, a.hostIf);
        for (const e of events) assert.equal(e.hook, 'tc-ingress');
        const spanS = Math.max(1, Math.ceil((Date.now() - t0) / 1000));
        assert.ok(scanEvents.length <= spanS, `${scanEvents.length} port-scan events in ${spanS} s`);
        if (scan.anomaly) {
          const an = events.find((e) => e.type === scan.anomaly)!;
          assert.equal(an.attacker.ip, a.ipv4);
          assert.equal(an.target.ip, b.ipv4);
        }
        const st = mon.getPacketStats();
        assert.ok(st.events.security.suppressed > 0, 'the rest of the probes were held back, and counted');
        assert.equal(st.events.security.gaps, 0);
      });
    });
  }

  test('nmap -sU', async () => {
    await onTestNode({ ipv6: false }, { packetSampleRate: 0 }, async ({ net, mon, a, b }) => {
      const { events } = await watch(net, mon);
      const t0 = Date.now();
      const r = await run(a, 'nmap', ['-n', '-Pn', '-sU', '-p', '1-200', '--max-retries', '0', '-T5', b.ipv4]);
      assert.equal(r.code, 0, r.out);
      await waitFor('a udp-port-scan event', () => events.some((e) => e.type === 'udp-port-scan'), 3000);
      const e = events.find((x) => x.type === 'udp-port-scan')!;
      assert.ok(e.timestamp.getTime() - t0 <= 2000, `within 2 s (${e.timestamp.getTime() - t0} ms)`);
      assert.deepEqual([e.attacker.ip, e.target.ip, e.interface], [a.ipv4, b.ipv4, a.hostIf]);
      assert.equal(e.key.protocol, 'UDP');
      assert.ok(!events.some((x) => x.type === 'tcp-port-scan'), 'a UDP scan is not a TCP one');
    });
  });
});

describe('floods and sweeps', () => {
  test('hping3 raises a SYN flood and an ICMP flood against the victim', async () => {
    await onTestNode({ ipv6: false }, { packetSampleRate: 0 }, async ({ net, mon, a, b }) => {
      const { events } = await watch(net, mon);
      // 3000 SYNs at about 10 k/s (hping3 moves the source port every packet).
      await run(a, 'hping3', ['-q', '-S', '-p', '80', '-i', 'u100', '-c', '3000', b.ipv4], 30000);
      await waitFor('a syn-flood event', () => events.some((e) => e.type === 'syn-flood'), 3000);
      const syn = events.find((e) => e.type === 'syn-flood')!;
      assert.equal(syn.target.ip, b.ipv4);
      assert.equal(syn.target.port, 80);
      assert.equal(syn.attacker.ip, a.ipv4);
      assert.ok(syn.count >= 1000, `${syn.count} SYNs crossed the threshold of 1000`);

      await run(a, 'hping3', ['-q', '--icmp', '-i', 'u100', '-c', '3000', b.ipv4], 30000);
      await waitFor('an icmp-flood event', () => events.some((e) => e.type === 'icmp-flood'), 3000);
      const icmp = events.find((e) => e.type === 'icmp-flood')!;
      assert.deepEqual([icmp.attacker.ip, icmp.target.ip], [a.ipv4, b.ipv4]);
      assert.ok(icmp.count >= 1000);
      assert.equal(events.filter((e) => e.type === 'icmp-flood').length, 1, 'one event for the one flood (rate-limited per target)');
    });
  });

  test('a ping sweep across several victims is one event; the threshold changes at run time', async () => {
    await onTestNode({ ipv6: false, pods: 7 }, { packetSampleRate: 0 }, async ({ net, mon, a }) => {
      const { events } = await watch(net, mon);
      const victims = net.pods.filter((p) => p !== a);
      const sweep = async (): Promise<void> => {
        for (const v of victims) assert.equal((await run(a, 'ping', ['-n', '-c', '1', '-W', '1', v.ipv4])).code, 0);
      };
      await sweep(); // 6 hosts: under the default threshold of 10
      await sleep(300);
      mon.pollEvents();
      assert.equal(events.filter((e) => e.type === 'ping-sweep').length, 0, '6 hosts do not cross 10');
      assert.equal(mon.configureDetectors({ pingSweepHosts: 5 }).pingSweepHosts, 5);
      await sleep(1100); // a fresh window
      await sweep();
      await waitFor('a ping-sweep event', () => events.some((e) => e.type === 'ping-sweep'), 3000);
      await sleep(300);
      mon.pollEvents();
      const sweeps = events.filter((e) => e.type === 'ping-sweep');
      assert.equal(sweeps.length, 1, 'one event for the sweep, not one per victim');
      assert.equal(sweeps[0]!.attacker.ip, a.ipv4);
      assert.equal(sweeps[0]!.count, 5);
      assert.equal(sweeps[0]!.threshold, 5);
      assert.ok(victims.some((v) => v.ipv4 === sweeps[0]!.target.ip));
    });
  });

  test('land packets, and martian sources only where the interface asks for it', async () => {
    await onTestNode({ ipv6: false, pods: 3 }, { packetSampleRate: 0 }, async ({ net, mon, a, b }) => {
      const c = net.pod('c');
      const { events } = await watch(net, mon, { martians: ['a'] });
      const land = ethernet(mac(net.mac(b)), mac(net.mac(a)), ipv4(b.ipv4, b.ipv4, tcp(139, 139, TCP.SYN)));
      const martianA = ethernet(mac(net.mac(b)), mac(net.mac(a)), ipv4('127.0.0.1', b.ipv4, udp(5000, 53)));
      const martianC = ethernet(mac(net.mac(b)), mac(net.mac(c)), ipv4('224.0.0.9', b.ipv4, udp(5000, 53)));
      net.rawSend(a, 1, [land, martianA]);
      net.rawSend(c, 1, [martianC]);
      await waitFor('land and martian events', () => events.some((e) => e.type === 'land') && events.some((e) => e.type === 'martian-source'), 3000);
      await sleep(300);
      mon.pollEvents();
      const l = events.find((e) => e.type === 'land')!;
      assert.deepEqual([l.attacker.ip, l.target.ip, l.interface], [b.ipv4, b.ipv4, a.hostIf]);
      const m = events.filter((e) => e.type === 'martian-source');
      assert.equal(m.length, 1, 'only on the interface flagged for martians');
      assert.deepEqual([m[0]!.attacker.ip, m[0]!.interface], ['127.0.0.1', a.hostIf]);
    });
  });
});

test('benign load raises nothing: iperf3 bulk TCP, 2000 short HTTP connections, a UDP request/response loop', async () => {
  await onTestNode({ ipv6: false }, { packetSampleRate: 0 }, async ({ net, mon, a, b }) => {
    const { events } = await watch(net, mon);
    // One client, then the server exits; both bounded by the timeout.
    const server = run(b, 'iperf3', ['-s', '-1', '-p', '5201'], 20000);
    await sleep(300);
    const bulk = await run(a, 'iperf3', ['-c', b.ipv4, '-p', '5201', '-t', '2'], 20000);
    assert.equal(bulk.code, 0, bulk.out);
    assert.equal((await server).code, 0);
    const http = await net.background(b, ['http-server', '8080']);
    const udp = await net.background(b, ['udp-echo', '5353']);
    try {
      const gets = await run(a, process.execPath, [...net.trafficArgs(['http-gets', b.ipv4, '8080', '2000', '16'])], 60000);
      assert.equal(gets.out.trim(), 'ok 2000');
      const rr = await run(a, process.execPath, [...net.trafficArgs(['udp-rr', b.ipv4, '5353', '2000'])], 60000);
      assert.equal(rr.out.trim(), 'answered 2000');
    } finally {
      http.kill();
      udp.kill();
    }
    await sleep(300);
    mon.pollEvents();
    assert.deepEqual(events.map((e) => e.description), [], 'no security event');
    const st = mon.getPacketStats();
    assert.equal(st.events.security.sent, 0);
    assert.equal(st.events.security.suppressed, 0);
    // The load was real: 2000 connections' worth of SYNs crossed the veth.
    assert.ok(st.ingress.packets.parsed > 20000, `${st.ingress.packets.parsed} packets`);
  });
});

test('a flood from random sources stays within the channel\'s rate limit, and its loss is counted exactly', async () => {
  // A one-page ring (24 events) that nobody reads during the flood: it overflows.
  await onTestNode({ ipv6: false }, { packetSampleRate: 0, securityEventRingBytes: 4096, detectors: { maxEventsPerSecond: 200 } }, async ({ net, mon, a, b }) => {
    for (const p of net.pods) await mon.attachToInterface(p.hostIf);
    const t0 = Date.now();
    // 300 000 flagless TCP packets, each from a random source: every one is a
    // NULL-scan probe from a new subject, which the per-source limit alone
    // would let through.
    const r = await run(a, 'hping3', ['-q', '--rand-source', '-c', '300000', '-i', 'u1', '-p', '80', b.ipv4], 90000);
    assert.ok([0, 1].includes(r.code), r.out);
    const seconds = Math.ceil((Date.now() - t0) / 1000) + 1;
    const events: SecurityEvent[] = [];
    const lost: LostEvents[] = [];
    mon.on('security', (e) => events.push(e));
    mon.on('lost', (l) => lost.push(l));
    mon.startEventProcessing({ lossCheckIntervalMs: 100 });
    await waitFor('the ring drained and the drops reported', () => events.length >= 24 && lost.length > 0, 3000);
    await sleep(300);
    mon.pollEvents();
    const st = mon.getPacketStats();
    const parsed = st.ingress.packets.parsed;
    assert.equal(parsed, 300000, 'the flood arrived whole');
    const cap = 200 * 2 * seconds; // per CPU per second
    const raised = st.events.security.sent + st.events.security.dropped;
    assert.ok(raised <= cap, `${raised} events within the cap of ${cap}`);
    // Every one of the 300 000 probes is accounted for: raised, or held back and counted.
    assert.equal(raised + st.events.security.suppressed, 300000);
    assert.equal(events.length, st.events.security.sent, 'every event the ring took arrived');
    assert.equal(st.events.security.sent, 24, 'the ring took one page');
    assert.ok(st.events.security.dropped > 0, `the ring overflowed (${st.events.security.dropped})`);
    const reported = lost.filter((l) => l.ring === 'security').reduce((s, l) => s + l.count, 0);
    assert.equal(reported, st.events.security.dropped, 'every event the ring dropped is reported as lost');
    console.log(`flood: ${parsed} frames in ${seconds - 1} s, ${raised} events raised (cap ${cap}), ${st.events.security.suppressed} suppressed, ${st.events.security.dropped} dropped and reported`);
  });
});

test('enforce mode blocks a scanner (XDP where attached), spares the allowlist, and lets go on time', async () => {
  const net = TestNet.create(3, { ipv6: false });
  try {
    const [a, b, c] = [net.pod('a'), net.pod('b'), net.pod('c')];
    const mon = await NetworkMonitor.create({
      packetSampleRate: 0,
      detectors: { mode: 'enforce', enforce: ['tcp-port-scan'], blockTtlMs: 3000 },
      allowlist: [`${c.ipv4}/32`],
    });
    try {
      // The scanner's veth gets generic XDP too: its frames are dropped there.
      await mon.attachToInterface(a.hostIf, { xdp: 'generic' });
      await mon.attachToInterface(b.hostIf);
      await mon.attachToInterface(c.hostIf);
      const events: SecurityEvent[] = [];
      const changes: BlockChange[] = [];
      mon.on('security', (e) => events.push(e));
      mon.on('block', (x) => changes.push(x));
      mon.startEventProcessing();
      const ping = async (from: Pod): Promise<number> => (await run(from, 'ping', ['-n', '-c', '2', '-i', '0.2', '-W', '1', b.ipv4])).code;
      assert.equal(await ping(a), 0, 'a reaches b before it scans');

      // The allowlisted pod scans: reported, never blocked.
      assert.equal((await run(c, 'nmap', ['-n', '-Pn', '-sS', '-p', '1-100', '--max-retries', '0', '-T5', b.ipv4])).code, 0);
      await waitFor('c\'s scan reported', () => events.some((e) => e.type === 'tcp-port-scan' && e.attacker.ip === c.ipv4), 3000);
      assert.equal(await ping(c), 0, 'an allowlisted source is never blocked');

      // a scans: blocked.
      assert.equal((await run(a, 'nmap', ['-n', '-Pn', '-sS', '-p', '1-100', '--max-retries', '0', '-T5', b.ipv4])).code, 0);
      await waitFor('a blocked', () => changes.some((x) => x.action === 'blocked' && x.block.ip === a.ipv4), 3000);
      const blockedAt = Date.now();
      const ev = events.find((e) => e.type === 'blocked')!;
      assert.equal(ev.attacker.ip, a.ipv4);
      assert.equal(ev.count, 3, 'the event carries the TTL in seconds');
      assert.notEqual(await ping(a), 0, 'traffic from the flagged source stops');
      const listed = mon.blocks();
      assert.equal(listed.length, 1);
      assert.equal(listed[0]!.ip, a.ipv4);
      assert.equal(listed[0]!.reason, 'tcp-port-scan');
      assert.ok(listed[0]!.packetsDropped >= 2, `dropped ${listed[0]!.packetsDropped}`);
      const st = mon.getPacketStats();
      assert.ok(st.blocks.packetsDropped >= 2);
      assert.ok(st.xdp.packets.parsed > 0, 'XDP saw the frames it dropped');
      assert.equal(await ping(c), 0, 'other sources still pass');

      // The block expires on time: 3 s, reported within the next sweep (1 s).
      await waitFor('the expiry', () => changes.some((x) => x.action === 'unblocked' && x.block.ip === a.ipv4), 6000);
      const held = Date.now() - blockedAt;
      assert.ok(held >= 2000 && held <= 5500, `held for ${held} ms`);
      assert.equal(changes.find((x) => x.action === 'unblocked')!.cause, 'expired');
      assert.equal(mon.blocks().length, 0);
      assert.equal(await ping(a), 0, 'a passes again');

      // By hand: block and lift, each reported.
      mon.block(a.ipv4, { ttlMs: 0 });
      assert.notEqual(await ping(a), 0);
      assert.equal(mon.unblock(a.ipv4)?.ip, a.ipv4);
      assert.equal(await ping(a), 0);
      assert.deepEqual(
        changes.slice(-2).map((x) => `${x.action}/${x.cause}`),
        ['blocked/manual', 'unblocked/manual'],
      );
      assert.throws(() => mon.block('not-an-ip'), /not an IP address/);
    } finally {
      await mon.close();
    }
  } finally {
    await net.close();
  }
});
