/**
 * Whole-map reads against the kernel: a batch read returns every entry
 * exactly once, into reused buffers or into buffers of its own that start
 * small and grow with the map.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkMonitor } from 'kubenetprobe';
import { FLOW_KEY } from '../src/abi/layouts.js';

function key(i: number): Buffer {
  const k = Buffer.alloc(FLOW_KEY.size);
  k.writeUInt32BE(0xffff, 8);
  k.writeUInt32BE(0xc6120000 + i, 12);
  k.writeUInt16LE(1000 + (i % 50000), 32);
  k.writeUInt32LE(1, 36);
  k[40] = 17;
  k[41] = 4;
  return k;
}

test('dump() returns every entry once, reused or fresh buffers, as the map grows', async () => {
  const mon = await NetworkMonitor.create({ flowTableCapacity: 20000, packetSampleRate: 0 });
  try {
    const map = mon.map('knp_flows');
    const value = Buffer.alloc(map.valueStride);
    const add = (from: number, to: number): void => {
      for (let i = from; i < to; i++) {
        value.writeBigUInt64LE(BigInt(i + 1), 0);
        map.update(key(i), value);
      }
    };
    const seen = (d: ReturnType<typeof map.dump>): Set<string> => {
      const s = new Set<string>();
      for (let i = 0; i < d.count; i++) s.add(d.keys.toString('hex', i * d.keySize, (i + 1) * d.keySize));
      return s;
    };
    add(0, 3000);
    const fresh1 = map.dump(8192, { fresh: true }); // starts at 1024 entries and grows
    assert.equal(fresh1.count, 3000);
    assert.equal(seen(fresh1).size, 3000, 'no duplicates');
    assert.ok(fresh1.keys.length < 20000 * FLOW_KEY.size, 'sized from the fill, not the capacity');
    add(3000, 9000);
    const fresh2 = map.dump(8192, { fresh: true });
    assert.equal(fresh2.count, 9000);
    assert.equal(seen(fresh2).size, 9000);
    assert.equal(fresh1.count, 3000, 'an earlier fresh read is untouched');
    const reused = map.dump(512);
    assert.equal(reused.count, 9000);
    assert.deepEqual(seen(reused), seen(fresh2));
    for (let i = 0; i < reused.count; i++) {
      const k = reused.keys.readUInt32BE(i * FLOW_KEY.size + 12) - 0xc6120000;
      assert.equal(reused.values.readBigUInt64LE(i * reused.valueStride), BigInt(k + 1), 'values travel with their keys');
    }
  } finally {
    await mon.close();
  }
});

test('dumpAsync() reads on a worker thread: every entry once, each chunk handed over once while the next is read', async () => {
  const mon = await NetworkMonitor.create({ flowTableCapacity: 20000, packetSampleRate: 0 });
  try {
    const map = mon.map('knp_flows');
    const value = Buffer.alloc(map.valueStride);
    for (let i = 0; i < 7000; i++) {
      value.writeBigUInt64LE(BigInt(i + 1), 0);
      map.update(key(i), value);
    }
    map.dump(8192, { fresh: true });
    for (let i = 7000; i < 15000; i++) {
      value.writeBigUInt64LE(BigInt(i + 1), 0);
      map.update(key(i), value);
    }
    // The last read saw 7000: the buffers must grow to 15000 mid-read.
    const fromChunks = new Map<number, bigint>();
    let next = 0;
    let chunks = 0;
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 0);
    const d = await map.dumpAsync(1000, (keys, values, start, count) => {
      assert.equal(start, next, 'chunks in order, none skipped');
      next = start + count;
      chunks++;
      for (let i = start; i < start + count; i++) {
        fromChunks.set(keys.readUInt32BE(i * FLOW_KEY.size + 12) - 0xc6120000, values.readBigUInt64LE(i * map.valueStride));
      }
    });
    clearInterval(ticker);
    assert.equal(d.count, 15000);
    assert.equal(next, 15000);
    assert.ok(chunks >= 8, `batches of at most 1000 (a few grow when a bucket is bigger than the room left), got ${chunks}`);
    assert.equal(fromChunks.size, 15000, 'no duplicates');
    for (const [k, v] of fromChunks) assert.equal(v, BigInt(k + 1), 'values travel with their keys');
    for (let i = 0; i < d.count; i++) {
      const k = d.keys.readUInt32BE(i * FLOW_KEY.size + 12) - 0xc6120000;
      assert.equal(d.values.readBigUInt64LE(i * d.valueStride), BigInt(k + 1), 'the final buffers hold every entry');
    }
    assert.ok(ticks > 0, 'the event loop ran during the read');

    // Aborted between batches: it stops with the reason, and close() waits for it.
    const ac = new AbortController();
    await assert.rejects(
      map.dumpAsync(1000, () => ac.abort(new Error('stop here')), ac.signal),
      /stop here/,
    );
    const snap = mon.readFlowSnapshotAsync();
    await mon.close();
    await assert.rejects(snap, { name: 'ClosedError' });
  } finally {
    await mon.close();
  }
});
