/**
 * The OTLP sink against a real HTTP receiver on 127.0.0.1: exact records in
 * protobuf and in JSON, attributes and severity, failures and a full queue
 * counted, never thrown.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { OtlpReceiver, type ReceivedRecord } from '../../test/helpers/otlp-receiver.js';
import type { FlowRecord } from '../agent/flow-accounter.js';
import type { SecurityEvent } from '../types.js';
import type { ExportRecord } from './index.js';
import { OtlpSink, logsUrl, type OtlpProtocol } from './otlp.js';
import { blockChangeRecordLine, flowRecordLine, lostRecordLine, securityEventLine } from './records.js';

const identify = (ip: string) => (ip === '198.18.0.9' ? { namespace: 'default', pod: 'attacker', labels: {}, workload: { kind: 'Pod', name: 'attacker' } } : undefined);

function flowRecord(i: number): ExportRecord {
  const r: FlowRecord = {
    reason: i % 2 ? 'final' : 'active',
    flow: {
      key: { family: 'ipv4', srcIp: '198.18.0.1', dstIp: '198.18.0.2', srcPort: 40000 + i, dstPort: 53, protocol: 'UDP', protocolNumber: 17, direction: 'egress', ifindex: 7 },
      interface: 'kv01a',
      packets: 10 * i,
      bytes: 1000 * i,
      firstSeen: new Date('2026-11-26T14:00:00Z'),
      lastSeen: new Date(Date.UTC(2026, 10, 26, 14, 0, i)),
      tcpFlags: [],
      synCount: 0,
      finCount: 0,
      rstCount: 0,
      opened: false,
    },
    deltaPackets: i,
    deltaBytes: 100 * i,
    packetsPerSec: i / 2,
    bytesPerSec: 50 * i,
  };
  return { kind: 'flow', line: flowRecordLine(r, identify) };
}

const scan: SecurityEvent = {
  timestamp: new Date('2026-11-26T14:00:33.456Z'),
  timestampNs: 1n,
  type: 'tcp-port-scan',
  typeNumber: 7,
  severity: 'high',
  description: 'TCP port scan (SYN): 198.18.0.9 probed 20 ports on 198.18.0.2 within 1000 ms (threshold 20)',
  key: { family: 'ipv4', srcIp: '198.18.0.9', dstIp: '198.18.0.2', srcPort: 61000, dstPort: 443, protocol: 'TCP', protocolNumber: 6, direction: 'ingress', ifindex: 9 },
  attacker: { ip: '198.18.0.9', port: 61000 },
  target: { ip: '198.18.0.2', port: 443 },
  interface: 'kv01c',
  hook: 'tc-ingress',
  count: 20,
  threshold: 20,
  windowMs: 1000,
  suppressed: 0,
  tcpFlags: ['SYN'],
  cpu: 1,
  seq: 42n,
};

const others: ExportRecord[] = [
  { kind: 'security', line: securityEventLine(scan, identify) },
  {
    kind: 'block',
    line: blockChangeRecordLine({ action: 'blocked', cause: 'detector', block: { ip: '198.18.0.9', reason: 'tcp-port-scan', createdAt: new Date('2026-11-26T14:00:34Z'), expiresAt: undefined, packetsDropped: 0 }, at: new Date('2026-11-26T14:00:34Z') }),
  },
  { kind: 'lost', line: lostRecordLine({ ring: 'packet', count: 3, total: 9, at: new Date('2026-11-26T14:00:35Z') }) },
];

const emit = (sink: OtlpSink, r: ExportRecord): void => sink.emit(r, JSON.stringify(r.line));
const ns = (iso: string): bigint => BigInt(Date.parse(iso)) * 1_000_000n;

for (const protocol of ['http/protobuf', 'http/json'] as OtlpProtocol[]) {
  test(`${protocol}: exactly the records, with resource, body, attributes and severity`, async () => {
    const rx = await OtlpReceiver.start();
    const errors: Error[] = [];
    const sink = new OtlpSink({ endpoint: rx.url, protocol, hostName: 'node-7', scheduledDelayMs: 50, onError: (e) => errors.push(e) });
    try {
      const N = 1500; // several batches (512 each)
      for (let i = 1; i <= N; i++) emit(sink, flowRecord(i));
      for (const r of others) emit(sink, r);
      const got = await rx.waitFor(N + 3);
      await sink.close();
      assert.equal(rx.records.length, N + 3, 'no more, no fewer');
      assert.ok(rx.contentTypes.every((t) => t === (protocol === 'http/json' ? 'application/json' : 'application/x-protobuf')), rx.contentTypes.join());
      assert.deepEqual(sink.stats(), { endpoint: `${rx.url}/v1/logs`, protocol, recordsSent: N + 3, recordsFailed: 0, recordsDropped: 0, queued: 0, exportErrors: 0 });
      assert.deepEqual(errors, []);

      for (const r of got) {
        assert.equal(r.resource['service.name'], 'kubenetprobe');
        assert.equal(r.resource['host.name'], 'node-7');
        assert.equal(r.scope, 'kubenetprobe');
      }
      const flows = got.filter((r) => r.eventName === 'kubenetprobe.flow');
      assert.equal(flows.length, N);
      assert.equal(flows.reduce((s, r) => s + (r.attributes['kubenetprobe.deltaPackets'] as number), 0), (N * (N + 1)) / 2, 'deltaPackets add up');
      const f7 = flows.find((r) => r.attributes['kubenetprobe.srcPort'] === 40007)!;
      assert.equal(f7.body, JSON.stringify(flowRecord(7).line), 'the JSON line is the body');
      assert.equal(f7.severityNumber, 9);
      assert.equal(f7.severityText, 'INFO');
      assert.equal(f7.timeUnixNano, ns('2026-11-26T14:00:07Z'), "the line's time");
      assert.ok(f7.observedTimeUnixNano > 0n);
      assert.deepEqual(f7.attributes, {
        'kubenetprobe.event': 'flow',
        'kubenetprobe.time': '2026-11-26T14:00:07.000Z',
        'kubenetprobe.firstSeen': '2026-11-26T14:00:00.000Z',
        'kubenetprobe.interface': 'kv01a',
        'kubenetprobe.direction': 'egress',
        'kubenetprobe.protocol': 'UDP',
        'kubenetprobe.srcIp': '198.18.0.1',
        'kubenetprobe.srcPort': 40007,
        'kubenetprobe.dstIp': '198.18.0.2',
        'kubenetprobe.dstPort': 53,
        'kubenetprobe.packets': 70,
        'kubenetprobe.bytes': 7000,
        'kubenetprobe.tcpFlags': [],
        'kubenetprobe.record': 'final',
        'kubenetprobe.deltaPackets': 7,
        'kubenetprobe.deltaBytes': 700,
        'kubenetprobe.packetsPerSec': 3.5,
        'kubenetprobe.bytesPerSec': 350,
      }, 'null fields (pods unknown, state) are left out');

      const sec = got.find((r) => r.eventName === 'kubenetprobe.security')!;
      assert.equal(sec.severityNumber, 17, 'high is ERROR');
      assert.equal(sec.severityText, 'high');
      assert.equal(sec.timeUnixNano, ns('2026-11-26T14:00:33.456Z'));
      assert.deepEqual(JSON.parse(sec.body as string), others[0]!.line);
      assert.deepEqual(sec.attributes, {
        'kubenetprobe.event': 'security',
        'kubenetprobe.time': '2026-11-26T14:00:33.456Z',
        'kubenetprobe.type': 'tcp-port-scan',
        'kubenetprobe.severity': 'high',
        'kubenetprobe.attacker.ip': '198.18.0.9',
        'kubenetprobe.attacker.port': 61000,
        'kubenetprobe.target.ip': '198.18.0.2',
        'kubenetprobe.target.port': 443,
        'kubenetprobe.attackerNamespace': 'default',
        'kubenetprobe.attackerPod': 'attacker',
        'kubenetprobe.attackerWorkload': 'Pod/attacker',
        'kubenetprobe.interface': 'kv01c',
        'kubenetprobe.hook': 'tc-ingress',
        'kubenetprobe.protocol': 'TCP',
        'kubenetprobe.count': 20,
        'kubenetprobe.threshold': 20,
        'kubenetprobe.windowMs': 1000,
        'kubenetprobe.suppressed': 0,
        'kubenetprobe.tcpFlags': ['SYN'],
        'kubenetprobe.cpu': 1,
        'kubenetprobe.seq': 42,
        'kubenetprobe.description': scan.description,
      });
      const block = got.find((r) => r.eventName === 'kubenetprobe.block')!;
      assert.equal(block.severityNumber, 13, 'a block is WARN');
      assert.equal(block.attributes['kubenetprobe.action'], 'blocked');
      assert.equal('kubenetprobe.expiresAt' in block.attributes, false, 'until lifted: null, left out');
      const lost = got.find((r) => r.eventName === 'kubenetprobe.lost')!;
      assert.equal(lost.severityNumber, 13, 'loss is WARN');
      assert.deepEqual([lost.attributes['kubenetprobe.ring'], lost.attributes['kubenetprobe.count'], lost.attributes['kubenetprobe.total']], ['packet', 3, 9]);
    } finally {
      await sink.close();
      await rx.close();
    }
  });
}

test('a collector that refuses, or is not there: failures counted and reported, never thrown', async () => {
  const rx = await OtlpReceiver.start();
  rx.refuse = { status: 400, count: 1 };
  const errors: Error[] = [];
  const sink = new OtlpSink({ endpoint: `${rx.url}/v1/logs`, protocol: 'http/json', scheduledDelayMs: 20, onError: (e) => errors.push(e) });
  try {
    for (let i = 1; i <= 5; i++) emit(sink, flowRecord(i));
    const deadline = Date.now() + 5000;
    while (sink.stats().recordsFailed < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (let i = 6; i <= 8; i++) emit(sink, flowRecord(i));
    await rx.waitFor(3);
    await sink.close();
    const s = sink.stats();
    assert.deepEqual([s.recordsFailed, s.recordsSent, s.exportErrors, s.recordsDropped], [5, 3, 1, 0]);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /^OTLP export to http:\/\/127\.0\.0\.1:\d+\/v1\/logs failed: .*\(5 records not delivered since start; export\.otlp in the agent's stats\)\n {2}hint: check that the collector runs/s);
  } finally {
    await sink.close();
    await rx.close();
  }

  // Nothing listens on the port any more.
  const down: Error[] = [];
  const gone = new OtlpSink({ endpoint: rx.url, protocol: 'http/protobuf', scheduledDelayMs: 20, exportTimeoutMs: 2000, onError: (e) => down.push(e) });
  for (let i = 1; i <= 4; i++) emit(gone, flowRecord(i));
  await gone.close();
  const g = gone.stats();
  assert.deepEqual([g.recordsFailed, g.recordsSent, g.recordsDropped, g.queued], [4, 0, 0, 0], JSON.stringify(g));
  assert.match(down[0]!.message, /failed: connect ECONNREFUSED/);
});

test('a full queue drops and counts; records after close() are counted too; close() twice', async () => {
  const rx = await OtlpReceiver.start();
  const errors: Error[] = [];
  const sink = new OtlpSink({ endpoint: rx.url, protocol: 'http/json', maxQueue: 10, scheduledDelayMs: 20, onError: (e) => errors.push(e) });
  try {
    for (let i = 1; i <= 25; i++) emit(sink, flowRecord(i));
    assert.equal(sink.stats().recordsDropped, 15);
    assert.equal(sink.stats().queued, 10);
    await sink.close();
    await sink.close();
    emit(sink, flowRecord(26));
    const s = sink.stats();
    assert.deepEqual([s.recordsSent, s.recordsDropped, s.queued], [10, 16, 0]);
    assert.equal(rx.records.length, 10);
    assert.equal(rx.records[0]!.resource['host.name'], hostname(), 'host.name: the hostname by default');
    assert.deepEqual(rx.records.map((r: ReceivedRecord) => r.attributes['kubenetprobe.deltaPackets']), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'the first ten, in order');
    assert.match(errors[0]!.message, /10 records are waiting to be sent: dropping records/);
  } finally {
    await rx.close();
  }
});

test('endpoint: a base URL gets /v1/logs; anything but an http(s) URL is refused', () => {
  assert.equal(logsUrl('http://collector:4318'), 'http://collector:4318/v1/logs');
  assert.equal(logsUrl('http://collector:4318/'), 'http://collector:4318/v1/logs');
  assert.equal(logsUrl('https://otel.example/ingest/v1/logs'), 'https://otel.example/ingest/v1/logs');
  assert.equal(logsUrl('https://otel.example/ingest'), 'https://otel.example/ingest/v1/logs');
  assert.throws(() => new OtlpSink({ endpoint: 'collector 4318' }), /otlpEndpoint: not an http:\/\/ or https:\/\/ URL: "collector 4318"\n {2}hint: e\.g\. http:\/\/otel-collector:4318/);
  assert.throws(() => new OtlpSink({ endpoint: 'ftp://collector' }), /otlpEndpoint: not an http:\/\/ or https:\/\/ URL/);
});
