import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAddress, encodeAddress, parseCidr } from './ip.js';

const hex = (b: Uint8Array | undefined): string | undefined => (b ? Buffer.from(b).toString('hex') : undefined);

test('addresses encode to the ABI bytes and back', () => {
  assert.equal(hex(encodeAddress('198.18.0.1')), '00000000000000000000ffffc6120001');
  assert.equal(hex(encodeAddress('fd00::1')), 'fd000000000000000000000000000001');
  assert.equal(hex(encodeAddress('::')), '0'.repeat(32));
  assert.equal(hex(encodeAddress('1:2:3:4:5:6:7:8')), '00010002000300040005000600070008');
  assert.equal(hex(encodeAddress('::ffff:1.2.3.4')), '00000000000000000000ffff01020304');
  for (const ip of ['198.18.0.1', 'fd00::1', '::', '1:2:3:4:5:6:7:8', 'fe80::1:2']) assert.equal(decodeAddress(encodeAddress(ip)!), ip);
  for (const bad of ['', '1.2.3', '1.2.3.256', '01.2.3.4', 'fd00:::1', '1::2::3', 'g::1', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '::1.2.3', 'eth0']) {
    assert.equal(encodeAddress(bad), undefined, bad);
  }
});

test('CIDR blocks become 128-bit prefixes', () => {
  assert.deepEqual(parseCidr('198.18.0.0/15'), { addr: encodeAddress('198.18.0.0'), prefix128: 111, family: 4 });
  assert.deepEqual(parseCidr('fd00::/8'), { addr: encodeAddress('fd00::'), prefix128: 8, family: 6 });
  assert.equal(parseCidr('10.0.0.1')?.prefix128, 128, 'an address alone is a /32');
  for (const bad of ['10.0.0.0/33', 'fd00::/129', '10.0.0.0/', 'x/8', '10.0.0.0/8/8']) assert.equal(parseCidr(bad), undefined, bad);
});
