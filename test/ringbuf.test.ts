/**
 * The mmap ring-buffer reader against the kernel's ring: records that wrap
 * around the end of the ring read whole and in order, a budget bounds each
 * turn so the event loop keeps running, and a slow events() consumer loses
 * events only with a count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkMonitor, type MonitorEvent, type PacketInfo } from 'kubenetprobe';
import { TestRunner } from '../src/loader/test-run.js';
import { RingBufferReader } from '../src/loader/ringbuf.js';
import { ethernet, ipv4, mac, udp } from '../tools/frames.js';

const frameFor = (sport: number): Buffer =>
  ethernet(mac('02:00:00:00:00:02'), mac('02:00:00:00:00:01'), ipv4('198.18.0.1', '198.18.0.2', udp(sport, 7000, Buffer.alloc(18))));

test('records that wrap around a one-page ring arrive whole and in order', async () => {
  // 4096 bytes hold 56 records of 72: every lap ends mid-record.
  const mon = await NetworkMonitor.create({ packetSampleRate: 1, packetEventRingBytes: 4096 });
  const runner = new TestRunner(mon.programFd('tc_ingress'));
  try {
    const got: PacketInfo[] = [];
    mon.on('packet', (p) => got.push(p));
    mon.startEventProcessing();
    const N = 5000;
    for (let i = 0; i < N; i++) {
      runner.runOrThrow(frameFor(10000 + (i % 50000)));
      if (i % 40 === 39) mon.pollEvents(); // stay under 56 outstanding
    }
    mon.pollEvents();
    assert.equal(got.length, N, 'every event arrived');
    got.forEach((p, i) => assert.equal(p.key.srcPort, 10000 + i, `event ${i} in order and intact`));
    assert.ok(got.every((p) => p.key.dstPort === 7000 && p.ipLength === 20 + 8 + 18 && p.key.srcIp === '198.18.0.1'));
    assert.equal(mon.getPacketStats().events.packet.dropped, 0);
  } finally {
    runner.close();
    await mon.close();
  }
});

test('a budget bounds each turn: the event loop runs between turns', async () => {
  const mon = await NetworkMonitor.create({ packetSampleRate: 1 });
  const runner = new TestRunner(mon.programFd('tc_ingress'));
  try {
    // 20 000 events waiting before anyone reads.
    runner.runOrThrow(frameFor(20000), 20000);
    const map = mon.map('knp_packet_events');
    let read = 0;
    const reader = new RingBufferReader(map, () => read++);
    try {
      const readsAtTicks: number[] = [];
      const ticker = setInterval(() => readsAtTicks.push(read), 0);
      reader.start(1000);
      while (read < 20000) await new Promise((r) => setImmediate(r));
      clearInterval(ticker);
      assert.equal(read, 20000);
      // Timers fired while the backlog was being read, at several distinct points.
      const between = new Set(readsAtTicks.filter((n) => n > 0 && n < 20000));
      assert.ok(between.size >= 3, `timers ran between turns (saw ${[...between].join(', ')})`);
      assert.ok([...between].every((n) => n % 1000 === 0), 'each turn stops at the budget');
    } finally {
      reader.close();
    }
    assert.equal(mon.getPacketStats().events.packet.sent, 20000);
  } finally {
    runner.close();
    await mon.close();
  }
});

test('a slow events() consumer loses events beyond its limit, and they are counted', async () => {
  const mon = await NetworkMonitor.create({ packetSampleRate: 1 });
  const runner = new TestRunner(mon.programFd('tc_ingress'));
  try {
    const it = mon.events({ limit: 100 });
    const lost: number[] = [];
    mon.on('lost', (l) => {
      if (l.ring === 'consumer') lost.push(l.count);
    });
    runner.runOrThrow(frameFor(30000), 1000);
    mon.pollEvents();
    const got: MonitorEvent[] = [];
    for (let i = 0; i < 100; i++) {
      const r = await it.next();
      assert.ok(!r.done);
      got.push(r.value);
    }
    await it.return?.();
    assert.equal(got.length, 100);
    assert.equal(lost.reduce((a, b) => a + b, 0), 900);
    assert.equal(mon.getPacketStats().events.consumerDropped, 900);
  } finally {
    runner.close();
    await mon.close();
  }
});

test('a listener that throws gets each event once; the error is reported and reading goes on', async () => {
  const mon = await NetworkMonitor.create({ packetSampleRate: 1 });
  const runner = new TestRunner(mon.programFd('tc_ingress'));
  try {
    const ports: number[] = [];
    const errors: Error[] = [];
    mon.on('error', (e) => errors.push(e));
    mon.on('packet', (p) => {
      ports.push(p.key.srcPort);
      if (p.key.srcPort === 1111) throw new Error('listener bug');
    });
    mon.startEventProcessing();
    for (const port of [1111, 2222, 3333]) runner.runOrThrow(frameFor(port));
    const deadline = Date.now() + 5000;
    while (ports.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(ports, [1111, 2222, 3333], 'no event delivered twice, none skipped');
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /listener bug/);
  } finally {
    runner.close();
    await mon.close();
  }
});

test('close() from inside a listener closes once and stops delivery', async () => {
  const mon = await NetworkMonitor.create({ packetSampleRate: 1 });
  const runner = new TestRunner(mon.programFd('tc_ingress'));
  let calls = 0;
  let closed: Promise<void> | undefined;
  mon.on('packet', () => {
    calls++;
    closed = mon.close();
  });
  runner.runOrThrow(frameFor(4444), 10);
  runner.close();
  mon.startEventProcessing();
  const deadline = Date.now() + 5000;
  while (!closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await closed;
  await mon.close();
  assert.equal(calls, 1, 'the listener ran once; the other nine events were not delivered after close');
});
