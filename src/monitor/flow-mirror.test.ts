import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FLOW_KEY, FLOW_READ_HEADER, FLOW_RECORD, FLOW_VALUE } from '../abi/layouts.js';
import { FlowMirror } from './flow-mirror.js';
import { FlowKeyIndex, FLOW_KEY_WORDS } from './flow-key-index.js';
import { keyWordsOf } from '../../test/helpers/flow-keys.js';
import type { FlowDecoder } from './flow-snapshot.js';
import type { FlowStats } from '../types.js';
import { FlowAccounter, type EvictedFlow, type FlowRecord } from '../agent/flow-accounter.js';

/** A flow of the fake table: its source port names it. */
interface Rec {
  sport: number;
  packets: number;
  lastSeen: number;
}

/** What the knp_flow_read iterator writes: a header, then one record per flow. */
function readOutput(startJiffies: number, recs: Rec[], recordSize: number = FLOW_RECORD.size): { buf: Buffer; length: number } {
  const buf = Buffer.alloc(FLOW_READ_HEADER.size + recs.length * FLOW_RECORD.size + 64); // room to spare, as a reused buffer has
  buf.writeBigUInt64LE(BigInt(startJiffies), FLOW_READ_HEADER.offsets.now_jiffies);
  buf.writeUInt32LE(1, FLOW_READ_HEADER.offsets.cpus);
  buf.writeUInt32LE(recordSize, FLOW_READ_HEADER.offsets.record_size);
  recs.forEach((r, i) => {
    const at = FLOW_READ_HEADER.size + i * FLOW_RECORD.size;
    buf.writeUInt16LE(r.sport, at + FLOW_KEY.offsets.sport);
    buf.writeUInt16LE(53, at + FLOW_KEY.offsets.dport);
    buf.writeUInt8(17, at + FLOW_KEY.offsets.proto);
    const v = at + FLOW_RECORD.offsets.value;
    // Above 2^32, to check both halves of the u64 are read.
    buf.writeBigUInt64LE(BigInt(r.packets), v + FLOW_VALUE.offsets.packets);
    buf.writeBigUInt64LE(BigInt(r.packets) * 100n, v + FLOW_VALUE.offsets.bytes);
    buf.writeBigUInt64LE(BigInt(r.lastSeen), v + FLOW_VALUE.offsets.last_seen_jiffies);
  });
  return { buf, length: FLOW_READ_HEADER.size + recs.length * FLOW_RECORD.size };
}

/** Decodes just what the test compares: the source port and the summed counters. */
const decode: FlowDecoder = (kv, keyAt, vv, valueAt) =>
  ({
    key: { srcPort: kv.getUint16(keyAt + FLOW_KEY.offsets.sport, true) },
    packets: Number(vv.getBigUint64(valueAt + FLOW_VALUE.offsets.packets, true)),
    bytes: Number(vv.getBigUint64(valueAt + FLOW_VALUE.offsets.bytes, true)),
  }) as unknown as FlowStats;

function table(m: FlowMirror): Map<number, { packets: number; bytes: number; lastSeenMs: number }> {
  const snap = m.snapshot(decode, (j) => j * 4);
  const out = new Map<number, { packets: number; bytes: number; lastSeenMs: number }>();
  for (let i = 0; i < snap.count; i++) {
    if (snap.removed[i]) continue;
    const f = snap.flow(i);
    assert.equal(snap.packetsAt(i), f.packets, 'the summed counters and the decoded value agree');
    assert.equal(snap.bytesAt(i), f.bytes);
    out.set(f.key.srcPort, { packets: f.packets, bytes: f.bytes, lastSeenMs: snap.lastSeenMsAt(i) });
  }
  return out;
}

