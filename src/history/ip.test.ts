import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockList, isIP } from 'node:net';
import { addressRange, ipToBigInt } from './ip.js';

test('IPv4 maps into ::ffff:0:0/96, IPv6 parses every textual form to the same number', () => {
  assert.equal(ipToBigInt('10.0.0.1'), (0xffffn << 32n) | 0x0a000001n);
  assert.equal(ipToBigInt('::ffff:10.0.0.1'), ipToBigInt('10.0.0.1'));
  assert.equal(ipToBigInt('::ffff:a00:1'), ipToBigInt('10.0.0.1'));
  assert.equal(ipToBigInt('fd00::1'), (0xfd00n << 112n) | 1n);
  assert.equal(ipToBigInt('fd00:0:0:0:0:0:0:1'), ipToBigInt('fd00::1'));
  assert.equal(ipToBigInt('FD00::0001'), ipToBigInt('fd00::1'));
  assert.equal(ipToBigInt('::'), 0n);
  assert.equal(ipToBigInt('::1'), 1n);
  assert.equal(ipToBigInt('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), (1n << 128n) - 1n);
  assert.equal(ipToBigInt('1::'), 1n << 112n);
});

test('the IPv4 parser agrees with node:net on every address form', () => {
  for (const ip of ['0.0.0.0', '255.255.255.255', '10.0.0.1', '1.20.255.0', '192.168.100.9']) {
    assert.equal(ipToBigInt(ip), (0xffffn << 32n) | BigInt(ip.split('.').reduce((n, p) => n * 256 + Number(p), 0)), ip);
  }
  for (const s of ['00.1.2.3', '1.2.3.04', '256.1.1.1', '1.2.3', '1.2.3.4.', 'a.b.c.d', '1.2.3.-4']) {
    assert.equal(isIP(s), 0, `node:net refuses ${s}`);
    assert.equal(ipToBigInt(s), undefined, s);
  }
});

test('anything that is not an address is refused', () => {
  for (const bad of ['', 'x', '10.0.0', '10.0.0.256', '1.2.3.4.5', '01.2.3.4', '1..2.3', '.1.2.3', '1.2.3.', '1.2.3.1000', ' 1.2.3.4', 'fe80::1%eth0', '1:2:3:4:5:6:7:8:9', ':::', '10.0.0.1/8', '::ffff:1.2.3.256']) {
    assert.equal(ipToBigInt(bad), undefined, bad);
  }
});

test('CIDR ranges agree with node:net BlockList', () => {
  const cases: [string, string[]][] = [
    ['10.0.0.0/8', ['10.0.0.0', '10.255.255.255', '9.255.255.255', '11.0.0.0', '10.1.2.3']],
    ['198.18.2.0/24', ['198.18.2.0', '198.18.2.255', '198.18.3.0', '198.18.1.255']],
    ['0.0.0.0/0', ['0.0.0.0', '255.255.255.255']],
    ['1.2.3.4', ['1.2.3.4', '1.2.3.5']],
    ['fd00::/64', ['fd00::', 'fd00::ffff:ffff:ffff:ffff', 'fd00:0:0:1::', 'fcff::1']],
    ['::/0', ['::', 'ffff::1', '::ffff:1.2.3.4']],
  ];
  for (const [cidr, ips] of cases) {
    const r = addressRange(cidr)!;
    assert.ok(r, cidr);
    const [addr, prefix] = cidr.split('/') as [string, string | undefined];
    const v4 = addr.includes('.');
    const list = new BlockList();
    list.addSubnet(addr, prefix === undefined ? (v4 ? 32 : 128) : Number(prefix), v4 ? 'ipv4' : 'ipv6');
    for (const ip of ips) {
      const n = ipToBigInt(ip)!;
      const ipv4 = ip.includes('.') && !ip.includes(':');
      // An IPv4 block only ever holds IPv4 addresses here.
      if (v4 !== ipv4) continue;
      assert.equal(n >= r.lo && n <= r.hi, list.check(ip, ipv4 ? 'ipv4' : 'ipv6'), `${ip} in ${cidr}`);
    }
  }
  assert.equal(addressRange('10.0.0.0/33'), undefined);
  assert.equal(addressRange('fd00::/129'), undefined);
  assert.equal(addressRange('nope/8'), undefined);
});
