/** startExporters: the agent's four events to both sinks, once each, counted; SIGHUP reopens; close() unsubscribes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OtlpReceiver } from '../../test/helpers/otlp-receiver.js';
import type { AgentEvents } from '../agent/agent.js';
import type { FlowRecord } from '../agent/flow-accounter.js';
import type { PodIdentity } from '../agent/inventory.js';
import { NO_EXPORT_STATS, startExporters, type ExportConfig } from './index.js';

class FakeAgent extends EventEmitter<AgentEvents> {
  identity(ip: string): PodIdentity | undefined {
    return ip === '198.18.0.1' ? { namespace: 'shop', pod: 'api', labels: {}, workload: { kind: 'Deployment', name: 'api' }, service: 'api-svc' } : undefined;
  }
}

const config = (over: Partial<ExportConfig>): ExportConfig => ({ exportMaxBytes: 100 << 20, exportKeepFiles: 5, otlpProtocol: 'http/protobuf', ...over });

function record(i: number): FlowRecord {
  return {
    reason: 'final',
    flow: {
      key: { family: 'ipv4', srcIp: '198.18.0.1', dstIp: '198.18.0.2', srcPort: 1000 + i, dstPort: 80, protocol: 'TCP', protocolNumber: 6, direction: 'ingress', ifindex: 4 },
      interface: 'kv0a',
      packets: i,
      bytes: 60 * i,
      firstSeen: new Date(0),
      lastSeen: new Date(1000),
      tcpFlags: ['SYN', 'ACK'],
      synCount: 1,
      finCount: 0,
      rstCount: 0,
      opened: true,
    },
    deltaPackets: i,
    deltaBytes: 60 * i,
    packetsPerSec: 0,
    bytesPerSec: 0,
  };
}

test('off: nothing subscribed, null stats', async () => {
  const agent = new FakeAgent();
  const ex = await startExporters(agent, config({}));
  assert.equal(agent.listenerCount('record'), 0);
  assert.deepEqual(ex.stats(), NO_EXPORT_STATS);
  await ex.close();
});

test('both sinks get every record once; SIGHUP reopens the file; close() unsubscribes and is safe twice', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'knp-export-'));
  const rx = await OtlpReceiver.start();
  const agent = new FakeAgent();
  const errors: Error[] = [];
  agent.on('error', (e) => errors.push(e));
  const path = join(dir, 'out.jsonl');
  const ex = await startExporters(agent, config({ exportJsonLines: path, otlpEndpoint: rx.url, otlpHeaders: { 'x-test': 'yes' } }), { otlpScheduledDelayMs: 20 });
  try {
    for (let i = 1; i <= 3; i++) agent.emit('record', record(i));
    agent.emit('lost', { ring: 'consumer', count: 2, total: 2, at: new Date(2000) });
    agent.emit('block', { action: 'unblocked', cause: 'expired', block: { ip: '198.18.0.9', reason: 'syn-flood', createdAt: new Date(0), expiresAt: new Date(1500), packetsDropped: 5 }, at: new Date(1500) });
    await rx.waitFor(5);
    const deadline = Date.now() + 5000;
    while (ex.stats().jsonLines!.linesWritten < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));

    // logrotate: move the file, send SIGHUP.
    renameSync(path, `${path}.1`);
    process.kill(process.pid, 'SIGHUP');
    await new Promise((r) => setTimeout(r, 50));
    agent.emit('record', record(4));
    await ex.close();
    await ex.close();

    const old = readFileSync(`${path}.1`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(old.map((l) => l['event'] ?? l['record']), ['final', 'final', 'final', 'lost', 'block']);
    assert.equal(old[0]!['srcPod'], 'api');
    assert.equal(old[0]!['srcNamespace'], 'shop');
    // The exporters name the workload and service from the agent's identity, beside the IPs.
    assert.deepEqual([old[0]!['srcIp'], old[0]!['srcWorkload'], old[0]!['srcService'], old[0]!['dstWorkload'], old[0]!['dstService']], ['198.18.0.1', 'Deployment/api', 'api-svc', null, null]);
    const now = readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(now.map((l) => l['srcPort']), [1004], 'after SIGHUP, lines go to the new file');

    assert.equal(rx.records.length, 6);
    assert.deepEqual(rx.records.map((r) => r.eventName), ['kubenetprobe.flow', 'kubenetprobe.flow', 'kubenetprobe.flow', 'kubenetprobe.lost', 'kubenetprobe.block', 'kubenetprobe.flow']);
    assert.deepEqual(rx.records.map((r) => r.body), [...old, ...now].map((l) => JSON.stringify(l)), 'the same lines, the same text, in both');

    const s = ex.stats();
    assert.equal(s.jsonLines!.linesWritten, 6);
    assert.equal(s.jsonLines!.reopens, 1);
    assert.equal(s.otlp!.recordsSent, 6);
    assert.deepEqual(errors, []);
    for (const e of ['record', 'security', 'block', 'lost'] as const) assert.equal(agent.listenerCount(e), 0, `${e}: unsubscribed`);
    assert.equal(process.listenerCount('SIGHUP'), 0);
  } finally {
    await ex.close();
    await rx.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a JSON lines path that cannot be opened fails the start, naming the field', async () => {
  await assert.rejects(startExporters(new FakeAgent(), config({ exportJsonLines: '/nonexistent-knp/x.jsonl' })), /exportJsonLines: cannot open/);
});
