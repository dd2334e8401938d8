/**
 * Automatic attach to pods' host-side interfaces, against the kernel: pods
 * laid out as Calico, Cilium and the bridge plugin lay them out (namespaces
 * and veths, test/helpers/cni-node.ts), their identity from an inventory.
 * The agent is given no interface names: it finds each pod's interface from
 * the pod's IP, attaches as a pod starts, detaches as it goes, and counts
 * what each pod sends exactly.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, type InterfaceStatus } from '../src/agent/agent.js';
import { loadConfig } from '../src/agent/config.js';
import { RtNetlink } from '../src/netlink/rtnetlink.js';
import { CniNode, type CniPod } from './helpers/cni-node.js';
import { FakeKubeApi, pod as kubePod } from './helpers/fake-kube-api.js';
import { sh } from './helpers/testnet.js';
import { attachedTo, nothingAttached, sleep, waitFor } from './helpers/attached.js';

const TRAFFIC = fileURLToPath(new URL('../../tools/traffic.mjs', import.meta.url));
const COUNT = 200;
const PAYLOAD = 60;
const PORT = 7311;

describe('attach to pods found from their IPs (Calico, Cilium and bridge layouts)', () => {
  let node: CniNode;
  let agent: Agent;
  let dir: string;
  let inventory: string;
  /** Pods in the inventory that are on no interface of this node. */
  let elsewhere: string;

  const writeInventory = (pods: CniPod[]): void => {
    const body = {
      pods: [
        ...pods.map((p) => ({ name: p.name, namespace: 'shop', labels: { cni: p.cni }, ip: p.ip, workload: { kind: 'Deployment', name: p.name } })),
        { name: 'remote', namespace: 'shop', labels: {}, ip: elsewhere },
      ],
    };
    // Whole or not at all: the agent may read it at any moment.
    writeFileSync(`${inventory}.tmp`, JSON.stringify(body));
    renameSync(`${inventory}.tmp`, inventory);
  };

  const status = (hostIf: string): InterfaceStatus | undefined => agent.stats().interfaces.find((i) => i.name === hostIf);

  before(async () => {
    node = new CniNode();
    node.addPod('calico', 'web');
    node.addPod('cilium', 'api');
    node.addPod('bridge', 'db');
    elsewhere = node.address(60);
    dir = mkdtempSync(join(tmpdir(), 'knp-podattach-'));
    inventory = join(dir, 'inventory.json');
    writeInventory(node.pods);
    agent = await Agent.start(
      // Cilium's lxc* also match by name: those are watched for both reasons.
      loadConfig({ flags: { interface: [`lxc${node.id}*`], attachPods: true, inventory, intervalMs: 100, packetSampleRate: '0' } }),
    );
  });
  after(async () => {
    await agent?.close();
    node?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("each pod's host-side interface is found from its IP and attached at start", () => {
    assert.deepEqual(agent.startNotices(), []);
    for (const p of node.pods) {
      const s = status(p.hostIf);
      assert.ok(s, `${p.cni}: ${p.hostIf} watched`);
      assert.equal(s.attached, true, `${p.cni}: ${s.notes.join('; ')}`);
      assert.deepEqual([...s.reasons].sort(), p.cni === 'cilium' ? ['interface', 'pod'] : ['pod']);
      assert.deepEqual(s.pod, { namespace: 'shop', pod: p.name, ip: p.ip, foundBy: 'peer-address' });
      assert.ok(!nothingAttached(attachedTo(p.hostIf)), `${p.cni}: programs on ${p.hostIf} in the kernel`);
    }
    // Only the pods' own interfaces: not the bridge, not cilium_host, not the pod that is elsewhere.
    assert.deepEqual(
      agent
        .stats()
        .interfaces.map((i) => i.name)
        .sort(),
      node.pods.map((p) => p.hostIf).sort(),
    );
  });

  test('what each pod sends is counted exactly on its own interface, with its name', async () => {
    for (const p of node.pods) node.exec(p, process.execPath, [TRAFFIC, 'udp-send', '198.18.255.254', String(PORT), String(COUNT), String(PAYLOAD)]);
    await waitFor('the flows', () => node.pods.every((p) => agent.flows({ ip: p.ip, port: PORT }).some((f) => f.packets >= COUNT)), 5000);
    await sleep(300); // a cycle more: nothing else arrives
    for (const p of node.pods) {
      const flows = agent.flows({ ip: p.ip, port: PORT });
      assert.equal(flows.length, 1, `${p.cni}: one flow`);
      const f = flows[0]!;
      assert.equal(f.interface, p.hostIf, p.cni);
      assert.equal(f.key.direction, 'ingress');
      assert.deepEqual({ packets: f.packets, bytes: f.bytes }, { packets: COUNT, bytes: COUNT * (20 + 8 + PAYLOAD) }, p.cni);
      assert.equal(f.source?.pod, p.name);
      assert.deepEqual(f.source?.workload, { kind: 'Deployment', name: p.name });
    }
  });

  test('a pod that starts is attached within 2 s; one that goes is detached', async () => {
    const late = node.addPod('calico', 'late');
    writeInventory(node.pods);
    const t0 = Date.now();
    await waitFor('the new pod attached', () => status(late.hostIf)?.attached === true, 2000);
    const took = Date.now() - t0;
    assert.ok(!nothingAttached(attachedTo(late.hostIf)));
    assert.equal(status(late.hostIf)?.pod?.pod, 'late');

    // Leaves the inventory while its veth stays: the programs come off (the agent only watches pods).
    writeInventory(node.pods.filter((p) => p !== late));
    await waitFor('the pod detached', () => status(late.hostIf) === undefined, 2000);
    assert.ok(nothingAttached(attachedTo(late.hostIf)), 'nothing left attached to an interface the agent no longer watches');

    // Deleted the way a CNI deletes it (namespace and veth gone) while still listed: forgotten too.
    writeInventory(node.pods);
    await waitFor('attached again', () => status(late.hostIf)?.attached === true, 2000);
    node.removePod(late);
    await waitFor('the deleted pod forgotten', () => status(late.hostIf) === undefined, 2000);
    const web = node.pods.find((p) => p.name === 'web')!;
    assert.equal(status(web.hostIf)?.attached, true, 'the others stay');
    process.stdout.write(`# pod attached ${took} ms after it appeared\n`);
  });

  test('an interface that both matches a name and is a pod: attached once, kept while either reason holds', async () => {
    const api = node.pods.find((p) => p.cni === 'cilium')!;
    const before = attachedTo(api.hostIf);
    writeInventory(node.pods.filter((p) => p !== api));
    await waitFor('no longer a pod', () => status(api.hostIf)?.pod === undefined, 2000);
    assert.deepEqual(status(api.hostIf)?.reasons, ['interface']);
    assert.equal(status(api.hostIf)?.attached, true, 'its name still matches: it stays attached');
    assert.deepEqual(attachedTo(api.hostIf), before, 'the same programs, attached once');
    writeInventory(node.pods);
    await waitFor('a pod again', () => status(api.hostIf)?.pod?.pod === 'api', 2000);
    assert.deepEqual([...status(api.hostIf)!.reasons].sort(), ['interface', 'pod']);
    assert.deepEqual(attachedTo(api.hostIf), before);
  });
});

