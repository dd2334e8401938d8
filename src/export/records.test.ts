/**
 * The exported lines are the CLI's lines: for the same record, the path from
 * the agent's in-memory objects (records.ts) gives exactly the object, and
 * the same JSON text (key order included), that the API's JSON plus the
 * shared builders give.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FlowRecord } from '../agent/flow-accounter.js';
import type { LostReport } from '../agent/agent.js';
import type { PodIdentity } from '../agent/inventory.js';
import type { BlockChange, FlowStats, SecurityEvent } from '../types.js';
import { blockChangeLine, flowLine, lostLine, securityLine, type BlockChangeWire, type FlowWire, type LostWire, type SecurityEventWire } from './lines.js';
import { blockChangeRecordLine, flowRecordLine, lostRecordLine, securityEventLine } from './records.js';

/** What the API does to objects (src/api/server.ts): JSON with bigints as strings. */
const overTheWire = <T>(v: unknown): T => JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x))) as T;

const pods = new Map<string, PodIdentity>([
  ['198.18.0.1', { namespace: 'shop', pod: 'frontend-6b7c-xk2p', labels: { app: 'frontend' }, workload: { kind: 'Deployment', name: 'frontend' }, service: 'frontend', node: 'node-1' }],
  ['198.18.0.2', { namespace: 'data', pod: 'db-0', labels: {}, workload: { kind: 'StatefulSet', name: 'db' } }],
  ['198.18.0.9', { namespace: 'default', pod: 'attacker', labels: {} }],
]);
const identify = (ip: string): PodIdentity | undefined => pods.get(ip);

function flow(over: Partial<FlowStats> = {}): FlowStats {
  return {
    key: { family: 'ipv4', srcIp: '198.18.0.1', dstIp: '198.18.0.2', srcPort: 40000, dstPort: 5432, protocol: 'TCP', protocolNumber: 6, direction: 'egress', ifindex: 7 },
    interface: 'kv01a',
    packets: 1234,
    bytes: 5_000_000_123,
    firstSeen: new Date('2026-11-26T14:00:00.010Z'),
    lastSeen: new Date('2026-11-26T14:00:33.456Z'),
    tcpFlags: Object.freeze(['SYN', 'ACK', 'FIN']),
    synCount: 1,
    finCount: 1,
    rstCount: 0,
    opened: true,
    ...over,
  };
}

/** The API path: the live stream's record (no identity), with the identity /flows gives each end, through JSON. */
function flowByWire(r: FlowRecord): Record<string, unknown> {
  const wire = overTheWire<{ reason: 'active' | 'final'; flow: FlowWire; deltaPackets: number; deltaBytes: number; packetsPerSec: number; bytesPerSec: number }>(r);
  const f: FlowWire = { ...wire.flow, source: overTheWire(identify(r.flow.key.srcIp) ?? null), destination: overTheWire(identify(r.flow.key.dstIp) ?? null) };
  return flowLine(f, { record: wire.reason, deltaPackets: wire.deltaPackets, deltaBytes: wire.deltaBytes, packetsPerSec: wire.packetsPerSec, bytesPerSec: wire.bytesPerSec });
}

const same = (inMemory: object, byWire: object): void => {
  assert.deepStrictEqual(inMemory, byWire);
  assert.equal(JSON.stringify(inMemory), JSON.stringify(byWire), 'the same text, key order included');
};

