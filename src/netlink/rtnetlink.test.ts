/**
 * Netlink message parsing over hand-built messages (the kernel's answers
 * are exercised in test/pod-attach.test.ts and test/interface-watcher.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IFINFOMSG_LEN, IFLA_IFNAME, NLMSG_HDRLEN, RTM_DELLINK, RTM_NEWLINK, cstr, parseAttributes } from './rtnetlink.js';
import { parseLinkMessages } from '../agent/interface-watcher.js';

function rta(type: number, payload: Buffer): Buffer {
  const b = Buffer.alloc((4 + payload.length + 3) & ~3);
  b.writeUInt16LE(4 + payload.length, 0);
  b.writeUInt16LE(type, 2);
  payload.copy(b, 4);
  return b;
}

function linkMessage(type: number, ifindex: number, attrs: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.alloc(IFINFOMSG_LEN), ...attrs]);
  body.writeInt32LE(ifindex, 4);
  const hdr = Buffer.alloc(NLMSG_HDRLEN);
  hdr.writeUInt32LE(NLMSG_HDRLEN + body.length, 0);
  hdr.writeUInt16LE(type, 4);
  return Buffer.concat([hdr, body]);
}

test('attributes: padded to 4 bytes, nested flag bits dropped, a truncated one ends the list', () => {
  const nested = rta(18 | 0x8000, rta(1, Buffer.from('veth\0')));
  const buf = Buffer.concat([rta(3, Buffer.from('eth0\0')), nested, rta(37, Buffer.from([1, 0, 0, 0]))]);
  const a = parseAttributes(buf, 0, buf.length);
  assert.equal(cstr(a.get(3)), 'eth0');
  const info = a.get(18)!;
  assert.equal(cstr(parseAttributes(info, 0, info.length).get(1)), 'veth');
  assert.equal(a.get(37)!.readInt32LE(0), 1);
  const cut = Buffer.concat([rta(3, Buffer.from('ab\0')), Buffer.from([40, 0, 5, 0, 1, 2])]);
  assert.deepEqual([...parseAttributes(cut, 0, cut.length).keys()], [3]);
});

test('link messages: new and deleted links with their names, several per datagram', () => {
  const dgram = Buffer.concat([
    linkMessage(RTM_NEWLINK, 7, [rta(IFLA_IFNAME, Buffer.from('cali12345\0'))]),
    linkMessage(RTM_DELLINK, 8, [rta(IFLA_IFNAME, Buffer.from('lxc9\0'))]),
    linkMessage(RTM_NEWLINK, 9, []),
  ]);
  assert.deepEqual(parseLinkMessages(dgram, dgram.length), [
    { type: 'new', ifindex: 7, name: 'cali12345' },
    { type: 'del', ifindex: 8, name: 'lxc9' },
    { type: 'new', ifindex: 9, name: undefined },
  ]);
  assert.deepEqual(parseLinkMessages(dgram, 10), [], 'a cut datagram gives nothing, not garbage');
});
