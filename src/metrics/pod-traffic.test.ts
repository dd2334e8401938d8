import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PodTraffic } from './pod-traffic.js';
import { encodeAddress } from '../abi/ip.js';
import type { FlowTableView } from '../agent/flow-accounter.js';

type F = [src: string, dst: string, dir: 'ingress' | 'egress', packets: number, bytes: number];

/** A read of the table: flows with their key words as the kernel lays them out. */
function view(flows: F[], removed: number[] = []): FlowTableView {
  const keyWords = new Uint32Array(flows.length * 11);
  const bytes = new Uint8Array(keyWords.buffer);
  flows.forEach(([src, dst, dir], i) => {
    bytes.set(encodeAddress(src)!, i * 44);
    bytes.set(encodeAddress(dst)!, i * 44 + 16);
    bytes[i * 44 + 42] = dir === 'ingress' ? 0 : 1;
  });
  const r = new Uint8Array(flows.length);
  for (const i of removed) r[i] = 1;
  return { count: flows.length, removed: r, keyWords, packetsAt: (i) => flows[i]![3], bytesAt: (i) => flows[i]![4], flow: () => { throw new Error('not needed'); } };
}

const PODS: [string, string][] = [
  ['198.18.0.1', 'shop/frontend'],
  ['198.18.0.2', 'shop/api'],
  ['fd00::3', 'data/db'],
];

test('each pod counts what it sent (flows from its address) and received (flows to it): the kernel keeps one flow per packet per node', () => {
  const t = new PodTraffic(10);
  t.setPods(PODS);
  t.read(view([
    // frontend -> api, both on this node: counted at frontend's veth ingress only.
    ['198.18.0.1', '198.18.0.2', 'ingress', 10, 1000],
    ['198.18.0.2', '198.18.0.1', 'ingress', 5, 300],
    ['fd00::3', '203.0.113.9', 'ingress', 2, 200], // to the world
    ['203.0.113.9', '198.18.0.1', 'ingress', 7, 700], // from the world, counted entering at eth0
    ['192.0.2.1', 'fd00::3', 'egress', 3, 90], // sent by the host itself: counted leaving at db's veth
    ['203.0.113.9', '192.0.2.1', 'ingress', 4, 400], // neither end a pod of this node
  ]));
  const { pods, other } = t.series();
  assert.deepEqual(pods.get('shop/frontend'), { sentBytes: 1000, sentPackets: 10, receivedBytes: 1000, receivedPackets: 12 });
  assert.deepEqual(pods.get('shop/api'), { sentBytes: 300, sentPackets: 5, receivedBytes: 1000, receivedPackets: 10 });
  assert.deepEqual(pods.get('data/db'), { sentBytes: 200, sentPackets: 2, receivedBytes: 90, receivedPackets: 3 });
  assert.deepEqual(other, { sentBytes: 0, sentPackets: 0, receivedBytes: 0, receivedPackets: 0 });
});

test('totals stay monotonic as flows end (final figures before the read that no longer has them)', () => {
  const t = new PodTraffic(10);
  t.setPods(PODS);
  t.read(view([['198.18.0.1', '198.18.0.2', 'ingress', 10, 1000]]));
  // The flow grew to 12 packets and was evicted: its final record, then a read without it.
  t.ended({ srcIp: '198.18.0.1', dstIp: '198.18.0.2' }, 12, 1200);
  t.read(view([['198.18.0.1', '198.18.0.2', 'ingress', 12, 1200]], [0]));
  assert.equal(t.series().pods.get('shop/frontend')!.sentBytes, 1200);
  // A new flow from the same pod adds on top.
  t.read(view([['198.18.0.1', '198.18.0.2', 'ingress', 1, 100]]));
  assert.equal(t.series().pods.get('shop/frontend')!.sentBytes, 1300);
});

test('endedAt() (by the raw key, for evicted flows) counts exactly as ended() does', () => {
  const byIp = new PodTraffic(10);
  const byKey = new PodTraffic(10);
  const flows: F[] = [
    ['198.18.0.1', '198.18.0.2', 'ingress', 12, 1200],
    ['198.18.0.2', '198.18.0.1', 'egress', 7, 700],
    ['198.18.9.9', '198.18.0.1', 'ingress', 3, 300],
  ];
  const v = view(flows);
  for (const t of [byIp, byKey]) t.setPods(PODS);
  flows.forEach(([src, dst, , packets, bytes], i) => {
    byIp.ended({ srcIp: src, dstIp: dst }, packets, bytes);
    byKey.endedAt(v.keyWords, i * 11, packets, bytes);
  });
  const none = view([]);
  byIp.read(none);
  byKey.read(none);
  assert.deepEqual(byKey.series(), byIp.series());
  assert.equal(byKey.series().pods.get('shop/frontend')!.sentBytes, 1200);
});

