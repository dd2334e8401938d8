import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockChangeCompact, blockChangeLine, historyFlowLine, lostCompact, lostLine, relative, renderBlocks, renderHistoryFlows, renderSecurityEvents, securityCompact, securityLine, type HistoryFlowWire, type SecurityEventWire } from './render.js';

const event: SecurityEventWire = {
  timestamp: '2026-11-26T14:00:33.456Z',
  type: 'tcp-port-scan',
  severity: 'high',
  description: 'TCP port scan (SYN): 198.18.1.5 probed 20 ports on 198.18.1.9 within 1000 ms (threshold 20)',
  key: { protocol: 'TCP', direction: 'ingress', ifindex: 7 },
  attacker: { ip: '198.18.1.5', port: 40000 },
  target: { ip: '198.18.1.9', port: 443 },
  attackerIdentity: { namespace: 'default', pod: 'attacker', workload: { kind: 'Pod', name: 'attacker' } },
  targetIdentity: null,
  interface: 'veth1',
  hook: 'tc-ingress',
  count: 20,
  threshold: 20,
  windowMs: 1000,
  suppressed: 0,
  tcpFlags: ['SYN'],
  cpu: 1,
  seq: '42',
};

test('security json lines: the documented fields, in order', () => {
  const line = securityLine(event);
  assert.deepEqual(Object.keys(line), [
    'time', 'event', 'type', 'severity', 'attacker', 'target', 'attackerNamespace', 'attackerPod', 'targetNamespace', 'targetPod',
    'attackerWorkload', 'attackerService', 'targetWorkload', 'targetService',
    'interface', 'hook', 'protocol', 'count', 'threshold', 'windowMs', 'suppressed', 'tcpFlags', 'cpu', 'seq', 'description',
  ]);
  assert.equal(line['seq'], 42);
  assert.equal(line['attackerPod'], 'attacker');
  assert.equal(line['attackerWorkload'], 'Pod/attacker');
  assert.equal(line['attackerService'], null);
  assert.equal(line['targetPod'], null);
  assert.equal(line['targetWorkload'], null);
  const toApi = securityLine({ ...event, targetIdentity: { namespace: 'shop', pod: 'api-7d9f-bbbbb', workload: { kind: 'Deployment', name: 'api' }, service: 'api', node: 'node-1' } });
  assert.deepEqual([toApi.target, toApi.targetNamespace, toApi.targetPod, toApi.targetWorkload, toApi.targetService], [event.target, 'shop', 'api-7d9f-bbbbb', 'Deployment/api', 'api'], 'the IPs beside the names');
  assert.equal(renderSecurityEvents([event], 'json'), JSON.stringify(line));
});

test('security table and compact lines', () => {
  const t = renderSecurityEvents([event], 'table').split('\n');
  assert.match(t[0]!, /^TIME +SEVERITY +TYPE +ATTACKER +TARGET +INTERFACE +DESCRIPTION$/);
  assert.match(t[1]!, /^2026-11-26 14:00:33\.456 +high +tcp-port-scan +default\/attacker:40000 +198\.18\.1\.9:443 +veth1 +TCP port scan \(SYN\): /);
  assert.equal(securityCompact(event), `2026-11-26T14:00:33.456Z SECURITY high tcp-port-scan 198.18.1.5:40000 -> 198.18.1.9:443 on veth1: ${event.description}`);
  // A known service goes beside the pod.
  const toApi = renderSecurityEvents([{ ...event, targetIdentity: { namespace: 'shop', pod: 'api-0', service: 'api' } }], 'table').split('\n');
  assert.match(toApi[1]!, / +default\/attacker:40000 +shop\/api-0:443 \(svc api\) +veth1 +TCP port scan/);
});

