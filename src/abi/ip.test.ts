import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAddress, formatIpv6 } from './ip.js';

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
