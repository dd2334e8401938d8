/**
 * The finder's logic over a fake netlink (the kernel side is in
 * test/pod-attach.test.ts): which answer wins, what is cached, what is
 * asked again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo, LinkInfo, RouteInfo } from '../netlink/rtnetlink.js';
import { PodInterfaceFinder, type NetlinkQueries } from './pod-interfaces.js';

function fake(state: { links: LinkInfo[]; addresses: Record<number, AddressInfo[]>; routes: Record<string, RouteInfo> }) {
  const calls = { addresses: [] as (number | undefined)[], routes: [] as string[] };
  const nl: NetlinkQueries = {
    links: () => state.links,
    addresses: (nsid?: number) => {
      calls.addresses.push(nsid);
      const a = nsid === undefined ? undefined : state.addresses[nsid];
      if (!a) throw new Error(`EINVAL: no namespace id ${nsid}`);
      return a;
    },
    routeTo: (ip: string) => {
      calls.routes.push(ip);
      return state.routes[ip];
    },
  };
  return { nl, calls };
}

const veth = (ifindex: number, name: string, peerNetnsId: number, peerIfindex = 2): LinkInfo => ({ ifindex, name, kind: 'veth', master: undefined, peerIfindex, peerNetnsId });

test("a peer's address names the pod's interface; link-local addresses name no one", () => {
  const { nl } = fake({
    links: [veth(10, 'cali1', 0), veth(11, 'lxc2', 1)],
    addresses: { 0: [{ ifindex: 2, ip: '10.0.0.5', prefixLen: 32 }, { ifindex: 1, ip: '127.0.0.1', prefixLen: 8 }], 1: [{ ifindex: 2, ip: 'fe80::1', prefixLen: 64 }] },
    routes: {},
  });
  const f = new PodInterfaceFinder(nl);
  assert.deepEqual([...f.find(['10.0.0.5', '127.0.0.1', 'fe80::1'])], [['10.0.0.5', { ifindex: 10, name: 'cali1', foundBy: 'peer-address' }]]);
});

test('the route names it where the addresses do not, but only a link into another namespace', () => {
  const { nl, calls } = fake({
    links: [veth(10, 'cali1', 0), { ifindex: 3, name: 'cilium_host', kind: 'veth', master: undefined, peerIfindex: 4, peerNetnsId: undefined }],
    addresses: { 0: [] },
    routes: { '10.0.0.9': { oif: 10, type: 'unicast' }, '10.0.1.9': { oif: 3, type: 'unicast' }, '10.0.0.10': { oif: 10, type: 'other' } },
  });
  let now = 0;
  const f = new PodInterfaceFinder(nl, () => now);
  assert.deepEqual([...f.find(['10.0.0.9', '10.0.1.9', '10.0.0.10'])], [['10.0.0.9', { ifindex: 10, name: 'cali1', foundBy: 'route' }]]);
  // A miss is not asked again for a while (pods of other nodes), a hit is.
  calls.routes.length = 0;
  f.find(['10.0.0.9', '10.0.1.9']);
  assert.deepEqual(calls.routes, ['10.0.0.9']);
  now += 10_001;
  calls.routes.length = 0;
  f.find(['10.0.1.9']);
  assert.deepEqual(calls.routes, ['10.0.1.9']);
});

test('addresses are read again only when the links into a namespace change, a peer had none, or a minute passed', () => {
  const state = {
    links: [veth(10, 'veth1', 0)],
    addresses: { 0: [] as AddressInfo[], 1: [{ ifindex: 2, ip: '10.0.0.7', prefixLen: 24 }] } as Record<number, AddressInfo[]>,
    routes: {},
  };
  const { nl, calls } = fake(state);
  let now = 0;
  const f = new PodInterfaceFinder(nl, () => now);
  assert.equal(f.find(['10.0.0.6']).size, 0, 'no address yet: the CNI sets it after moving the veth in');
  state.addresses[0] = [{ ifindex: 2, ip: '10.0.0.6', prefixLen: 24 }];
  assert.equal(f.find(['10.0.0.6']).get('10.0.0.6')?.name, 'veth1', 'asked again, since the peer had no address');
  calls.addresses.length = 0;
  f.find(['10.0.0.6']);
  assert.deepEqual(calls.addresses, [], 'cached');
  state.links = [veth(10, 'veth1', 0), veth(12, 'veth2', 1)];
  f.find(['10.0.0.6', '10.0.0.7']);
  assert.deepEqual(calls.addresses, [1], 'only the new namespace');
  now += 60_000;
  calls.addresses.length = 0;
  f.find([]);
  assert.deepEqual(calls.addresses.sort(), [0, 1], 'a full read after a minute');
});

test('a namespace that cannot be read is reported and skipped; the others still resolve', () => {
  const { nl } = fake({ links: [veth(10, 'a', 5), veth(11, 'b', 6)], addresses: { 6: [{ ifindex: 2, ip: '10.0.0.8', prefixLen: 32 }] }, routes: {} });
  const f = new PodInterfaceFinder(nl);
  assert.equal(f.find(['10.0.0.8']).get('10.0.0.8')?.name, 'b');
  assert.match(f.unreadable.get(5) ?? '', /no namespace id 5/);
});

test('at most 256 route lookups per look: a whole cluster of other nodes\' pods is asked about a batch at a time', () => {
  const { nl, calls } = fake({ links: [], addresses: {}, routes: {} });
  const f = new PodInterfaceFinder(nl, () => 0);
  const ips = Array.from({ length: 600 }, (_, i) => `10.1.${i >> 8}.${i & 255}`);
  f.find(ips);
  assert.equal(calls.routes.length, 256);
  f.find(ips);
  f.find(ips);
  assert.equal(new Set(calls.routes).size, 600, 'every IP asked once over three looks');
  assert.equal(calls.routes.length, 600);
});