test('blocks, block changes and lost reports', () => {
  const block = { ip: '198.18.1.5', reason: 'manual', createdAt: '2026-11-26T14:00:00.000Z', expiresAt: '2026-11-26T14:05:00.000Z', packetsDropped: 12 };
  const now = Date.parse('2026-11-26T14:01:00.000Z');
  const t = renderBlocks([block, { ...block, ip: 'fd00::5', reason: 'tcp-port-scan', expiresAt: undefined }], 'table', now).split('\n');
  assert.match(t[0]!, /^IP +REASON +SINCE +EXPIRES +DROPPED$/);
  assert.match(t[1]!, /^198\.18\.1\.5 +manual +2026-11-26 14:00:00\.000 +2026-11-26 14:05:00\.000 \(in 4 min\) +12$/);
  assert.match(t[2]!, /^fd00::5 +tcp-port-scan +2026-11-26 14:00:00\.000 +until lifted +12$/);
  assert.equal(renderBlocks([block], 'json'), JSON.stringify({ ip: '198.18.1.5', reason: 'manual', createdAt: block.createdAt, expiresAt: block.expiresAt, packetsDropped: 12 }));
  const change = { action: 'unblocked' as const, cause: 'expired' as const, block, at: '2026-11-26T14:05:00.100Z' };
  assert.deepEqual(blockChangeLine(change), { time: change.at, event: 'block', action: 'unblocked', cause: 'expired', ip: '198.18.1.5', reason: 'manual', createdAt: block.createdAt, expiresAt: block.expiresAt, packetsDropped: 12 });
  assert.equal(blockChangeCompact(change), '2026-11-26T14:05:00.100Z BLOCK 198.18.1.5 unblocked (expired) after 12 packets dropped');
  assert.equal(
    blockChangeCompact({ action: 'blocked', cause: 'detector', block: { ...block, reason: 'tcp-port-scan', expiresAt: undefined }, at: block.createdAt }),
    '2026-11-26T14:00:00.000Z BLOCK 198.18.1.5 blocked (by tcp-port-scan) until lifted',
  );
  const lost = { ring: 'security', count: 76, total: 80, at: '2026-11-26T14:00:01.000Z' };
  assert.deepEqual(lostLine(lost), { time: lost.at, event: 'lost', ring: 'security', count: 76, total: 80 });
  assert.equal(lostCompact(lost), '2026-11-26T14:00:01.000Z LOST 76 security events (80 since the agent started)');
});

test('relative times', () => {
  assert.equal(relative(30_000), 'in 30 s');
  assert.equal(relative(-90_000), '90 s ago');
  assert.equal(relative(300_000), 'in 5 min');
  assert.equal(relative(3 * 3_600_000), 'in 3 h');
  assert.equal(relative(3 * 86_400_000), 'in 3 d');
});

test('history rows: the flow line with packets and bytes as the record counted them, then the record and the totals', () => {
  const row: HistoryFlowWire = {
    key: { srcIp: '198.18.1.5', dstIp: '198.18.1.9', srcPort: 40000, dstPort: 53, protocol: 'UDP', direction: 'ingress', ifindex: 7 },
    interface: 'veth1',
    record: 'final',
    firstSeen: '2026-11-26T14:00:00.000Z',
    lastSeen: '2026-11-26T14:00:33.456Z',
    packets: 40,
    bytes: 4000,
    deltaPackets: 40,
    deltaBytes: 4000,
    totalPackets: 140,
    totalBytes: 14000,
    packetsPerSec: 2,
    bytesPerSec: 200,
    tcpFlags: [],
    source: { namespace: 'default', pod: 'client', workload: { kind: 'Deployment', name: 'client' }, service: 'client' },
    destination: null,
  };
  const line = historyFlowLine(row);
  assert.deepEqual(Object.keys(line), [
    'time', 'firstSeen', 'interface', 'direction', 'protocol', 'srcIp', 'srcPort', 'srcNamespace', 'srcPod', 'srcWorkload', 'srcService',
    'dstIp', 'dstPort', 'dstNamespace', 'dstPod', 'dstWorkload', 'dstService',
    'packets', 'bytes', 'tcpFlags', 'state', 'record', 'deltaPackets', 'deltaBytes', 'packetsPerSec', 'bytesPerSec', 'totalPackets', 'totalBytes',
  ]);
  assert.deepEqual([line['srcWorkload'], line['srcService'], line['dstWorkload'], line['dstService']], ['Deployment/client', 'client', null, null]);
  assert.deepEqual([line['time'], line['packets'], line['state'], line['record'], line['totalPackets'], line['srcPod'], line['dstPod']], [row.lastSeen, 40, null, 'final', 140, 'client', null]);
  assert.equal(renderHistoryFlows([row], 'json'), JSON.stringify(line));
  const t = renderHistoryFlows([row], 'table').split('\n');
  assert.match(t[1]!, /^2026-11-26 14:00:33\.456 +veth1 +ingress +UDP +default\/client:40000 \(svc client\) +198\.18\.1\.9:53 +40 +4000 +- +final$/);
});

test('a security event from history (no ifindex) shows its interface, or -', () => {
  const fromHistory = { ...event, key: { protocol: 'TCP', direction: 'ingress' } } as unknown as SecurityEventWire;
  assert.match(renderSecurityEvents([{ ...fromHistory, interface: undefined }], 'table').split('\n')[1]!, / +- +TCP port scan/);
});