test('the budget: the biggest pods get series, the rest are summed under other, and nothing ever goes down', () => {
  const t = new PodTraffic(2);
  const pods: [string, string][] = Array.from({ length: 6 }, (_, i) => [`198.18.1.${i + 1}`, `ns/p${i + 1}`]);
  t.setPods(pods);
  // p1..p6 send 100..600 bytes.
  const flows = (scale: number): F[] => pods.map(([ip], i) => [ip, '198.18.9.9', 'ingress', i + 1, (i + 1) * 100 * scale]);
  t.read(view(flows(1)));
  let s = t.series();
  assert.deepEqual([...s.pods.keys()].sort(), ['ns/p5', 'ns/p6']);
  // The two biggest have their own from the start; the other four are summed.
  assert.equal(s.pods.get('ns/p6')!.sentBytes, 600);
  assert.equal(s.other.sentBytes, 1000);
  const sum = (k: 'sentBytes') => [...s.pods.values()].reduce((a, c) => a + c[k], 0) + s.other[k];
  assert.equal(sum('sentBytes'), 2100, 'every byte is in exactly one series');
  const before = { other: s.other.sentBytes, p6: s.pods.get('ns/p6')!.sentBytes };
  t.read(view(flows(2)));
  s = t.series();
  assert.equal(sum('sentBytes'), 4200);
  assert.ok(s.other.sentBytes >= before.other && s.pods.get('ns/p6')!.sentBytes >= before.p6, 'monotonic');
  assert.equal(s.pods.size, 2, 'never more than the budget');
  // p6 goes away: its series goes; p4 (next biggest) takes the place; "other" keeps what it had.
  t.setPods(pods.filter(([, p]) => p !== 'ns/p6'));
  const otherBefore = s.other.sentBytes;
  t.read(view(flows(2).slice(0, 5)));
  s = t.series();
  assert.ok(!s.pods.has('ns/p6'));
  assert.deepEqual([...s.pods.keys()].sort(), ['ns/p4', 'ns/p5']);
  assert.ok(s.other.sentBytes >= otherBefore);
});

test('workloads: each sums all its pods, whatever the budget, never goes down, and goes with its last pod', () => {
  const t = new PodTraffic(1);
  const pods: [string, string, string][] = [
    ['198.18.2.1', 'shop/web-1', 'shop/Deployment/web'],
    ['198.18.2.2', 'shop/web-2', 'shop/Deployment/web'],
    ['198.18.2.3', 'shop/db-0', 'shop/StatefulSet/db'],
  ];
  t.setPods([...pods, ['198.18.2.9', 'shop/bare', undefined] as [string, string, undefined]]);
  t.read(view([
    ['198.18.2.1', '198.18.2.3', 'ingress', 10, 1000],
    ['198.18.2.2', '198.18.2.3', 'ingress', 3, 300],
    ['198.18.2.9', '198.18.2.3', 'ingress', 1, 50],
  ]));
  let s = t.series();
  assert.equal(s.pods.size, 1, 'the pod budget');
  assert.deepEqual(s.workloads.get('shop/Deployment/web'), { sentBytes: 1300, sentPackets: 13, receivedBytes: 0, receivedPackets: 0 });
  // db also received the bare pod's 50 bytes: a pod without a workload is still a pod.
  assert.deepEqual(s.workloads.get('shop/StatefulSet/db'), { sentBytes: 0, sentPackets: 0, receivedBytes: 1350, receivedPackets: 14 });
  assert.equal(s.workloads.size, 2, 'a pod without a workload adds to none');
  // web-2 goes: the Deployment keeps what it counted and carries on with web-1.
  t.setPods([pods[0]!, pods[2]!]);
  t.read(view([['198.18.2.1', '198.18.2.3', 'ingress', 12, 1200]]));
  s = t.series();
  assert.equal(s.workloads.get('shop/Deployment/web')!.sentPackets, 15);
  // The last pod of the Deployment goes: so does its series.
  t.setPods([pods[2]!]);
  t.read(view([]));
  assert.deepEqual([...t.series().workloads.keys()], ['shop/StatefulSet/db']);
});
