import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toConversations } from './conversations.js';
import type { FlowStats } from '../types.js';

let clock = 1_000_000;
function flow(p: {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  proto?: 'TCP' | 'UDP';
  ifname: string;
  ifindex: number;
  dir: 'ingress' | 'egress';
  packets: number;
  bytes?: number;
  syn?: number;
  fin?: number;
  rst?: number;
  flags?: string[];
  opened?: boolean;
  t?: number;
}): FlowStats {
  const proto = p.proto ?? 'TCP';
  const t = p.t ?? clock++;
  return {
    key: {
      family: 'ipv4',
      srcIp: p.src,
      dstIp: p.dst,
      srcPort: p.sport,
      dstPort: p.dport,
      protocol: proto,
      protocolNumber: proto === 'TCP' ? 6 : 17,
      direction: p.dir,
      ifindex: p.ifindex,
    },
    interface: p.ifname,
    packets: p.packets,
    bytes: p.bytes ?? p.packets * 100,
    firstSeen: new Date(t),
    lastSeen: new Date(t + 1000),
    tcpFlags: p.flags ?? (p.syn ? ['SYN', 'ACK'] : ['ACK']),
    synCount: p.syn ?? 0,
    finCount: p.fin ?? 0,
    rstCount: p.rst ?? 0,
    opened: p.opened ?? false,
  };
}

const A = '198.18.0.1';
const B = '198.18.0.2';

test('one TCP connection seen at both pods’ veths is one conversation, counted once each way', () => {
  const conv = toConversations([
    // a -> b: enters the node at a's veth, leaves at b's veth
    flow({ src: A, sport: 40000, dst: B, dport: 80, ifname: 'vetha', ifindex: 5, dir: 'ingress', packets: 10, syn: 1, fin: 1, opened: true, t: 100 }),
    flow({ src: A, sport: 40000, dst: B, dport: 80, ifname: 'vethb', ifindex: 6, dir: 'egress', packets: 10, syn: 1, fin: 1, opened: true, t: 101 }),
    // b -> a
    flow({ src: B, sport: 80, dst: A, dport: 40000, ifname: 'vethb', ifindex: 6, dir: 'ingress', packets: 8, syn: 1, fin: 1, t: 102 }),
    flow({ src: B, sport: 80, dst: A, dport: 40000, ifname: 'vetha', ifindex: 5, dir: 'egress', packets: 8, syn: 1, fin: 1, t: 103 }),
  ]);
  assert.equal(conv.length, 1);
  const c = conv[0]!;
  assert.deepEqual(c.a, { ip: A, port: 40000 }, 'the side that sent a SYN without ACK is the client');
  assert.deepEqual(c.b, { ip: B, port: 80 });
  assert.equal(c.aToB.packets, 10, 'not 20');
  assert.equal(c.bToA.packets, 8, 'not 16');
  assert.equal(c.state, 'closed');
  assert.equal(c.synCount, 2);
  assert.equal(c.finCount, 2);
  assert.deepEqual(c.interfaces, ['vetha', 'vethb']);
  assert.equal(c.id, `TCP ${A}:40000 ${B}:80`);
});

test('the observation that saw more wins (one point may miss packets)', () => {
  const [c] = toConversations([
    flow({ src: A, sport: 40000, dst: B, dport: 53, proto: 'UDP', ifname: 'x', ifindex: 1, dir: 'ingress', packets: 5 }),
    flow({ src: A, sport: 40000, dst: B, dport: 53, proto: 'UDP', ifname: 'y', ifindex: 2, dir: 'egress', packets: 7 }),
  ]);
  assert.equal(c!.aToB.packets, 7);
  assert.equal(c!.aToB.observedAt, 'y egress');
  assert.equal(c!.bToA.packets, 0);
  assert.equal(c!.bToA.observedAt, undefined);
  assert.equal(c!.state, 'none');
});

test('TCP state from flags: reset, closing, syn-sent, open', () => {
  const one = (fl: Parameters<typeof flow>[0][]) => toConversations(fl.map(flow))[0]!.state;
  const base = { src: A, sport: 3, dst: B, dport: 4, ifname: 'x', ifindex: 1, dir: 'ingress' as const, packets: 1 };
  const back = { src: B, sport: 4, dst: A, dport: 3, ifname: 'x', ifindex: 1, dir: 'egress' as const, packets: 1 };
  assert.equal(one([{ ...base, syn: 1 }, { ...back, rst: 1 }]), 'reset');
  assert.equal(one([{ ...base, syn: 1, fin: 1 }, { ...back, syn: 1 }]), 'closing');
  assert.equal(one([{ ...base, syn: 1, flags: ['SYN'], opened: true }]), 'syn-sent');
  assert.equal(one([{ ...base }, { ...back }]), 'open');
});

test('without a SYN the side on the higher port is the client; separate connections stay separate', () => {
  const conv = toConversations([
    // a DNS-like exchange: B:53 answers A:40000
    flow({ src: B, sport: 53, dst: A, dport: 40000, proto: 'UDP', ifname: 'x', ifindex: 1, dir: 'ingress', packets: 1 }),
    flow({ src: A, sport: 40000, dst: B, dport: 53, proto: 'UDP', ifname: 'x', ifindex: 1, dir: 'egress', packets: 2 }),
    flow({ src: A, sport: 40001, dst: B, dport: 53, proto: 'UDP', ifname: 'x', ifindex: 1, dir: 'egress', packets: 3 }),
    // equal ports: the lower endpoint is a
    flow({ src: B, sport: 7, dst: A, dport: 7, proto: 'UDP', ifname: 'x', ifindex: 1, dir: 'egress', packets: 4 }),
  ]);
  assert.equal(conv.length, 3);
  const c = conv.find((x) => x.a.port === 40000)!;
  assert.deepEqual(c.b, { ip: B, port: 53 });
  assert.equal(c.aToB.packets, 2);
  assert.equal(c.bToA.packets, 1);
  const same = conv.find((x) => x.a.port === 7)!;
  assert.deepEqual(same.a, { ip: A, port: 7 });
  assert.equal(same.bToA.packets, 4);
});

test('the side that opened the connection is a even when it is the higher endpoint', () => {
  const [c] = toConversations([
    flow({ src: B, sport: 50000, dst: A, dport: 22, ifname: 'x', ifindex: 1, dir: 'ingress', packets: 3, syn: 1, opened: true, t: 5 }),
    flow({ src: A, sport: 22, dst: B, dport: 50000, ifname: 'x', ifindex: 1, dir: 'egress', packets: 2, syn: 1, t: 5 }),
  ]);
  assert.deepEqual(c!.a, { ip: B, port: 50000 });
  assert.deepEqual(c!.b, { ip: A, port: 22 });
  assert.equal(c!.aToB.packets, 3);
  assert.equal(c!.bToA.packets, 2);
});
