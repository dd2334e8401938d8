/**
 * Conversations from real traffic: a TCP exchange between two pods, watched
 * at both pods' veths, is one conversation, each direction counted once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toConversations } from '../src/agent/conversations.js';
import { onTestNode } from './helpers/testnet.js';
import { sleep } from './helpers/attached.js';

test('a TCP exchange watched at both ends: one conversation, client first, closed, not double counted', async () => {
  await onTestNode({ ipv6: false }, { packetSampleRate: 0 }, async ({ net, mon, a, b }) => {
    await net.background(b, ['tcp-server', '7100']);
    const ia = (await mon.attachToInterface(a.hostIf)).ifindex;
    const ib = (await mon.attachToInterface(b.hostIf)).ifindex;
    assert.match(net.traffic(a, ['tcp-send', b.ipv4, '7100', String(1 << 20)]), /echoed 1048576/);
    await sleep(200);
    const flows = mon.getFlowStats().filter((f) => f.key.protocol === 'TCP' && (f.key.dstPort === 7100 || f.key.srcPort === 7100));
    // Each direction is one flow, counted at the veth where it entered the node, not again where it left.
    assert.equal(flows.length, 2, 'one flow per direction');
    const conv = toConversations(flows);
    assert.equal(conv.length, 1);
    const c = conv[0]!;
    assert.equal(c.a.ip, a.ipv4, 'pod a opened it');
    assert.deepEqual(c.b, { ip: b.ipv4, port: 7100 });
    const upAtA = flows.find((f) => f.key.ifindex === ia && f.key.direction === 'ingress')!;
    const downAtB = flows.find((f) => f.key.ifindex === ib && f.key.direction === 'ingress')!;
    assert.ok(upAtA && downAtB, 'client to server at a\'s veth, server to client at b\'s');
    assert.equal(c.aToB.packets, upAtA.packets, 'client to server, once');
    assert.equal(c.bToA.packets, downAtB.packets, 'server to client, once');
    assert.equal(c.aToB.bytes, upAtA.bytes);
    assert.equal(c.state, 'closed');
    assert.equal(c.synCount, 2);
    assert.equal(c.rstCount, 0);
    assert.deepEqual(c.interfaces, [a.hostIf, b.hostIf].sort());
  });
});
