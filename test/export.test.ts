/**
 * Export end to end: a real agent on a node in namespaces, exporting to a
 * JSON lines file and to an OTLP receiver in the test. Known UDP traffic
 * between two pods, a UDP port scan and a block: the file holds the flow's
 * records, whose deltas add up to exactly the datagrams sent on each veth,
 * with pod identity; the scan and the block are there too; and the
 * collector got the same lines, as OTLP protobuf.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../src/agent/agent.js';
import { loadConfig } from '../src/agent/config.js';
import type { FlowRecord } from '../src/agent/flow-accounter.js';
import { TestNet } from './helpers/testnet.js';
import { OtlpReceiver } from './helpers/otlp-receiver.js';
import { attachedTo, nothingAttached, sleep, waitFor } from './helpers/attached.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

const PORT = 5931;
const SRC_PORT = 48031;
const PAYLOAD = 40;

test('export: JSON lines file and OTLP from a running agent, flow deltas exact', async () => {
  const net = TestNet.create(2, { ipv6: false });
  const dir = mkdtempSync(join(tmpdir(), 'knp-export-'));
  const rx = await OtlpReceiver.start();
  let agent: Agent | undefined;
  try {
    const a = net.pod('a');
    const b = net.pod('b');
    const inventory = join(dir, 'inventory.json');
    writeFileSync(inventory, JSON.stringify({ pods: [
      { name: 'client', namespace: 'shop', labels: {}, ip: a.ipv4, workload: { kind: 'Deployment', name: 'client' } },
      { name: 'dns', namespace: 'kube-system', labels: {}, ip: b.ipv4, workload: { kind: 'DaemonSet', name: 'dns' }, service: 'kube-dns' },
    ] }));
    const file = join(dir, 'flows.jsonl');
    agent = await Agent.start(
      loadConfig({
        flags: {
          interface: [`kv${net.id}*`],
          intervalMs: 100,
          // Long enough to bridge the pause between the two rounds; short enough for a quick final record.
          idleTimeoutMs: 1000,
          // The flow is reported while it lasts (an active record) as well as at its end (final).
          activeTimeoutMs: 300,
          packetSampleRate: 0,
          inventory,
          exportJsonLines: file,
          otlpEndpoint: rx.url,
        },
      }),
    );
    const finals = new Set<string>();
    agent.on('record', (r: FlowRecord) => {
      if (r.reason === 'final' && r.flow.key.dstPort === PORT) finals.add(r.flow.interface ?? '?');
    });

    net.traffic(a, ['udp-send', b.ipv4, String(PORT), '300', String(PAYLOAD), String(SRC_PORT)]);
    await sleep(600);
    net.traffic(a, ['udp-send', b.ipv4, String(PORT), '200', String(PAYLOAD), String(SRC_PORT)]);
    // A UDP port scan (30 ports, over the default 20) and a block by hand.
    net.traffic(a, ['udp-spray', b.ipv4, '7000', '30', '1', '8']);
    agent.block('198.51.100.7', 0);
    agent.unblock('198.51.100.7');
    await waitFor('the final record of the flow', () => finals.has(a.hostIf), 10_000);
    await waitFor('the security event', () => agent!.recentSecurityEvents({ types: ['udp-port-scan'] }).length > 0, 5000);
    // The scan's flows end too; then both sinks have everything out.
    await sleep(1500);
    await waitFor('both sinks to catch up', () => {
      const s = agent!.stats().export;
      return s.jsonLines!.backlogLines === 0 && s.otlp!.queued === 0 && s.otlp!.recordsSent === s.jsonLines!.linesWritten;
    }, 10_000);
    const stats = agent.stats().export;
    await agent.close();
    agent = undefined;

    const lines = readFileSync(file, 'utf8').split('\n').slice(0, -1);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);

    // Counted once per node, at a's veth where it entered; none at b's, where it left.
    assert.equal(parsed.filter((l) => l['dstPort'] === PORT && l['interface'] === b.hostIf).length, 0, `no records at ${b.hostIf}`);
    assert.ok(!finals.has(b.hostIf));
    // The flow: records whose deltas add up to exactly what was sent.
    for (const [ifname, direction] of [[a.hostIf, 'ingress']] as const) {
      const recs = parsed.filter((l) => l['dstPort'] === PORT && l['interface'] === ifname);
      assert.ok(recs.length >= 2, `${ifname}: an active record and a final one (${recs.length})`);
      assert.equal(recs.reduce((s, l) => s + (l['deltaPackets'] as number), 0), 500, `${ifname}: deltaPackets add up to the datagrams sent`);
      assert.equal(recs.reduce((s, l) => s + (l['deltaBytes'] as number), 0), 500 * (20 + 8 + PAYLOAD), `${ifname}: deltaBytes too`);
      assert.equal(recs.at(-1)!['record'], 'final');
      assert.ok(recs.slice(0, -1).every((l) => l['record'] === 'active'));
      assert.equal(recs.at(-1)!['packets'], 500);
      for (const l of recs) {
        assert.equal(l['direction'], direction);
        assert.equal(l['protocol'], 'UDP');
        assert.deepEqual([l['srcIp'], l['srcPort'], l['srcNamespace'], l['srcPod'], l['srcWorkload'], l['srcService']], [a.ipv4, SRC_PORT, 'shop', 'client', 'Deployment/client', null]);
        assert.deepEqual([l['dstIp'], l['dstNamespace'], l['dstPod'], l['dstWorkload'], l['dstService']], [b.ipv4, 'kube-system', 'dns', 'DaemonSet/dns', 'kube-dns']);
        assert.deepEqual(Object.keys(l), [
          'time', 'firstSeen', 'interface', 'direction', 'protocol', 'srcIp', 'srcPort', 'srcNamespace', 'srcPod', 'srcWorkload', 'srcService',
          'dstIp', 'dstPort', 'dstNamespace', 'dstPod', 'dstWorkload', 'dstService',
          'packets', 'bytes', 'tcpFlags', 'state', 'record', 'deltaPackets', 'deltaBytes', 'packetsPerSec', 'bytesPerSec',
        ]);
      }
    }

    const scans = parsed.filter((l) => l['event'] === 'security' && l['type'] === 'udp-port-scan');
    assert.ok(scans.length >= 1, 'the scan is exported');
    assert.deepEqual(
      [scans[0]!['attackerPod'], scans[0]!['attackerWorkload'], scans[0]!['targetPod'], scans[0]!['targetWorkload'], scans[0]!['targetService'], (scans[0]!['target'] as { ip: string }).ip],
      ['client', 'Deployment/client', 'dns', 'DaemonSet/dns', 'kube-dns', b.ipv4],
    );
    const blocks = parsed.filter((l) => l['event'] === 'block');
    assert.deepEqual(blocks.map((l) => [l['action'], l['cause'], l['ip']]), [['blocked', 'manual', '198.51.100.7'], ['unblocked', 'manual', '198.51.100.7']]);

    // Nothing lost on the way, and the counters say so.
    assert.equal(stats.jsonLines!.linesWritten, lines.length);
    assert.equal(stats.jsonLines!.bytesWritten, Buffer.byteLength(lines.join('\n')) + 1);
    assert.equal(stats.jsonLines!.linesDropped, 0);
    assert.equal(stats.jsonLines!.errors, 0);
    // The collector got the same lines, in the same order.
    assert.equal(stats.otlp!.recordsSent, lines.length);
    assert.equal(stats.otlp!.recordsFailed + stats.otlp!.recordsDropped, 0);
    assert.deepEqual(rx.records.map((r) => r.body), lines);
    assert.ok(rx.contentTypes.every((t) => t === 'application/x-protobuf'));
    const scanRecord = rx.records.find((r) => r.eventName === 'kubenetprobe.security')!;
    assert.equal(scanRecord.attributes['kubenetprobe.type'], 'udp-port-scan');
    assert.equal(scanRecord.attributes['kubenetprobe.attackerPod'], 'client');
    assert.equal(scanRecord.attributes['kubenetprobe.targetService'], 'kube-dns');
  } finally {
    await agent?.close();
    await rx.close();
    await net.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kubenetprobe agent --export-json-lines stdout: stdout carries the JSON lines and nothing else', async () => {
  const net = TestNet.create(2, { ipv6: false });
  const agent = spawn(
    process.execPath,
    [CLI, 'agent', '--interface', `kv${net.id}*`, '--listen', '127.0.0.1:0', '--interval-ms', '100', '--idle-timeout-ms', '500', '--export-json-lines', 'stdout'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  agent.stdout.on('data', (d: Buffer) => (out += d.toString()));
  agent.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => agent.once('exit', r));
  const records = (): Record<string, unknown>[] =>
    out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  try {
    const a = net.pod('a');
    const b = net.pod('b');
    await waitFor('the agent to start', () => err.includes('API at'), 20000);
    net.traffic(a, ['udp-send', b.ipv4, '5932', '120', '30', '48032']);
    const flow = (): Record<string, unknown>[] => records().filter((l) => l['dstPort'] === 5932 && l['interface'] === a.hostIf);
    await waitFor('the final record on stdout', () => flow().some((l) => l['record'] === 'final'), 10_000);
    assert.equal(flow().reduce((s, l) => s + (l['deltaPackets'] as number), 0), 120);
  } finally {
    agent.kill('SIGTERM');
    const code = await exited;
    const leftAttached = net.pods.filter((p) => !nothingAttached(attachedTo(p.hostIf))).map((p) => p.hostIf);
    await net.close();
    assert.equal(code, 0, err);
    assert.deepEqual(leftAttached, [], 'nothing left attached');
  }
  // Every line of stdout is a JSON record (parsing throws otherwise); the agent's own words went to stderr.
  assert.ok(records().length >= 2);
  assert.doesNotMatch(out, /kubenetprobe agent:/);
  assert.match(err, /kubenetprobe agent: watching .*\n[\s\S]*API at http:\/\/127\.0\.0\.1:\d+/);
  assert.match(err, /SIGTERM, detaching/);
});
