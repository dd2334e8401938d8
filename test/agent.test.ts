/**
 * The agent on a node in namespaces: it attaches to the interfaces its
 * patterns name, follows veths as they come and go, keeps counting an
 * interface that comes back, and serves flows with exact counts.
 */
import { test } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { Agent } from '../src/agent/agent.js';
import { loadConfig } from '../src/agent/config.js';
import { agentServiceMap } from '../src/api/service-map.js';
import { TestNet } from './helpers/testnet.js';
import { attachedTo, nothingAttached, sleep, waitFor } from './helpers/attached.js';

test('agent: attach by glob, exact flows, churn within 2 s, counts that continue, nothing left after close', async () => {
  const net = TestNet.create(2, { ipv6: false });
  let agent: Agent | undefined;
  try {
    const a = net.pod('a');
    const b = net.pod('b');
    agent = await Agent.start(loadConfig({ flags: { interface: [`kv${net.id}*`], intervalMs: 100, idleTimeoutMs: 60000 } }));
    const names = () => agent!.stats().interfaces.filter((i) => i.attached).map((i) => i.name).sort();
    assert.deepEqual(names(), [a.hostIf, b.hostIf]);

    net.traffic(a, ['udp-send', b.ipv4, '5901', '50', '25', '48001']);
    await waitFor('a pipeline cycle with the flow', () => agent!.flows({ port: 5901, direction: 'ingress' }).length > 0, 3000);
    await sleep(250);
    const flows = agent.flows({ port: 5901, interface: a.hostIf });
    assert.equal(flows.length, 1);
    assert.equal(flows[0]!.packets, 50);
    assert.equal(flows[0]!.bytes, 50 * (20 + 8 + 25));
    assert.equal(flows[0]!.state, 'live');
    const conv = agent.conversations({ port: 5901 });
    assert.equal(conv.length, 1, 'seen at both veths, one conversation');
    assert.equal(conv[0]!.aToB.packets + conv[0]!.bToA.packets, 50, 'not counted twice');

    const parsedAt = () => agent!.stats().interfaces.find((i) => i.name === a.hostIf)?.counters['tc-ingress']?.packets.parsed ?? -1;
    assert.equal(parsedAt(), 50);

    // The pod's veth goes away and comes back: forgotten, then attached again within 2 s.
    net.unplug(a);
    await waitFor('the veth to be forgotten', () => !names().includes(a.hostIf), 2000);
    const t0 = Date.now();
    net.replug(a, { ipv6: false });
    await waitFor('the new veth to be attached', () => names().includes(a.hostIf), 2000);
    assert.ok(Date.now() - t0 <= 2000);
    net.traffic(a, ['udp-send', b.ipv4, '5901', '30', '25', '48001']);
    await sleep(100);
    assert.equal(parsedAt(), 80, 'counts continue from where they stopped');
    assert.equal(agent.stats().coverage.ratio, 1);
    assert.ok(agent.ready);

    await agent.close();
    agent = undefined;
    assert.ok(nothingAttached(attachedTo(a.hostIf)));
    assert.ok(nothingAttached(attachedTo(b.hostIf)));
  } finally {
    await agent?.close();
    await net.close();
  }
});

test('agent: a closed connection leaves the table after --ended-timeout-ms, and stays on the service map for --idle-timeout-ms', async () => {
  const net = TestNet.create(2, { ipv6: false });
  let agent: Agent | undefined;
  let dir: string | undefined;
  try {
    const a = net.pod('a');
    const b = net.pod('b');
    await net.background(b, ['tcp-server', '7400']);
    // Pods the map knows (traffic between two unknown addresses is not drawn).
    dir = mkdtempSync(join(tmpdir(), 'knp-agent-'));
    const inventory = join(dir, 'pods.json');
    writeFileSync(inventory, JSON.stringify({ pods: [a, b].map((p, i) => ({ name: `p${i}`, namespace: 'default', labels: {}, ip: p.ipv4 })) }));
    agent = await Agent.start(loadConfig({ flags: { interface: [`kv${net.id}*`], intervalMs: 100, idleTimeoutMs: 3000, endedTimeoutMs: 300, inventory } }));
    net.traffic(a, ['tcp-send', b.ipv4, '7400', '5000']);
    const ended = (): number => agent!.flows({ port: 7400 }).filter((f) => f.state === 'finished').length;
    await waitFor('both directions to finish', () => ended() === 2, 3000);
    assert.equal(agent.flows({ port: 7400 }).filter((f) => f.state === 'live').length, 0, 'out of the live table');
    const edge = (): unknown => agentServiceMap(agent!, {}, 100).edges.find((e) => e.port === 7400);
    assert.ok(edge(), 'still on the map');
    await waitFor('the edge to leave the map once the idle timeout has passed', () => edge() === undefined, 6000);
  } finally {
    await agent?.close();
    await net.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});
