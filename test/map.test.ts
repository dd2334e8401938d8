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