test('flow records: the in-memory path gives the API path\'s line', () => {
  const records: FlowRecord[] = [
    { reason: 'final', flow: flow(), deltaPackets: 34, deltaBytes: 40_000, packetsPerSec: 0, bytesPerSec: 0 },
    { reason: 'active', flow: flow({ interface: undefined }), deltaPackets: 1200, deltaBytes: 4_999_960_123, packetsPerSec: 12.5, bytesPerSec: 1e6 / 3 },
    {
      reason: 'active',
      flow: flow({
        key: { family: 'ipv6', srcIp: 'fd00::1', dstIp: 'fd00::2', srcPort: 17, dstPort: 128 << 8, protocol: 'ICMPv6', protocolNumber: 58, direction: 'ingress', ifindex: 3, icmp: { type: 128, code: 0 } },
        tcpFlags: Object.freeze([]),
      }),
      deltaPackets: 3,
      deltaBytes: 312,
      packetsPerSec: 1,
      bytesPerSec: 104,
    },
  ];
  for (const r of records) same(flowRecordLine(r, identify), flowByWire(r));

  const line = flowRecordLine(records[0]!, identify);
  assert.deepEqual(Object.keys(line), [
    'time', 'firstSeen', 'interface', 'direction', 'protocol', 'srcIp', 'srcPort', 'srcNamespace', 'srcPod', 'srcWorkload', 'srcService',
    'dstIp', 'dstPort', 'dstNamespace', 'dstPod', 'dstWorkload', 'dstService',
    'packets', 'bytes', 'tcpFlags', 'state', 'record', 'deltaPackets', 'deltaBytes', 'packetsPerSec', 'bytesPerSec',
  ]);
  // The names beside the IPs: workload as Kind/name, service where known, null where not.
  assert.deepEqual(
    [line.srcIp, line.srcNamespace, line.srcPod, line.srcWorkload, line.srcService, line.dstIp, line.dstNamespace, line.dstPod, line.dstWorkload, line.dstService],
    ['198.18.0.1', 'shop', 'frontend-6b7c-xk2p', 'Deployment/frontend', 'frontend', '198.18.0.2', 'data', 'db-0', 'StatefulSet/db', null],
  );
  const v6 = flowRecordLine(records[2]!, identify);
  assert.deepEqual([v6.srcNamespace, v6.srcPod, v6.srcWorkload, v6.srcService, v6.dstWorkload], [null, null, null, null, null], 'unknown addresses: null');
  assert.equal(line.time, '2026-11-26T14:00:33.456Z');
  assert.equal(flowRecordLine(records[1]!, identify).interface, null);
});

test('security events, block changes and lost reports: the in-memory path gives the API path\'s line', () => {
  const e: SecurityEvent = {
    timestamp: new Date('2026-11-26T14:00:33.456Z'),
    timestampNs: 123456789012345n,
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
    suppressed: 3,
    tcpFlags: ['SYN'],
    cpu: 1,
    seq: 9007199254740993n,
  };
  const view = { ...e, attackerIdentity: identify(e.attacker.ip) ?? null, targetIdentity: identify(e.target.ip) ?? null };
  same(securityEventLine(e, identify), securityLine(overTheWire<SecurityEventWire>(view)));
  same(securityEventLine({ ...e, interface: undefined }, identify), securityLine(overTheWire<SecurityEventWire>({ ...view, interface: undefined })));
  const line = securityEventLine(e, identify);
  assert.deepEqual(
    [line.attacker, line.attackerNamespace, line.attackerPod, line.attackerWorkload, line.attackerService, line.target, line.targetNamespace, line.targetPod, line.targetWorkload, line.targetService],
    [{ ip: '198.18.0.9', port: 61000 }, 'default', 'attacker', null, null, { ip: '198.18.0.2', port: 443 }, 'data', 'db-0', 'StatefulSet/db', null],
  );
  const toFrontend = securityEventLine({ ...e, target: { ip: '198.18.0.1', port: 443 } }, identify);
  assert.deepEqual([toFrontend.targetWorkload, toFrontend.targetService], ['Deployment/frontend', 'frontend']);

  const blocked: BlockChange = {
    action: 'blocked',
    cause: 'detector',
    block: { ip: '198.18.0.9', reason: 'tcp-port-scan', createdAt: new Date('2026-11-26T14:00:34Z'), expiresAt: new Date('2026-11-26T14:05:34Z'), packetsDropped: 0 },
    at: new Date('2026-11-26T14:00:34.001Z'),
  };
  const lifted: BlockChange = { action: 'unblocked', cause: 'manual', block: { ...blocked.block, expiresAt: undefined, packetsDropped: 77 }, at: new Date('2026-11-26T14:01:00Z') };
  for (const c of [blocked, lifted]) same(blockChangeRecordLine(c), blockChangeLine(overTheWire<BlockChangeWire>(c)));
  assert.equal(blockChangeRecordLine(lifted).expiresAt, null);

  const lost: LostReport = { ring: 'security', count: 5, total: 12, at: new Date('2026-11-26T14:00:35Z') };
  same(lostRecordLine(lost), lostLine(overTheWire<LostWire>(lost)));
});
