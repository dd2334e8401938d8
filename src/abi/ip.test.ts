import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeAddress, encodeAddress, formatAddress, formatIpv6, parseCidr } from './ip.js';

function bytes(...b: number[]): DataView {
  const u = new Uint8Array(16);
  u.set(b, 16 - b.length);
  return new DataView(u.buffer);
}

function v6(text: string): DataView {
  // Test helper: parse a full (uncompressed) IPv6 text form.
  const u = new Uint8Array(16);
  text.split(':').forEach((g, i) => {
    const n = parseInt(g, 16);
    u[i * 2] = n >> 8;
    u[i * 2 + 1] = n & 0xff;
  });
  return new DataView(u.buffer);
}

test('IPv4-mapped addresses print as dotted quads', () => {
  assert.equal(formatAddress(bytes(0, 0, 0xff, 0xff, 198, 18, 0, 1), 0, 4), '198.18.0.1');
});

test('IPv6 follows RFC 5952', () => {
  assert.equal(formatIpv6(v6('2001:0db8:0:0:0:0:0:1'), 0), '2001:db8::1');
  assert.equal(formatIpv6(v6('0:0:0:0:0:0:0:0'), 0), '::');
  assert.equal(formatIpv6(v6('0:0:0:0:0:0:0:1'), 0), '::1');
  assert.equal(formatIpv6(v6('fe80:0:0:0:1:0:0:0'), 0), 'fe80::1:0:0:0');
  // a single zero group is not compressed
  assert.equal(formatIpv6(v6('2001:db8:0:1:1:1:1:1'), 0), '2001:db8:0:1:1:1:1:1');
  // the first of two equal runs wins
  assert.equal(formatIpv6(v6('2001:0:0:1:0:0:1:1'), 0), '2001::1:0:0:1:1');
  assert.equal(formatIpv6(v6('fd00:0:0:0:0:0:0:2'), 0), 'fd00::2');
});

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
