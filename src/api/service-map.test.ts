import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_PORTS_PER_PAIR, WORLD, buildServiceMap, type ServiceMapInput } from './service-map.js';
import type { PodIdentity } from '../agent/inventory.js';
import type { FlowStats, SecurityEvent } from '../types.js';

const NOW = new Date('2026-11-26T12:00:00Z');

const PODS = new Map<string, PodIdentity>([
  ['10.0.0.1', { namespace: 'shop', pod: 'web-1', labels: { app: 'web' }, workload: { kind: 'Deployment', name: 'web' } }],
  ['10.0.0.2', { namespace: 'data', pod: 'db-0', labels: { app: 'db' }, workload: { kind: 'StatefulSet', name: 'db' }, service: 'db' }],
  ['10.0.0.3', { namespace: 'attacker', pod: 'scanner', labels: {} }],
  ['10.0.0.4', { namespace: 'idle', pod: 'sleeper', labels: { app: 'sleeper' } }],
]);

type Flow = ServiceMapInput['flows'][number];

function flow(src: string, sport: number, dst: string, dport: number, o: { bps?: number; packets?: number; opened?: boolean; rst?: number; ifindex?: number; proto?: 'TCP' | 'UDP' } = {}): Flow {
  const proto = o.proto ?? 'TCP';
  const f: FlowStats = {
    key: { family: 'ipv4', srcIp: src, dstIp: dst, srcPort: sport, dstPort: dport, protocol: proto, protocolNumber: proto === 'TCP' ? 6 : 17, direction: 'ingress', ifindex: o.ifindex ?? 1 },
    interface: `veth${o.ifindex ?? 1}`,
    packets: o.packets ?? 10,
    bytes: (o.packets ?? 10) * 100,
    firstSeen: NOW,
    lastSeen: NOW,
    tcpFlags: o.opened ? ['SYN', 'ACK'] : ['ACK'],
    synCount: o.opened ? 1 : 0,
    finCount: 0,
    rstCount: o.rst ?? 0,
    opened: o.opened ?? false,
  } as FlowStats;
  return { ...f, bytesPerSec: o.bps ?? 1000, packetsPerSec: 10 };
}

function input(flows: Flow[], extra: Partial<ServiceMapInput> = {}): ServiceMapInput {
  return { flows, identity: (ip) => PODS.get(ip), knownPods: PODS, securityEvents: [], blocks: [], filter: {}, now: NOW, ...extra };
}

test('one edge from client to server with the server port, both directions counted once', () => {
  const m = buildServiceMap(
    input([
      flow('10.0.0.1', 40000, '10.0.0.2', 5432, { opened: true, bps: 1000, ifindex: 1 }),
      flow('10.0.0.1', 40000, '10.0.0.2', 5432, { opened: true, bps: 990, packets: 9, ifindex: 2 }), // the same packets seen on the other veth
      flow('10.0.0.2', 5432, '10.0.0.1', 40000, { bps: 500 }),
      flow('10.0.0.1', 40001, '10.0.0.2', 5432, { opened: true, bps: 100 }),
    ]),
  );
  assert.equal(m.edges.length, 1);
  const e = m.edges[0]!;
  assert.equal(e.source, 'pod:shop/web-1');
  assert.equal(e.target, 'pod:data/db-0');
  assert.equal(e.protocol, 'TCP');
  assert.equal(e.port, 5432);
  assert.equal(e.connections, 2);
  assert.equal(e.bytesPerSec, 1600);
  const db = m.nodes.find((n) => n.id === 'pod:data/db-0')!;
  assert.equal(db.service, 'db');
  assert.deepEqual(db.workload, { kind: 'StatefulSet', name: 'db' });
  assert.equal(db.bytesPerSecIn, 1600);
  assert.ok(m.nodes.some((n) => n.id === 'pod:idle/sleeper'), 'idle known pods are shown');
  assert.ok(!m.nodes.some((n) => n.id === WORLD), 'no world without traffic to it');
});

test('unknown addresses are the world; traffic between two of them is left out', () => {
  const m = buildServiceMap(input([flow('10.0.0.1', 40000, '93.184.216.34', 443, { opened: true }), flow('93.184.216.34', 1, '8.8.8.8', 53, { proto: 'UDP' })]));
  const w = m.nodes.find((n) => n.id === WORLD)!;
  assert.deepEqual(w.ips, ['93.184.216.34']);
  assert.equal(m.edges.length, 1);
  assert.equal(m.edges[0]!.target, WORLD);
});

