import { test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FlowRecord } from '../agent/flow-accounter.js';
import { compileFilter, compileIdentityFilter, type FilterIdentity, type FlowFilter, type IdentityFilter } from '../agent/flow-filter.js';
import type { Severity } from '../abi/layouts.js';
import { ClosedError, InvalidArgumentError } from '../errors.js';
import type { FlowStats, SecurityEvent } from '../types.js';
import { HistoryStore, type HistoryNotice, type HistoryStoreOptions } from './history-store.js';

/**
 * This file doubles as the child process of the crash and lock tests
 * (`node history-store.test.js --crash-child PATH`); in that mode it must
 * not register tests, or the child would run the suite too.
 */
const CHILD_MODE = process.argv[2] === '--crash-child' || process.argv[2] === '--hold-child';
const test = (name: string, fn: () => Promise<void>): void => {
  if (!CHILD_MODE) nodeTest(name, fn);
};

// ---- Fixtures -----------------------------------------------------------------

const T0 = Date.parse('2026-11-26T12:00:00Z');
const MIN = 60_000;

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'knp-history-'));
}

interface Spec {
  at: number;
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  protocol?: 'TCP' | 'UDP' | 'ICMP' | 'ICMPv6';
  direction?: 'ingress' | 'egress';
  iface?: string | undefined;
  deltaPackets?: number;
  deltaBytes?: number;
  reason?: 'active' | 'final';
}

const PROTO_NUMBER = { TCP: 6, UDP: 17, ICMP: 1, ICMPv6: 58 } as const;

function rec(s: Spec): FlowRecord {
  const protocol = s.protocol ?? 'TCP';
  const src = s.src ?? '198.18.0.1';
  const deltaPackets = s.deltaPackets ?? 10;
  const flow: FlowStats = {
    key: {
      family: src.includes(':') ? 'ipv6' : 'ipv4',
      srcIp: src,
      dstIp: s.dst ?? '198.18.0.2',
      srcPort: s.sport ?? 40000,
      dstPort: s.dport ?? 80,
      protocol,
      protocolNumber: PROTO_NUMBER[protocol],
      direction: s.direction ?? 'ingress',
      ifindex: 7,
    },
    interface: 'iface' in s ? s.iface : 'veth0',
    packets: deltaPackets * 3,
    bytes: (s.deltaBytes ?? deltaPackets * 100) * 3,
    firstSeen: new Date(s.at - 5000),
    lastSeen: new Date(s.at),
    tcpFlags: protocol === 'TCP' ? ['SYN', 'ACK'] : [],
    synCount: 1,
    finCount: 0,
    rstCount: 0,
    opened: true,
  };
  return { reason: s.reason ?? 'active', flow, deltaPackets, deltaBytes: s.deltaBytes ?? deltaPackets * 100, packetsPerSec: 1.5, bytesPerSec: 150.25 };
}

function event(at: number, type: string, severity: Severity, attacker: string, extra: Partial<SecurityEvent> = {}): SecurityEvent {
  return {
    timestamp: new Date(at),
    timestampNs: 0n,
    type,
    typeNumber: 7,
    severity,
    description: `${type} from ${attacker}`,
    key: { family: 'ipv4', srcIp: attacker, dstIp: '198.18.2.10', srcPort: 5555, dstPort: 22, protocol: 'TCP', protocolNumber: 6, direction: 'ingress', ifindex: 3 },
    attacker: { ip: attacker, port: 5555 },
    target: { ip: '198.18.2.10', port: 22 },
    interface: 'veth1',
    hook: 'tc-ingress',
    count: 25,
    threshold: 20,
    windowMs: 1000,
    suppressed: 2,
    tcpFlags: ['SYN'],
    cpu: 0,
    seq: 1n,
    ...extra,
  };
}

/** Pods of the fixtures' addresses: a workload each, a service for three of them. */
const PODS: Record<string, FilterIdentity> = {
  '198.18.0.1': { namespace: 'default', pod: 'client', workload: { kind: 'Deployment', name: 'client' } },
  '198.18.2.10': { namespace: 'shop', pod: 'frontend', workload: { kind: 'Deployment', name: 'frontend' }, service: 'frontend' },
  '198.18.2.11': { namespace: 'shop', pod: 'api', workload: { kind: 'Deployment', name: 'api' }, service: 'api' },
  '198.18.3.10': { namespace: 'data', pod: 'db', workload: { kind: 'StatefulSet', name: 'db' }, service: 'db' },
};
const identity = (ip: string): FilterIdentity | undefined => PODS[ip];

/** Quiet options for tests: nothing runs on a timer unless the test asks. */
function opts(extra: HistoryStoreOptions = {}): HistoryStoreOptions {
  return { flushIntervalMs: 3_600_000, retentionIntervalMs: 3_600_000, retentionMs: Infinity, maxBytes: Infinity, identity, now: () => T0 + 60 * MIN, ...extra };
}

/** A varied set: 4 hosts, both families, 3 protocols, 2 interfaces, a minute apart. */
function mixed(n: number): FlowRecord[] {
  const srcs = ['198.18.0.1', '198.18.2.10', '198.18.2.11', '198.18.3.10', 'fd00::1', '10.1.2.3'];
  const dsts = ['198.18.2.10', '198.18.3.10', '198.18.2.11', 'fd00::2', '8.8.8.8'];
  const protos = ['TCP', 'UDP', 'ICMP'] as const;
  const out: FlowRecord[] = [];
  for (let i = 0; i < n; i++) {
    let src = srcs[i % srcs.length]!;
    let dst = dsts[(i * 7) % dsts.length]!;
    // Keep each record's family consistent.
    if (src.includes(':') !== dst.includes(':')) dst = src.includes(':') ? 'fd00::2' : '198.18.2.10';
    if (src === dst) src = '198.18.0.1';
    out.push(
      rec({
        at: T0 + (i % 50) * MIN + i,
        src,
        dst,
        sport: 30000 + (i % 13),
        dport: [80, 443, 53, 5432][i % 4]!,
        protocol: protos[i % 3]!,
        direction: i % 2 ? 'egress' : 'ingress',
        iface: i % 5 === 0 ? undefined : i % 2 ? 'veth1' : 'veth0',
        deltaPackets: 1 + (i % 17),
        deltaBytes: 100 * (1 + (i % 17)) + i,
      }),
    );
  }
  return out;
}