describe("attach to the pods the cluster places on this node (against a local stand-in for the API server)", () => {
  let node: CniNode;
  let kube: FakeKubeApi;
  let agent: Agent;
  const status = (hostIf: string): InterfaceStatus | undefined => agent.stats().interfaces.find((i) => i.name === hostIf);

  before(async () => {
    node = new CniNode();
    kube = await FakeKubeApi.start();
    const here = node.addPod('calico', 'here');
    // A pod the cluster says is on another node, though its IP is local here (a stale or wrong report): not this node's to watch.
    const there = node.addPod('calico', 'there');
    kube.apply('pods', kubePod({ namespace: 'shop', name: 'here', ip: here.ip, node: 'node-1' }));
    kube.apply('pods', kubePod({ namespace: 'shop', name: 'there', ip: there.ip, node: 'node-2' }));
    agent = await Agent.start(
      loadConfig({ flags: { interface: [], attachPods: true, kubernetes: 'kubeconfig', kubeconfig: kube.writeKubeconfig(), nodeName: 'node-1', kubernetesTimeoutMs: 5000, intervalMs: 100, packetSampleRate: '0' } }),
    );
  });
  after(async () => {
    await agent?.close();
    await kube?.close();
    node?.close();
  });

  test("this node's pods are attached as the cluster adds them and detached as it deletes them", async () => {
    const [here, there] = node.pods as [CniPod, CniPod];
    assert.deepEqual(agent.startNotices(), []);
    assert.deepEqual(status(here.hostIf)?.pod, { namespace: 'shop', pod: 'here', ip: here.ip, foundBy: 'peer-address' });
    assert.equal(status(there.hostIf), undefined, "node-2's pod is not watched here");

    const late = node.addPod('cilium', 'late');
    kube.apply('pods', kubePod({ namespace: 'shop', name: 'late', ip: late.ip, node: 'node-1' }));
    const t0 = Date.now();
    await waitFor('the new pod attached', () => status(late.hostIf)?.attached === true, 2000);
    const tookAdd = Date.now() - t0;
    assert.ok(!nothingAttached(attachedTo(late.hostIf)));

    assert.ok(kube.delete('pods', 'late', 'shop'));
    const t1 = Date.now();
    await waitFor('the deleted pod detached', () => status(late.hostIf) === undefined, 2000);
    const tookDelete = Date.now() - t1;
    assert.ok(nothingAttached(attachedTo(late.hostIf)), 'its veth is still there, with nothing of ours on it');
    assert.equal(status(here.hostIf)?.attached, true);
    process.stdout.write(`# cluster pod attached ${tookAdd} ms after it was added, detached ${tookDelete} ms after it was deleted\n`);
  });
});

test("@main: the default routes' interfaces, as `ip route` names them", () => {
  const nl = RtNetlink.open();
  try {
    const ifindex = (dev: string): number => Number(sh('cat', [`/sys/class/net/${dev}/ifindex`]).trim());
    const routes = ['-4', '-6'].flatMap((f) => JSON.parse(sh('ip', ['-j', f, 'route', 'show', 'default', 'table', 'main'])) as { dev?: string; type?: string }[]);
    const want = [...new Set(routes.filter((r) => r.dev !== undefined && (r.type ?? 'unicast') === 'unicast').map((r) => ifindex(r.dev!)))].sort();
    assert.deepEqual([...nl.defaultRouteLinks()].sort(), want);
  } finally {
    nl.close();
  }
});