test('a delta read updates the flows it has, adds new ones and keeps the rest as they were', () => {
  const m = new FlowMirror();
  const big = 2 ** 32 + 7;
  const first = readOutput(1000, [
    { sport: 1, packets: 10, lastSeen: 990 },
    { sport: 2, packets: big, lastSeen: 995 },
    { sport: 3, packets: 1, lastSeen: 900 },
  ]);
  assert.deepEqual(m.apply(first.buf, first.length, true), { startJiffies: 1000, records: 3 });
  const delta = readOutput(1250, [
    { sport: 2, packets: big + 5, lastSeen: 1200 },
    { sport: 4, packets: 3, lastSeen: 1240 },
  ]);
  assert.deepEqual(m.apply(delta.buf, delta.length, false), { startJiffies: 1250, records: 2 });
  const t = table(m);
  assert.equal(m.size, 4);
  assert.deepEqual([...t.keys()].sort(), [1, 2, 3, 4]);
  assert.deepEqual(t.get(1), { packets: 10, bytes: 1000, lastSeenMs: 3960 }, 'untouched by the delta');
  assert.deepEqual(t.get(2), { packets: big + 5, bytes: (big + 5) * 100, lastSeenMs: 4800 }, 'updated');
  assert.deepEqual(t.get(4), { packets: 3, bytes: 300, lastSeenMs: 4960 }, 'added');
});

test('remove() drops an evicted flow, and its slot reads as removed in later snapshots', () => {
  const m = new FlowMirror();
  const r = readOutput(10, [1, 2, 3].map((sport) => ({ sport, packets: sport, lastSeen: 9 })));
  m.apply(r.buf, r.length, true);
  const snap = m.snapshot(decode, (j) => j);
  const i = [0, 1, 2].find((k) => snap.flow(k).key.srcPort === 2)!;
  assert.equal(m.remove(snap.keyWords, i * FLOW_KEY_WORDS), true);
  assert.equal(m.remove(snap.keyWords, i * FLOW_KEY_WORDS), false, 'a second time: not held');
  assert.deepEqual([...table(m).keys()].sort(), [1, 3]);
  assert.equal(snap.removed[i], 0, 'a snapshot taken before is a copy: unchanged');
  // The flow comes back (a packet after the eviction): a new flow, counted from its new start.
  const back = readOutput(20, [{ sport: 2, packets: 1, lastSeen: 19 }]);
  m.apply(back.buf, back.length, false);
  assert.equal(table(m).get(2)?.packets, 1);
  assert.equal(m.size, 3);
});

test('a full read drops what it lacks (flows the kernel lost without us); a delta read never does', () => {
  const m = new FlowMirror();
  const all = readOutput(10, [1, 2, 3, 4].map((sport) => ({ sport, packets: 1, lastSeen: 9 })));
  m.apply(all.buf, all.length, true);
  const some = readOutput(20, [{ sport: 2, packets: 2, lastSeen: 19 }]);
  m.apply(some.buf, some.length, false);
  assert.equal(m.size, 4, 'a delta lacks unchanged flows; they stay');
  m.apply(some.buf, some.length, true);
  assert.deepEqual([...table(m).keys()], [2]);
  const empty = readOutput(30, []);
  assert.deepEqual(m.apply(empty.buf, empty.length, true), { startJiffies: 30, records: 0 });
  assert.equal(m.size, 0);
});

test('output that does not fit the layout is an error that names the mismatch, not garbage', () => {
  const m = new FlowMirror();
  const wrong = readOutput(10, [{ sport: 1, packets: 1, lastSeen: 1 }], 104);
  assert.throws(() => m.apply(wrong.buf, wrong.length, true), /records of 104 bytes .*expected 96/);
  const cut = readOutput(10, [{ sport: 1, packets: 1, lastSeen: 1 }]);
  assert.throws(() => m.apply(cut.buf, cut.length - 1, true), /expected 96/);
  assert.throws(() => m.apply(cut.buf, 8, true), /less than its header/);
});

test('the mirror grows past its initial room and keeps every flow', () => {
  const m = new FlowMirror(16);
  const n = 5000;
  const recs = Array.from({ length: n }, (_, i) => ({ sport: i + 1, packets: i + 1, lastSeen: 1 }));
  const r = readOutput(2, recs);
  m.apply(r.buf, r.length, true);
  const t = table(m);
  assert.equal(t.size, n);
  for (const rec of recs) assert.equal(t.get(rec.sport)?.packets, rec.packets);
});