async function withStore<T>(fn: (store: HistoryStore, dir: string) => Promise<T>, extra: HistoryStoreOptions = {}): Promise<T> {
  const dir = tmp();
  const store = await HistoryStore.open(join(dir, 'history.duckdb'), opts(extra));
  try {
    return await fn(store, dir);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const sum = (xs: readonly FlowRecord[], f: (r: FlowRecord) => number): number => xs.reduce((s, r) => s + f(r), 0);

// ---- Writing and reading back ---------------------------------------------------

test('records come back with every field, identity resolved at write time', async () => {
  await withStore(async (store) => {
    const r = rec({ at: T0, src: '198.18.0.1', dst: '198.18.2.10', sport: 41000, dport: 443, deltaPackets: 7, deltaBytes: 901, reason: 'final' });
    const noIface = rec({ at: T0 + 1000, src: 'fd00::1', dst: 'fd00::2', protocol: 'UDP', iface: undefined });
    store.append([r, noIface]);
    await store.flush();
    const [a, b] = await store.queryFlows();
    assert.deepEqual(a, {
      time: new Date(T0),
      firstSeen: new Date(T0 - 5000),
      reason: 'final',
      interface: 'veth0',
      ifindex: 7,
      direction: 'ingress',
      family: 'ipv4',
      protocol: 'TCP',
      srcIp: '198.18.0.1',
      srcPort: 41000,
      srcNamespace: 'default',
      srcPod: 'client',
      srcWorkload: { kind: 'Deployment', name: 'client' },
      srcService: null,
      dstIp: '198.18.2.10',
      dstPort: 443,
      dstNamespace: 'shop',
      dstPod: 'frontend',
      dstWorkload: { kind: 'Deployment', name: 'frontend' },
      dstService: 'frontend',
      packets: 21,
      bytes: 2703,
      deltaPackets: 7,
      deltaBytes: 901,
      packetsPerSec: 1.5,
      bytesPerSec: 150.25,
      tcpFlags: ['SYN', 'ACK'],
    });
    assert.equal(b!.interface, null);
    assert.equal(b!.family, 'ipv6');
    assert.equal(b!.srcNamespace, null);
    assert.equal(b!.srcWorkload, null);
    assert.equal(b!.dstService, null);
    assert.deepEqual(b!.tcpFlags, []);
  });
});

test('a resolver or a notice handler that throws costs nothing but the identity', async () => {
  await withStore(
    async (store) => {
      store.append([rec({ at: T0 })]);
      await store.flush();
      const [f] = await store.queryFlows();
      assert.equal(f!.srcPod, null);
      assert.equal((await store.stats()).flows, 1);
    },
    {
      identity: () => {
        throw new Error('inventory unavailable');
      },
      onNotice: () => {
        throw new Error('logger broken');
      },
    },
  );
});

test('an explicit time overrides lastSeen', async () => {
  await withStore(async (store) => {
    store.append([rec({ at: T0 })], { at: new Date(T0 + 42_000) });
    await store.flush();
    assert.equal((await store.queryFlows())[0]!.time.getTime(), T0 + 42_000);
  });
});

test('exact counts and sums come back; limit keeps the newest, oldest first', async () => {
  await withStore(async (store) => {
    const recs = mixed(3000);
    store.append(recs);
    await store.flush();
    const all = await store.queryFlows({ limit: 10_000 });
    assert.equal(all.length, 3000);
    assert.equal(all.reduce((s, f) => s + f.deltaBytes, 0), sum(recs, (r) => r.deltaBytes));
    assert.equal(all.reduce((s, f) => s + f.deltaPackets, 0), sum(recs, (r) => r.deltaPackets));
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1]!.time <= all[i]!.time, 'oldest first');
    const last = await store.queryFlows({ limit: 5 });
    assert.deepEqual(
      last.map((f) => f.time.getTime()),
      all.slice(-5).map((f) => f.time.getTime()),
    );
    const st = await store.stats();
    assert.equal(st.flows, 3000);
    assert.equal(st.written, 3000);
    assert.equal(st.buffered, 0);
    assert.equal(st.dropped, 0);
    assert.equal(st.oldest!.getTime(), Math.min(...recs.map((r) => r.flow.lastSeen.getTime())));
    assert.equal(st.newest!.getTime(), Math.max(...recs.map((r) => r.flow.lastSeen.getTime())));
    assert.ok(st.bytesOnDisk > 0);
  });
});

test('time range: since is inclusive, until exclusive', async () => {
  await withStore(async (store) => {
    store.append([0, 1, 2, 3, 4].map((m) => rec({ at: T0 + m * MIN })));
    await store.flush();
    const times = async (since?: number, until?: number): Promise<number[]> =>
      (await store.queryFlows({ ...(since !== undefined ? { since: new Date(since) } : {}), ...(until !== undefined ? { until: new Date(until) } : {}) })).map((f) => (f.time.getTime() - T0) / MIN);
    assert.deepEqual(await times(T0 + MIN, T0 + 3 * MIN), [1, 2]);
    assert.deepEqual(await times(T0 + MIN - 1, T0 + 3 * MIN + 1), [1, 2, 3]);
    assert.deepEqual(await times(T0 + MIN + 1), [2, 3, 4]);
    assert.deepEqual(await times(undefined, T0 + MIN), [0]);
    assert.deepEqual(await times(T0 + 5 * MIN), []);
  });
});

test('every filter selects exactly what compileFilter selects', async () => {
  await withStore(async (store) => {
    const recs = mixed(2000);
    store.append(recs);
    await store.flush();
    const filters: FlowFilter[] = [
      { ip: '198.18.2.10' },
      { ip: 'fd00:0::2' },
      { cidr: '198.18.2.0/24' },
      { cidr: '198.18.0.0/16' },
      { cidr: 'fd00::/64' },
      { cidr: '8.8.8.8/32' },
      { port: 443 },
      { port: 30003 },
      { protocol: 'udp' },
      { protocol: 'TCP' },
      { direction: 'egress' },
      { interface: 'veth1' },
      { namespace: 'shop' },
      { pod: 'db' },
      { pod: 'shop/api' },
      { pod: 'default/api' },
      { namespace: 'shop', protocol: 'icmp', direction: 'ingress' },
      { cidr: '198.18.2.0/24', port: 53, interface: 'veth0' },
      // Workload and service, as written with each row (schema 3).
      { workload: 'frontend' },
      { workload: 'Deployment/api' },
      { workload: 'deployment/api' },
      { workload: 'statefulset/db' },
      { workload: 'Deployment/db' },
      { service: 'api' },
      { service: 'shop/frontend' },
      { service: 'default/frontend' },
      { service: 'db', namespace: 'data', protocol: 'udp' },
      { workload: 'client', service: 'db' },
      { workload: 'Deployment/client', pod: 'shop/api', port: 443 },
    ];
    for (const f of filters) {
      // The store compares addresses as numbers, so any spelling of an IPv6
      // address matches (compileFilter compares the canonical strings).
      const ref = { ...f, ...(f.protocol ? { protocol: f.protocol.toLowerCase() } : {}), ...(f.ip === 'fd00:0::2' ? { ip: 'fd00::2' } : {}) };
      const match = compileFilter(ref, identity);
      const want = recs.filter((r) => match(r.flow.key, r.flow.interface));
      const got = await store.queryFlows({ filters: f, limit: 10_000 });
      assert.equal(got.length, want.length, JSON.stringify(f));
      assert.equal(
        got.reduce((s, x) => s + x.deltaBytes, 0),
        sum(want, (r) => r.deltaBytes),
        JSON.stringify(f),
      );
    }
    assert.ok((await store.queryFlows({ filters: { namespace: 'shop' } })).length > 0, 'the fixture has pods');
    assert.ok((await store.queryFlows({ filters: { workload: 'client', service: 'db' } })).length > 0, 'and workloads and services that meet');
    assert.equal((await store.queryFlows({ filters: { workload: 'Deployment/db' } })).length, 0, 'the kind must match');
    // Every row of a workload filter is that workload's, at one end or the other.
    for (const f of await store.queryFlows({ filters: { workload: 'Deployment/api' }, limit: 10_000 })) {
      assert.ok(f.srcWorkload?.name === 'api' || f.dstWorkload?.name === 'api', JSON.stringify(f));
    }
    // The aggregations take them too.
    const want = (f: FlowFilter): number => sum(recs.filter((r) => compileFilter(f, identity)(r.flow.key, r.flow.interface)), (r) => r.deltaBytes);
    const bySvc = await store.topTalkers({ filters: { service: 'shop/api' }, groupBy: 'destination', limit: 100 });
    assert.equal(bySvc.reduce((s, t) => s + t.bytes, 0), want({ service: 'shop/api' }));
    const ts = await store.timeSeries({ since: new Date(T0), until: new Date(T0 + 60 * MIN), bucketMs: 10 * MIN, filters: { workload: 'StatefulSet/db' } });
    assert.equal(ts.points.reduce((s, p) => s + p.bytes, 0), want({ workload: 'StatefulSet/db' }));
  });
});