test('a scan becomes one edge, marked with its security events; resets stand out', () => {
  const flows = Array.from({ length: 50 }, (_, i) => flow('10.0.0.3', 50000, '10.0.0.2', i + 1, { opened: true, rst: 1 }));
  const ev = {
    timestamp: new Date(NOW.getTime() - 1000),
    type: 'tcp-port-scan',
    severity: 'high',
    key: flows[0]!.key,
    attacker: { ip: '10.0.0.3', port: 50000 },
    target: { ip: '10.0.0.2', port: 7 },
    interface: 'veth1',
  } as unknown as SecurityEvent;
  const old = { ...ev, timestamp: new Date(NOW.getTime() - 3_600_000), type: 'tcp-xmas-scan' } as SecurityEvent;
  const m = buildServiceMap(input(flows, { securityEvents: [ev, old] }));
  assert.ok(50 > MAX_PORTS_PER_PAIR);
  assert.equal(m.edges.length, 1);
  const e = m.edges[0]!;
  assert.equal(e.port, null);
  assert.equal(e.ports, 50);
  assert.equal(e.resets, 50);
  assert.equal(e.securityEvents, 1, 'only events within the window');
  assert.equal(e.severity, 'high');
  assert.deepEqual(e.securityTypes, ['tcp-port-scan']);
  assert.ok(m.nodes.find((n) => n.id === 'pod:attacker/scanner')!.alert);
});

test('a security event without traffic gets an edge of its own; blocked sources count drops', () => {
  const ev = { timestamp: NOW, type: 'ping-sweep', severity: 'medium', key: { protocol: 'ICMP' }, attacker: { ip: '10.0.0.3', port: 0 }, target: { ip: '10.0.0.1', port: 0 } } as unknown as SecurityEvent;
  const m = buildServiceMap(
    input([flow('10.0.0.3', 40000, '10.0.0.2', 80, { opened: true })], {
      securityEvents: [ev],
      blocks: [{ ip: '10.0.0.3', reason: 'manual', createdAt: NOW, expiresAt: undefined, packetsDropped: 7 }],
    }),
  );
  const sec = m.edges.find((e) => e.target === 'pod:shop/web-1')!;
  assert.equal(sec.protocol, 'ICMP');
  assert.equal(sec.port, null);
  assert.equal(sec.bytes, 0);
  assert.equal(sec.securityEvents, 1);
  assert.ok(m.edges.every((e) => e.drops === 7));
});

test('filters narrow the map: a namespace keeps its pods and their peers', () => {
  const flows = [flow('10.0.0.1', 40000, '10.0.0.2', 5432, { opened: true }), flow('10.0.0.3', 40000, '10.0.0.2', 80, { opened: true })];
  const m = buildServiceMap(input(flows, { filter: { namespace: 'shop' } }));
  assert.deepEqual(m.nodes.map((n) => n.id).sort(), ['pod:data/db-0', 'pod:shop/web-1']);
  assert.equal(m.edges.length, 1);
  const byPort = buildServiceMap(input(flows, { filter: { port: 80 } }));
  assert.deepEqual(byPort.nodes.map((n) => n.id).sort(), ['pod:attacker/scanner', 'pod:data/db-0'], 'a port filter shows only pods with such traffic');
  const byLabel = buildServiceMap(input(flows, { filter: { label: 'app=sleeper' } }));
  assert.deepEqual(byLabel.nodes.map((n) => n.id), ['pod:idle/sleeper']);
  assert.equal(byLabel.edges.length, 0);
});

test('limit keeps the edges that stand out, then the busiest', () => {
  const flows = [
    flow('10.0.0.1', 40000, '10.0.0.2', 1, { opened: true, bps: 10 }),
    flow('10.0.0.1', 40001, '10.0.0.2', 2, { opened: true, bps: 1000 }),
    flow('10.0.0.1', 40002, '10.0.0.2', 3, { opened: true, bps: 1, rst: 1 }),
  ];
  const m = buildServiceMap(input(flows, { limit: 2 }));
  assert.deepEqual(m.edges.map((e) => e.port).sort(), [2, 3]);
  assert.equal(m.truncatedEdges, 1);
});