test('the key index finds, removes and reuses slots through collisions and growth', () => {
  const grown: number[] = [];
  const ix = new FlowKeyIndex((cap) => grown.push(cap));
  const key = (n: number): Uint32Array => {
    const w = new Uint32Array(FLOW_KEY_WORDS);
    w[0] = n;
    w[10] = n * 7;
    return w;
  };
  const slots = new Map<number, number>();
  for (let n = 0; n < 3000; n++) slots.set(n, ix.insert(key(n), 0));
  assert.ok(grown.length >= 2, 'grew');
  for (let n = 0; n < 3000; n++) assert.equal(ix.find(key(n), 0), slots.get(n));
  for (let n = 0; n < 3000; n += 2) ix.remove(slots.get(n)!);
  assert.equal(ix.size, 1500);
  for (let n = 0; n < 3000; n++) assert.equal(ix.find(key(n), 0), n % 2 ? slots.get(n) : -1, `key ${n} after removing the even ones`);
  const reused = ix.insert(key(99999), 0);
  assert.ok(reused < 3000, 'a freed slot is reused');
  assert.equal(ix.find(key(99999), 0), reused);
});

test('the accounter passes over flows the mirror did not write, with the records and rates a full lookup gives', () => {
  const m = new FlowMirror();
  const viaMirror = new FlowAccounter({ activeTimeoutMs: 1000 });
  const plain = new FlowAccounter({ activeTimeoutMs: 1000 });
  const finds = { n: 0 };
  const find = FlowKeyIndex.prototype.find;
  const step = (atMs: number, out: { buf: Buffer; length: number }, full: boolean, evictPort?: number): { lookups: number } => {
    m.apply(out.buf, out.length, full);
    let evicted: EvictedFlow[] = [];
    if (evictPort !== undefined) {
      const before = m.snapshot(decode, (j) => j);
      const i = Array.from({ length: before.count }, (_, k) => k).find((k) => !before.removed[k] && before.flow(k).key.srcPort === evictPort)!;
      const last = before.flow(i);
      evicted = [{ keyWords: keyWordsOf(before.key(i)), keyAt: 0, packets: last.packets + 1, bytes: last.bytes + 100, flow: { ...last, packets: last.packets + 1, bytes: last.bytes + 100 } }];
      m.remove(before.keyWords, i * FLOW_KEY_WORDS);
    }
    const snap = m.snapshot(decode, (j) => j);
    const a = viaMirror.begin(atMs);
    FlowKeyIndex.prototype.find = function (this: FlowKeyIndex, w: Uint32Array, at: number): number {
      finds.n++;
      return find.call(this, w, at);
    };
    finds.n = 0;
    try {
      a.add(snap.keyWords, snap, 0, snap.count, snap.removed, snap.mirror);
    } finally {
      FlowKeyIndex.prototype.find = find;
    }
    const lookups = finds.n;
    const b = plain.begin(atMs);
    b.add(snap.keyWords, snap, 0, snap.count, snap.removed);
    const key = (r: FlowRecord): string => `${r.flow.key.srcPort} ${r.reason}`;
    const ra = a.end(snap, evicted).sort((x, y) => key(x).localeCompare(key(y)));
    const rb = b.end(snap, evicted).sort((x, y) => key(x).localeCompare(key(y)));
    assert.deepEqual(ra, rb, `records at ${atMs} ms`);
    for (let i = 0; i < snap.count; i++) assert.deepEqual(viaMirror.rateAt(i), plain.rateAt(i), `rates of flow ${i} at ${atMs} ms`);
    return { lookups };
  };
  const rec = (sport: number, packets: number): Rec => ({ sport, packets, lastSeen: 1 });
  step(0, readOutput(1, [rec(1, 10), rec(2, 5), rec(3, 5)]), true);
  assert.equal(step(500, readOutput(2, [rec(1, 20)]), false).lookups, 0, 'the flow that moved is found by its slot');
  assert.equal(step(1000, readOutput(3, [rec(4, 1)]), false, 2).lookups, 1, 'only the new flow is looked up'); // 2 evicted, 4 new
  // 2's slot, freed, taken by a new flow: looked up (a new key), not taken for 2.
  assert.equal(step(1300, readOutput(4, [rec(5, 2), rec(1, 30)]), false).lookups, 1, 'a new flow in a freed slot is looked up');
  assert.equal(step(1600, readOutput(5, []), false).lookups, 0, 'nothing moved: no lookups; active records for 1 and 3');
  step(2700, readOutput(6, [rec(3, 8)]), false);
});