test('bad filters and arguments are refused, naming the problem', async () => {
  await withStore(async (store) => {
    await assert.rejects(store.queryFlows({ filters: { ip: 'nope' } }), /ip: not an IP address: "nope"/);
    await assert.rejects(store.queryFlows({ filters: { cidr: '10.0.0.0/40' } }), /cidr: not a CIDR block/);
    await assert.rejects(store.queryFlows({ filters: { port: 70000 } }), /port: not a port number/);
    await assert.rejects(store.queryFlows({ filters: { protocol: "tcp' OR 1=1 --" } }), /protocol: must be tcp, udp, icmp or icmpv6/);
    await assert.rejects(store.queryFlows({ filters: { pod: 'a/b/c' } }), /pod: not a pod name/);
    await assert.rejects(store.queryFlows({ filters: { workload: 'Deployment/web/x' } }), /^FilterError: workload: not a workload name or kind\/name/);
    await assert.rejects(store.queryFlows({ filters: { service: 'Web' } }), /^FilterError: service: not a service name/);
    // Labels are not kept: refused, saying what is.
    await assert.rejects(store.topTalkers({ filters: { label: 'app=web' } }), /^FilterError: label: the history keeps each end's namespace, pod, workload and service, not its labels/);
    await assert.rejects(store.queryFlows({ filters: { label: 'app=web' } }), /^FilterError: label: /);
    await assert.rejects(store.queryEvents({ label: 'app=web' }), /^FilterError: label: the history keeps/);
    await assert.rejects(store.queryEvents({ workload: 'a/b/c' }), /^FilterError: workload: not a workload name/);
    await assert.rejects(store.queryFlows({ limit: 0 }), InvalidArgumentError);
    await assert.rejects(store.queryFlows({ since: new Date(NaN) }), /since must be a valid Date/);
    await assert.rejects(store.topTalkers({ by: 'rows' as 'bytes' }), /by must be bytes or packets/);
    await assert.rejects(store.topTalkers({ groupBy: 'src_ip; DROP TABLE flows' as 'pair' }), /groupBy must be pair, source or destination/);
    await assert.rejects(store.timeSeries({ bucketMs: 0 }), /bucketMs must be a positive integer/);
    await assert.rejects(store.timeSeries({ bucketMs: 1, since: new Date(0), until: new Date(T0) }), /more than 100000.*\n.*wider buckets/);
    await assert.rejects(store.queryEvents({ source: '10.0.0.0/99' }), /source: not an IP address or CIDR block/);
    await assert.rejects(store.queryEvents({ type: "x' OR '1" }), /type: not an event type name/);
    await assert.rejects(store.queryEvents({ severity: 'urgent' as Severity }), /severity must be info, low, medium, high, critical/);
  });
  const dir = tmp();
  await assert.rejects(HistoryStore.open(join(dir, 'h.duckdb'), { maxBytes: 1000 }), /maxBytes must be a number >= 4194304 \(or Infinity\), got 1000/);
  await assert.rejects(HistoryStore.open(join(dir, 'h.duckdb'), { batchSize: 1.5 }), /batchSize must be an integer/);
  await assert.rejects(HistoryStore.open(''), /path must be a file path/);
  rmSync(dir, { recursive: true, force: true });
});

// ---- Aggregations -----------------------------------------------------------------

test('top talkers: order, sums and grouping match a plain JS aggregation', async () => {
  await withStore(async (store) => {
    const recs = mixed(2500);
    store.append(recs);
    await store.flush();
    const since = new Date(T0 + 10 * MIN);
    const until = new Date(T0 + 40 * MIN);
    const inRange = recs.filter((r) => r.flow.lastSeen >= since && r.flow.lastSeen < until);
    const expect = (key: (r: FlowRecord) => string, by: 'bytes' | 'packets'): [string, number][] => {
      const m = new Map<string, number>();
      for (const r of inRange) m.set(key(r), (m.get(key(r)) ?? 0) + (by === 'bytes' ? r.deltaBytes : r.deltaPackets));
      return [...m].sort((a, b) => b[1] - a[1]);
    };
    const pairs = await store.topTalkers({ since, until, limit: 5 });
    assert.equal(pairs.length, 5);
    assert.deepEqual(
      pairs.map((t) => [`${t.srcIp}>${t.dstIp}`, t.bytes]),
      expect((r) => `${r.flow.key.srcIp}>${r.flow.key.dstIp}`, 'bytes').slice(0, 5),
    );
    for (let i = 1; i < pairs.length; i++) assert.ok(pairs[i - 1]!.bytes >= pairs[i]!.bytes);
    const src = await store.topTalkers({ since, until, by: 'packets', groupBy: 'source', limit: 100 });
    assert.deepEqual(
      src.map((t) => [t.srcIp, t.packets]),
      expect((r) => r.flow.key.srcIp, 'packets'),
    );
    assert.equal(src[0]!.dstIp, undefined);
    const client = src.find((t) => t.srcIp === '198.18.0.1')!;
    assert.equal(client.srcNamespace, 'default');
    assert.equal(client.srcPod, 'client');
    const dst = await store.topTalkers({ since, until, groupBy: 'destination', limit: 100 });
    assert.equal(dst.reduce((s, t) => s + t.bytes, 0), sum(inRange, (r) => r.deltaBytes));
    assert.equal(dst.reduce((s, t) => s + t.records, 0), inRange.length);
    const udp = await store.topTalkers({ since, until, groupBy: 'source', filters: { protocol: 'udp' }, limit: 100 });
    assert.equal(
      udp.reduce((s, t) => s + t.bytes, 0),
      sum(
        inRange.filter((r) => r.flow.key.protocol === 'UDP'),
        (r) => r.deltaBytes,
      ),
    );
  });
});

test('countOnce: a flow direction seen on several interfaces counts once, from the one that saw the most', async () => {
  await withStore(async (store) => {
    const one = { src: '198.18.0.1', dst: '198.18.2.10', sport: 41000, dport: 53, protocol: 'UDP' as const };
    const seen = (iface: string, direction: 'ingress' | 'egress', at: number, deltaPackets: number): FlowRecord => {
      const r = rec({ ...one, at, iface, direction, deltaPackets, deltaBytes: deltaPackets * 100 });
      r.flow.key.ifindex = iface === 'veth0' ? 7 : 8;
      return r;
    };
    store.append([
      // The client's veth (ingress) saw all 10 over two records; the server's veth (egress) lost 2 of them.
      seen('veth0', 'ingress', T0, 6),
      seen('veth1', 'egress', T0 + 10, 5),
      seen('veth0', 'ingress', T0 + MIN, 4),
      seen('veth1', 'egress', T0 + MIN + 10, 3),
      // Another flow, seen once: counts as it is.
      rec({ src: '198.18.2.11', dst: '198.18.3.10', sport: 42000, dport: 5432, at: T0 + 5, deltaPackets: 7, deltaBytes: 700 }),
    ]);
    await store.flush();
    const all = await store.topTalkers({ limit: 10 });
    assert.deepEqual(all.map((t) => [t.dstPod, t.packets, t.records]), [['frontend', 18, 4], ['db', 7, 1]], 'every row');
    const once = await store.topTalkers({ limit: 10, countOnce: true });
    assert.deepEqual(once.map((t) => [t.dstPod, t.packets, t.bytes, t.records]), [['frontend', 10, 1000, 2], ['db', 7, 700, 1]], 'the busiest observation');
    const src = await store.topTalkers({ groupBy: 'source', countOnce: true, filters: { port: 53 } });
    assert.deepEqual(src.map((t) => [t.srcPod, t.packets]), [['client', 10]]);
    // Per bucket: the first minute 6 (veth0) + 7, the second 4.
    const ts = await store.timeSeries({ since: new Date(T0), until: new Date(T0 + 2 * MIN), bucketMs: MIN, countOnce: true });
    assert.deepEqual(ts.points.map((p) => p.packets), [13, 4]);
    const tsAll = await store.timeSeries({ since: new Date(T0), until: new Date(T0 + 2 * MIN), bucketMs: MIN });
    assert.deepEqual(tsAll.points.map((p) => p.packets), [18, 7]);
  });
});

test('time buckets sum to the totals, empty buckets are zeros', async () => {
  await withStore(async (store) => {
    const recs = mixed(2000);
    store.append(recs);
    await store.flush();
    const since = new Date(T0 + 5 * MIN + 30_000);
    const until = new Date(T0 + 70 * MIN);
    const inRange = recs.filter((r) => r.flow.lastSeen >= since && r.flow.lastSeen < until);
    const ts = await store.timeSeries({ since, until, bucketMs: MIN });
    assert.equal(ts.points.length, 65, 'from the bucket holding since to the one before until');
    assert.equal(ts.points[0]!.start.getTime(), T0 + 5 * MIN);
    assert.equal(ts.points.reduce((s, p) => s + p.bytes, 0), sum(inRange, (r) => r.deltaBytes));
    assert.equal(ts.points.reduce((s, p) => s + p.packets, 0), sum(inRange, (r) => r.deltaPackets));
    assert.equal(ts.points.reduce((s, p) => s + p.records, 0), inRange.length);
    // Minute 12 holds exactly the records stamped in it.
    const m12 = recs.filter((r) => Math.floor((r.flow.lastSeen.getTime() - T0) / MIN) === 12);
    assert.equal(ts.points[7]!.bytes, sum(m12, (r) => r.deltaBytes));
    assert.deepEqual(ts.points.at(-1), { start: new Date(T0 + 69 * MIN), bytes: 0, packets: 0, records: 0 });
    const tcp = await store.timeSeries({ since, until, bucketMs: 10 * MIN, filters: { protocol: 'tcp' } });
    assert.equal(
      tcp.points.reduce((s, p) => s + p.bytes, 0),
      sum(
        inRange.filter((r) => r.flow.key.protocol === 'TCP'),
        (r) => r.deltaBytes,
      ),
    );
    const dflt = await store.timeSeries({ bucketMs: 5 * MIN });
    assert.equal(dflt.until.getTime(), T0 + 60 * MIN, 'until defaults to now');
    assert.equal(dflt.since.getTime(), T0, 'since to an hour before');
    assert.equal(dflt.points.length, 12);
  });
});

// ---- Security events ---------------------------------------------------------------

test('security events: every field back; type, severity, source and range filters', async () => {
  await withStore(async (store) => {
    store.appendEvents([
      event(T0, 'tcp-port-scan', 'medium', '198.18.0.66'),
      event(T0 + MIN, 'syn-flood', 'high', '10.9.0.1'),
      event(T0 + 2 * MIN, 'tcp-null-scan', 'low', 'fd00::66', { interface: undefined }),
      event(T0 + 3 * MIN, 'tcp-port-scan', 'critical', '198.18.0.67'),
    ]);
    await store.flush();
    const all = await store.queryEvents();
    assert.equal(all.length, 4);
    assert.deepEqual(all[0], {
      time: new Date(T0),
      type: 'tcp-port-scan',
      severity: 'medium',
      description: 'tcp-port-scan from 198.18.0.66',
      attacker: { ip: '198.18.0.66', port: 5555 },
      target: { ip: '198.18.2.10', port: 22 },
      interface: 'veth1',
      hook: 'tc-ingress',
      protocol: 'TCP',
      count: 25,
      threshold: 20,
      windowMs: 1000,
      suppressed: 2,
      tcpFlags: ['SYN'],
      // Identity as the resolver said when the event was written: the attacker is unknown, the target a pod.
      attackerNamespace: null,
      attackerPod: null,
      targetNamespace: 'shop',
      targetPod: 'frontend',
      attackerWorkload: null,
      attackerService: null,
      targetWorkload: { kind: 'Deployment', name: 'frontend' },
      targetService: 'frontend',
      cpu: 0,
      seq: 1n,
    });
    assert.equal(all[2]!.interface, null);
    const types = async (q: Parameters<HistoryStore['queryEvents']>[0]): Promise<string[]> => (await store.queryEvents(q)).map((e) => `${e.type}@${e.attacker.ip}`);
    assert.deepEqual(await types({ type: 'tcp-port-scan' }), ['tcp-port-scan@198.18.0.66', 'tcp-port-scan@198.18.0.67']);
    assert.deepEqual(await types({ type: ['syn-flood', 'tcp-null-scan'] }), ['syn-flood@10.9.0.1', 'tcp-null-scan@fd00::66']);
    assert.deepEqual(await types({ severity: 'high' }), ['syn-flood@10.9.0.1', 'tcp-port-scan@198.18.0.67']);
    assert.deepEqual(await types({ source: '198.18.0.0/24' }), ['tcp-port-scan@198.18.0.66', 'tcp-port-scan@198.18.0.67']);
    assert.deepEqual(await types({ source: 'fd00::66' }), ['tcp-null-scan@fd00::66']);
    assert.deepEqual(await types({ since: new Date(T0 + MIN), until: new Date(T0 + 3 * MIN) }), ['syn-flood@10.9.0.1', 'tcp-null-scan@fd00::66']);
    assert.deepEqual(await types({ limit: 1 }), ['tcp-port-scan@198.18.0.67']);
    const st = await store.stats();
    assert.equal(st.events, 4);
    assert.equal(st.flows, 0);
    assert.equal(st.oldest!.getTime(), T0, 'oldest over both tables, with one of them empty');
  });
});

test('security events by identity: the attacker or the target was such a pod, as written', async () => {
  await withStore(async (store) => {
    const evs = [
      event(T0, 'tcp-port-scan', 'medium', '198.18.0.1'), // default/client (Deployment/client) -> shop/frontend (svc frontend)
      event(T0 + MIN, 'syn-flood', 'high', '10.9.0.1', { target: { ip: '198.18.3.10', port: 5432 } }), // outside -> data/db (StatefulSet/db)
      event(T0 + 2 * MIN, 'tcp-null-scan', 'low', '198.18.2.11', { target: { ip: '198.18.3.10', port: 5432 } }), // shop/api -> data/db
      event(T0 + 3 * MIN, 'land', 'high', '10.9.0.2', { target: { ip: '10.9.0.2', port: 80 } }), // unknown both ends
    ];
    store.appendEvents(evs);
    await store.flush();
    const got = async (q: IdentityFilter & { severity?: Severity }): Promise<string[]> => (await store.queryEvents(q)).map((e) => e.type);
    // What the live filter (compileIdentityFilter over each end's identity) keeps, for every query here.
    const live = (q: IdentityFilter): string[] => evs.filter((e) => compileIdentityFilter(q)!([identity(e.attacker.ip), identity(e.target.ip)])).map((e) => e.type);
    const queries: [IdentityFilter, string[]][] = [
      [{ namespace: 'data' }, ['syn-flood', 'tcp-null-scan']],
      [{ namespace: 'default' }, ['tcp-port-scan']],
      [{ pod: 'shop/api' }, ['tcp-null-scan']],
      [{ pod: 'db' }, ['syn-flood', 'tcp-null-scan']],
      [{ workload: 'Deployment/client' }, ['tcp-port-scan']],
      [{ workload: 'statefulset/db' }, ['syn-flood', 'tcp-null-scan']],
      [{ workload: 'api' }, ['tcp-null-scan']],
      [{ workload: 'Deployment/db' }, []],
      [{ service: 'frontend' }, ['tcp-port-scan']],
      [{ service: 'data/db' }, ['syn-flood', 'tcp-null-scan']],
      [{ service: 'shop/db' }, []],
      [{ workload: 'Deployment/api', service: 'db' }, ['tcp-null-scan']],
      [{ namespace: 'nowhere' }, []],
    ];
    for (const [q, want] of queries) {
      assert.deepEqual(await got(q), want, JSON.stringify(q));
      assert.deepEqual(live(q), want, `the live filter agrees: ${JSON.stringify(q)}`);
    }
    assert.deepEqual(await got({ workload: 'db', severity: 'high' }), ['syn-flood'], 'with the other filters, AND');
    const [nullScan] = await store.queryEvents({ type: 'tcp-null-scan' });
    assert.deepEqual(
      [nullScan!.attackerWorkload, nullScan!.attackerService, nullScan!.targetWorkload, nullScan!.targetService],
      [{ kind: 'Deployment', name: 'api' }, 'api', { kind: 'StatefulSet', name: 'db' }, 'db'],
    );
  });
});

// ---- Buffering -------------------------------------------------------------------------

test('a full batch is written without flush(); the timer writes the rest', async () => {
  await withStore(
    async (store) => {
      store.append(mixed(250));
      const deadline = Date.now() + 5000;
      while ((await store.stats()).written < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const st = await store.stats();
      assert.ok(st.written >= 200, `batches of 100 written on their own (${st.written})`);
      while ((await store.stats()).buffered > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal((await store.stats()).flows, 250, 'the interval flush wrote the last 50');
    },
    { batchSize: 100, flushIntervalMs: 200 },
  );
});

test('a full buffer drops and counts instead of growing', async () => {
  await withStore(
    async (store) => {
      store.append(mixed(25));
      const st = await store.stats();
      assert.equal(st.buffered + st.written, 20);
      assert.equal(st.dropped, 5);
      await store.flush();
      assert.equal((await store.stats()).flows, 20);
    },
    { batchSize: 10, maxBuffered: 20 },
  );
});

test('close() flushes, is safe twice, and later calls say the store is closed; reopening keeps the rows', async () => {
  const dir = tmp();
  const path = join(dir, 'history.duckdb');
  const store = await HistoryStore.open(path, opts());
  store.append(mixed(100));
  store.appendEvents([event(T0, 'land', 'high', '198.18.0.9')]);
  const a = store.close();
  const b = store.close();
  assert.equal(a, b);
  await a;
  await store.close();
  assert.throws(() => store.append([]), ClosedError);
  await assert.rejects(store.flush(), ClosedError);
  await assert.rejects(store.queryFlows(), ClosedError);
  await assert.rejects(store.stats(), /history store is closed/);
  const again = await HistoryStore.open(path, opts());
  try {
    const st = await again.stats();
    assert.equal(st.flows, 100);
    assert.equal(st.events, 1);
    assert.equal(again.recovery, undefined);
  } finally {
    await again.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- Retention ------------------------------------------------------------------------------

test('retention by time deletes exactly the rows older than retentionMs', async () => {
  let now = T0 + 60 * MIN;
  await withStore(
    async (store) => {
      store.append([0, 10, 20, 29, 30, 31, 45].map((m) => rec({ at: T0 + m * MIN })));
      store.appendEvents([event(T0 + 5 * MIN, 'land', 'high', '1.2.3.4'), event(T0 + 35 * MIN, 'land', 'high', '1.2.3.4')]);
      await store.flush();
      // Keep 30 minutes: the cut is at T0 + 30 min, and that row stays.
      const report = await store.enforceRetention();
      assert.equal(report.deletedByTime, 5, '4 flows and 1 event');
      assert.equal(report.deletedBySize, 0);
      assert.deepEqual(
        (await store.queryFlows()).map((f) => (f.time.getTime() - T0) / MIN),
        [30, 31, 45],
      );
      assert.equal((await store.queryEvents()).length, 1);
      now += 15 * MIN + 1; // the cut moves to T0 + 45 min + 1 ms
      assert.equal((await store.enforceRetention()).deletedByTime, 4, '3 flows and 1 event');
      assert.deepEqual(
        (await store.queryFlows()).map((f) => (f.time.getTime() - T0) / MIN),
        [],
      );
    },
    { retentionMs: 30 * MIN, now: () => now },
  );
});

test('retention by time also runs on open', async () => {
  const dir = tmp();
  const path = join(dir, 'history.duckdb');
  const a = await HistoryStore.open(path, opts());
  a.append([rec({ at: T0 }), rec({ at: T0 + 50 * MIN })]);
  await a.close();
  const b = await HistoryStore.open(path, opts({ retentionMs: 30 * MIN }));
  try {
    assert.equal((await b.stats()).flows, 1);
  } finally {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Rows that compress about as badly as real ones (random addresses, ports and counts): ~25 bytes each on disk. */
function noisy(from: number, count: number): FlowRecord[] {
  let seed = from + 1;
  const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff);
  const out: FlowRecord[] = [];
  for (let i = from; i < from + count; i++) {
    const r = rnd();
    out.push(rec({ at: T0 + i * 10, src: `10.${(r >> 16) & 255}.${(r >> 8) & 255}.${r & 255}`, sport: r & 0xffff, iface: `veth${r % 30}`, deltaPackets: 1 + (r % 1000), deltaBytes: r % 100_000 }));
  }
  return out;
}

test('retention by size: the store ends under maxBytes with the newest rows kept, and stays under', async () => {
  const maxBytes = 6 * 1024 * 1024;
  const notices: HistoryNotice[] = [];
  await withStore(
    async (store) => {
      const total = 400_000;
      for (let s = 0; s < total; s += 50_000) {
        store.append(noisy(s, 50_000));
        await store.flush();
      }
      const before = await store.stats();
      assert.ok(before.bytesOnDisk > maxBytes, `the test wrote more than the limit (${before.bytesOnDisk})`);
      const report = await store.enforceRetention();
      const after = await store.stats();
      assert.ok(after.bytesOnDisk <= maxBytes, `on disk ${after.bytesOnDisk} <= ${maxBytes}`);
      assert.ok(report.deletedBySize > 0);
      assert.equal(after.flows, total - report.deletedBySize);
      assert.equal(after.newest!.getTime(), T0 + (total - 1) * 10, 'the newest row is kept');
      // Exactly the oldest went: what is left is one contiguous, newest run.
      assert.equal(after.oldest!.getTime(), T0 + report.deletedBySize * 10);
      assert.ok(notices.some((n) => n.kind === 'retention'), 'reported');
      // Writing on (each round well under the 30 % headroom) stays under the limit.
      let next = total;
      for (let round = 0; round < 4; round++) {
        store.append(noisy(next, 30_000));
        next += 30_000;
        await store.flush();
        await store.enforceRetention();
        const st = await store.stats();
        assert.ok(st.bytesOnDisk <= maxBytes, `round ${round}: ${st.bytesOnDisk} <= ${maxBytes}`);
        assert.equal(st.newest!.getTime(), T0 + (next - 1) * 10);
      }
    },
    { maxBytes, batchSize: 50_000, onNotice: (n) => notices.push(n), now: () => T0 },
  );
});

// ---- Crashes and damaged files ------------------------------------------------------------------

/** Child mode (see the test below): append, flush some, buffer more, die without close. */
async function crashChild(path: string): Promise<void> {
  const store = await HistoryStore.open(path, opts({ batchSize: 1_000_000 }));
  store.append(mixed(300));
  await store.flush();
  store.appendEvents([event(T0, 'land', 'high', '1.2.3.4')]);
  await store.flush();
  store.append(mixed(120));
  store.appendEvents([event(T0, 'land', 'high', '1.2.3.4')]);
  // Not flushed, not closed: a crash.
  process.kill(process.pid, 'SIGKILL');
}

/** Child mode: open the store and hold it (DuckDB's file lock) until killed. */
async function holdChild(path: string): Promise<void> {
  await HistoryStore.open(path, opts());
  process.stdout.write('holding\n');
  setInterval(() => {}, 1000);
}

test('a killed process loses exactly the rows it had not flushed', async () => {
  const dir = tmp();
  const path = join(dir, 'history.duckdb');
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--crash-child', path], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.signal, 'SIGKILL', `the child died by SIGKILL (${r.stderr})`);
  assert.ok(existsSync(`${path}.wal`), 'the committed batches are in the WAL, not yet checkpointed');
  const store = await HistoryStore.open(path, opts());
  try {
    assert.equal(store.recovery, undefined);
    const st = await store.stats();
    assert.equal(st.flows, 300);
    assert.equal(st.events, 1);
    assert.equal((await store.queryFlows({ limit: 1000 })).reduce((s, f) => s + f.deltaBytes, 0), sum(mixed(300), (x) => x.deltaBytes));
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

function corruptFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.includes('.corrupt-'));
}

test('a file of random bytes is moved aside and a new store started', async () => {
  const dir = tmp();
  const path = join(dir, 'history.duckdb');
  const junk = randomBytes(300_000);
  writeFileSync(path, junk);
  const notices: HistoryNotice[] = [];
  const store = await HistoryStore.open(path, opts({ onNotice: (n) => notices.push(n) }));
  try {
    assert.equal(store.recovery?.action, 'moved-aside');
    assert.match(store.recovery!.reason, /not a valid DuckDB database file/);
    assert.match(store.recovery!.message, /moved it to .*history\.duckdb\.corrupt-\d{4}-\d{2}-\d{2}T.* and started an empty one/);
    assert.deepEqual(notices.map((n) => n.kind), ['recovered']);
    const moved = corruptFiles(dir);
    assert.equal(moved.length, 1);
    assert.deepEqual(readFileSync(join(dir, moved[0]!)), junk, 'moved, not changed');
    store.append([rec({ at: T0 })]);
    await store.flush();
    assert.equal((await store.stats()).flows, 1);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A closed store of 200k records over 33 minutes from T0, written in two
 * sessions: the second checkpoint puts its metadata in the blocks the first
 * one's metadata freed, so the file ends in data blocks, as a long-running
 * store's does.
 */
async function bigStore(path: string): Promise<void> {
  for (let session = 0; session < 2; session++) {
    const a = await HistoryStore.open(path, opts());
    for (let i = 0; i < 2; i++) {
      a.append(noisy((session * 2 + i) * 50_000, 50_000));
      await a.flush();
    }
    await a.close();
  }
}

/**
 * Overwrites part of a block that holds `column`'s data (pragma_storage_info
 * says which; blocks start after the file's three 4 KiB headers): damage
 * that leaves the file's length and metadata intact.
 */
async function damageColumn(path: string, column: string): Promise<void> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const inst = await DuckDBInstance.create(path, { access_mode: 'READ_ONLY' });
  const conn = await inst.connect();
  const r = (await conn.runAndReadAll(`SELECT block_id FROM pragma_storage_info('flows') WHERE column_name = $c AND block_id >= 0 LIMIT 1`, { c: column })).getRowObjectsJS()[0];
  const size = (await conn.runAndReadAll('SELECT block_size FROM pragma_database_size() WHERE database_name = current_database()')).getRowObjectsJS()[0];
  conn.closeSync();
  inst.closeSync();
  const at = 3 * 4096 + Number(r!['block_id']) * Number(size!['block_size']) + 1000;
  const fd = openSync(path, 'r+');
  writeSync(fd, randomBytes(4096), 0, 4096, at);
  closeSync(fd);
}

test('a truncated store (with or without its WAL) is moved aside on open', async () => {
  const reasons: string[] = [];
  for (const [cut, withWal] of [
    [0.6, true],
    [0.6, false],
    [0.9, false],
    [0.99, false],
  ] as const) {
    const dir = tmp();
    const path = join(dir, 'history.duckdb');
    await bigStore(path);
    truncateSync(path, Math.floor(statSync(path).size * cut));
    if (withWal) writeFileSync(`${path}.wal`, randomBytes(100));
    const store = await HistoryStore.open(path, opts());
    try {
      assert.equal(store.recovery?.action, 'moved-aside', `cut to ${cut}`);
      reasons.push(store.recovery!.reason);
      assert.equal(store.recovery!.movedTo.length, withWal ? 2 : 1, 'the store, and its WAL if any');
      if (withWal) assert.ok(store.recovery!.movedTo[1]!.endsWith('.wal'));
      for (const p of store.recovery!.movedTo) assert.ok(existsSync(p), p);
      assert.equal((await store.stats()).flows, 0);
      assert.ok(!existsSync(`${path}.opening`), 'no marker left behind');
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  // DuckDB itself fails when the cut takes metadata it reads on open; when it
  // takes only data blocks, DuckDB opens the file and the length check finds it.
  assert.ok(
    reasons.some((r) => /^the file is truncated: \d+ bytes is not 12288 bytes of headers and whole blocks of 262144, and reading it fails: IO Error: Could not read enough bytes/.test(r)),
    reasons.join('\n'),
  );
});

test('a file that ends in a partly written block nothing uses is kept (the full read tells it from a cut)', async () => {
  const dir = tmp();
  const path = join(dir, 'history.duckdb');
  await bigStore(path);
  const fd = openSync(path, 'a');
  writeSync(fd, randomBytes(5000));
  closeSync(fd);
  const store = await HistoryStore.open(path, opts());
  try {
    const note = store.recovery;
    assert.equal(note, undefined);
    assert.equal((await store.stats()).flows, 200_000);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a damaged block is caught by verify: 'full'", async () => {
  const dir = tmp();
  const path = join(dir, 'history.duckdb');
  await bigStore(path);
  await damageColumn(path, 'tcp_flags');
  const store = await HistoryStore.open(path, opts({ verify: 'full' }));
  try {
    assert.equal(store.recovery?.action, 'moved-aside');
    assert.match(store.recovery!.reason, /Corrupt database file|checksum/);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('damage the quick check cannot see is found by the first query that reads it, and recovered there', async () => {
  const dir = tmp();
  const path = join(dir, 'history.duckdb');
  await bigStore(path);
  await damageColumn(path, 'delta_bytes');
  const notices: HistoryNotice[] = [];
  const store = await HistoryStore.open(path, opts({ onNotice: (n) => notices.push(n) }));
  try {
    const atOpen = store.recovery;
    assert.equal(atOpen, undefined, 'the quick check trusts the blocks');
    assert.equal((await store.stats()).flows, 200_000, 'metadata reads fine');
    await assert.rejects(store.timeSeries({ since: new Date(T0), until: new Date(T0 + 60 * MIN), bucketMs: MIN }), /query failed: .*(Corrupt database file|checksum)/);
    assert.equal(store.recovery?.action, 'moved-aside');
    assert.deepEqual(
      notices.map((n) => n.kind),
      ['recovered', 'reopened'],
    );
    store.append(mixed(10));
    await store.flush();
    assert.equal((await store.stats()).flows, 10);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a store whose opens keep dying is moved aside instead of crashing a third time', async () => {
  const dir = tmp();
  const path = join(dir, 'history.duckdb');
  const a = await HistoryStore.open(path, opts());
  a.append([rec({ at: T0 })]);
  await a.close();
  // What two opens that died inside DuckDB leave behind.
  writeFileSync(`${path}.opening`, '2\n');
  const store = await HistoryStore.open(path, opts());
  try {
    assert.equal(store.recovery?.action, 'moved-aside');
    assert.match(store.recovery!.reason, /the last 2 attempts to open it never finished/);
    assert.ok(!existsSync(`${path}.opening`));
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a store of another schema is moved aside, not misread', async () => {
  const dir = tmp();
  const path = join(dir, 'history.duckdb');
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const inst = await DuckDBInstance.create(path);
  const conn = await inst.connect();
  await conn.run('CREATE TABLE flows (ts TIMESTAMP, something VARCHAR)');
  conn.closeSync();
  inst.closeSync();
  const store = await HistoryStore.open(path, opts());
  try {
    assert.equal(store.recovery?.action, 'moved-aside');
    assert.match(store.recovery!.reason, /table flows is \(ts TIMESTAMP, something VARCHAR\), not a KubeNetProbe history store/);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A store as a build of schema 2 wrote it (the DDL of that build, verbatim), with one flow record and one event. */
async function schema2Store(path: string, version = '2'): Promise<void> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const inst = await DuckDBInstance.create(path);
  const conn = await inst.connect();
  await conn.run(
    'CREATE TABLE flows (ts TIMESTAMP NOT NULL, first_seen TIMESTAMP NOT NULL, reason VARCHAR NOT NULL, interface VARCHAR, ifindex UINTEGER NOT NULL, ' +
      'direction VARCHAR NOT NULL, family VARCHAR NOT NULL, protocol VARCHAR NOT NULL, protocol_number UTINYINT NOT NULL, src_ip VARCHAR NOT NULL, ' +
      'src_port USMALLINT NOT NULL, dst_ip VARCHAR NOT NULL, dst_port USMALLINT NOT NULL, src_addr UHUGEINT NOT NULL, dst_addr UHUGEINT NOT NULL, ' +
      'src_namespace VARCHAR, src_pod VARCHAR, dst_namespace VARCHAR, dst_pod VARCHAR, delta_packets BIGINT NOT NULL, delta_bytes BIGINT NOT NULL, ' +
      'packets BIGINT NOT NULL, bytes BIGINT NOT NULL, packets_per_sec DOUBLE NOT NULL, bytes_per_sec DOUBLE NOT NULL, tcp_flags VARCHAR NOT NULL)',
  );
  await conn.run(
    'CREATE TABLE events (ts TIMESTAMP NOT NULL, type VARCHAR NOT NULL, severity VARCHAR NOT NULL, severity_level UTINYINT NOT NULL, description VARCHAR NOT NULL, ' +
      'attacker_ip VARCHAR NOT NULL, attacker_port USMALLINT NOT NULL, attacker_addr UHUGEINT NOT NULL, target_ip VARCHAR NOT NULL, target_port USMALLINT NOT NULL, ' +
      'target_addr UHUGEINT NOT NULL, interface VARCHAR, hook VARCHAR NOT NULL, protocol VARCHAR NOT NULL, count BIGINT NOT NULL, threshold BIGINT NOT NULL, ' +
      'window_ms BIGINT NOT NULL, suppressed BIGINT NOT NULL, tcp_flags VARCHAR NOT NULL, attacker_namespace VARCHAR, attacker_pod VARCHAR, ' +
      'target_namespace VARCHAR, target_pod VARCHAR, cpu UINTEGER NOT NULL, seq UBIGINT NOT NULL)',
  );
  await conn.run('CREATE TABLE kubenetprobe_meta (key VARCHAR NOT NULL, value VARCHAR NOT NULL)');
  await conn.run(`INSERT INTO kubenetprobe_meta VALUES ('schema_version', '${version}')`);
  // 198.18.0.1 -> 198.18.2.10 (as ::ffff:198.18.0.1 and ::ffff:198.18.2.10), a minute before T0.
  const v4 = (a: number, b: number, c: number, d: number): string => String((0xffffn << 32n) | (BigInt(a) << 24n) | (BigInt(b) << 16n) | (BigInt(c) << 8n) | BigInt(d));
  await conn.run(
    `INSERT INTO flows VALUES ('2026-11-26 11:59:00', '2026-11-26 11:58:55', 'final', 'veth0', 7, 'ingress', 'ipv4', 'TCP', 6, '198.18.0.1', 40000, ` +
      `'198.18.2.10', 443, ${v4(198, 18, 0, 1)}, ${v4(198, 18, 2, 10)}, 'default', 'client', 'shop', 'frontend', 5, 500, 5, 500, 1, 100, 'SYN')`,
  );
  await conn.run(
    `INSERT INTO events VALUES ('2026-11-26 11:59:00', 'tcp-null-scan', 'medium', 2, 'old', '198.18.0.1', 5555, ${v4(198, 18, 0, 1)}, '198.18.2.10', 22, ` +
      `${v4(198, 18, 2, 10)}, 'veth1', 'tc-ingress', 'TCP', 1, 1, 0, 0, '', 'default', 'client', 'shop', 'frontend', 0, 7)`,
  );
  conn.closeSync();
  inst.closeSync();
}

test('a store of schema 2 is migrated on open: its rows kept, workload and service added (null in them), and filtered on', async () => {
  const dir = tmp();
  const path = join(dir, 'history.duckdb');
  await schema2Store(path);
  const notices: HistoryNotice[] = [];
  let store = await HistoryStore.open(path, opts({ onNotice: (n) => notices.push(n) }));
  try {
    assert.equal(store.recovery, undefined, 'not moved aside');
    assert.deepEqual(corruptFiles(dir), []);
    assert.deepEqual(notices.map((n) => n.kind), ['migrated']);
    assert.match(notices[0]!.message, /^history: migrated .*history\.duckdb from schema 2 to 3: rows now keep each end's workload and service \(null in the rows written before\)$/);
    const [old] = await store.queryFlows();
    assert.deepEqual(
      [old!.time.getTime(), old!.srcNamespace, old!.srcPod, old!.srcWorkload, old!.srcService, old!.dstPod, old!.dstWorkload, old!.dstService, old!.deltaBytes],
      [T0 - MIN, 'default', 'client', null, null, 'frontend', null, null, 500],
    );
    // New rows carry them, and since-queries filter on them: the old row has no workload, so only the new one matches.
    store.append([rec({ at: T0, src: '198.18.0.1', dst: '198.18.2.10', dport: 443, deltaPackets: 3, deltaBytes: 300 })]);
    store.appendEvents([event(T0, 'tcp-port-scan', 'high', '198.18.0.1')]);
    await store.flush();
    assert.deepEqual((await store.queryFlows({ filters: { workload: 'Deployment/client' } })).map((f) => f.deltaBytes), [300]);
    assert.deepEqual((await store.queryFlows({ filters: { service: 'frontend' } })).map((f) => f.deltaBytes), [300]);
    assert.deepEqual((await store.queryFlows({ filters: { namespace: 'default' } })).map((f) => f.deltaBytes), [500, 300], 'namespace and pod were kept before too');
    assert.deepEqual((await store.queryEvents({ workload: 'client' })).map((e) => e.type), ['tcp-port-scan']);
    assert.deepEqual((await store.queryEvents({ pod: 'shop/frontend' })).map((e) => e.type), ['tcp-null-scan', 'tcp-port-scan']);
    const [oldEvent] = await store.queryEvents({ type: 'tcp-null-scan' });
    assert.deepEqual([oldEvent!.attackerPod, oldEvent!.attackerWorkload, oldEvent!.targetService, oldEvent!.seq], ['client', null, null, 7n]);
    await store.close();
    // Opened again: schema 3 now, nothing to do, nothing lost.
    notices.length = 0;
    store = await HistoryStore.open(path, opts({ onNotice: (n) => notices.push(n) }));
    assert.equal(store.recovery, undefined);
    assert.deepEqual(notices, []);
    assert.equal((await store.stats()).flows, 2);
    assert.equal((await store.stats()).events, 2);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('older and mislabelled stores are still moved aside, not migrated', async () => {
  for (const [version, why] of [
    // Schema 1 had other columns in events: not migrated.
    ['1', /table flows is \(.*\), not a KubeNetProbe history store of schema 3$/],
    ['4', /table flows is \(.*\), not a KubeNetProbe history store of schema 3$/],
  ] as const) {
    const dir = tmp();
    const path = join(dir, 'history.duckdb');
    await schema2Store(path, version);
    const store = await HistoryStore.open(path, opts());
    try {
      assert.equal(store.recovery?.action, 'moved-aside', version);
      assert.match(store.recovery!.reason, why);
      assert.equal(corruptFiles(dir).length, 1);
      assert.equal((await store.stats()).flows, 0);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  // Says schema 2 but lacks one of its columns.
  const dir = tmp();
  const path = join(dir, 'history.duckdb');
  await schema2Store(path);
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const inst = await DuckDBInstance.create(path);
  const conn = await inst.connect();
  await conn.run('ALTER TABLE events DROP COLUMN seq');
  conn.closeSync();
  inst.closeSync();
  const store = await HistoryStore.open(path, opts());
  try {
    assert.equal(store.recovery?.action, 'moved-aside');
    assert.match(store.recovery!.reason, /table events is \(.*\), not a KubeNetProbe history store of schema 2$/);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a store locked by another process is left alone; history goes to memory', async () => {
  const dir = tmp();
  const path = join(dir, 'history.duckdb');
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--hold-child', path], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((res, rej) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('holding') && res());
      child.on('exit', (c) => rej(new Error(`holder exited (${c})`)));
    });
    const store = await HistoryStore.open(path, opts());
    try {
      assert.equal(store.recovery?.action, 'in-memory');
      assert.match(store.recovery!.reason, /locked by another process/);
      assert.deepEqual(corruptFiles(dir), [], 'nothing moved');
      store.append(mixed(10));
      await store.flush();
      const st = await store.stats();
      assert.equal(st.flows, 10);
      assert.equal(st.inMemory, true);
    } finally {
      await store.close();
    }
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a path that is a directory is not moved; history goes to memory', async () => {
  const dir = tmp();
  const path = join(dir, 'history.duckdb');
  mkdirSync(path);
  const store = await HistoryStore.open(path, opts());
  try {
    assert.equal(store.recovery?.action, 'in-memory');
    assert.ok(statSync(path).isDirectory());
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing directory is created', async () => {
  const dir = tmp();
  const path = join(dir, 'a', 'b', 'history.duckdb');
  const store = await HistoryStore.open(path, opts());
  try {
    assert.equal(store.recovery, undefined);
    assert.ok(existsSync(path));
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

if (process.argv[2] === '--crash-child') await crashChild(process.argv[3]!);
if (process.argv[2] === '--hold-child') await holdChild(process.argv[3]!);
