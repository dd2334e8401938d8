/**
 * The agent with identity from the cluster: a local stand-in for the
 * Kubernetes API server (test/helpers/fake-kube-api.ts, not a real API
 * server) holds pods for the test namespaces' IPs, owned by a ReplicaSet of
 * a Deployment, and a Service selecting one of them. Flows carry the names
 * and are filtered by them; a deleted pod's IP stops resolving.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Agent, type FlowView } from '../src/agent/agent.js';
import { loadConfig } from '../src/agent/config.js';
import { startApiServer, type ApiServer } from '../src/api/server.js';
import { FakeKubeApi, endpointSlice, owned, pod, service } from './helpers/fake-kube-api.js';
import { TestNet, type Pod } from './helpers/testnet.js';
import { sleep, waitFor } from './helpers/attached.js';
import { TCP, ethernet, ipv4, mac, tcp } from '../tools/frames.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const PORT = 6311;
const COUNT = 30;
const PAYLOAD = 40;
const SRCPORT = 49311;

describe('agent with Kubernetes identity (against a local stand-in for the API server)', () => {
  let net: TestNet;
  let kube: FakeKubeApi;
  let agent: Agent;
  let api: ApiServer;
  let a: Pod;
  let b: Pod;

  before(async () => {
    net = TestNet.create(2, { ipv6: false });
    a = net.pod('a');
    b = net.pod('b');
    kube = await FakeKubeApi.start();
    kube.apply('replicasets', owned({ name: 'client-5c6d', owner: { kind: 'Deployment', name: 'client' } }));
    kube.apply('replicasets', owned({ namespace: 'shop', name: 'api-7d9f', owner: { kind: 'Deployment', name: 'api' } }));
    kube.apply('pods', pod({ name: 'client-5c6d-aaaaa', ip: a.ipv4, labels: { app: 'client', 'pod-template-hash': '5c6d' }, owner: { kind: 'ReplicaSet', name: 'client-5c6d' } }));
    kube.apply('pods', pod({ namespace: 'shop', name: 'api-7d9f-bbbbb', ip: b.ipv4, labels: { app: 'api', 'pod-template-hash': '7d9f' }, owner: { kind: 'ReplicaSet', name: 'api-7d9f' } }));
    kube.apply('pods', pod({ namespace: 'shop', name: 'elsewhere', ip: '10.244.9.9', node: 'node-2', labels: { app: 'api' } }));
    kube.apply('services', service({ namespace: 'shop', name: 'api', clusterIP: '10.96.0.50' }));
    kube.apply('endpointslices', endpointSlice({ namespace: 'shop', name: 'api-x1', service: 'api', addresses: [b.ipv4] }));
    const kubeconfig = kube.writeKubeconfig();
    agent = await Agent.start(
      loadConfig({ flags: { interface: [`kv${net.id}*`], intervalMs: 100, packetSampleRate: '0', kubernetes: 'kubeconfig', kubeconfig, nodeName: 'node-1', kubernetesTimeoutMs: 5000 } }),
    );
    api = await startApiServer(agent, { host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await api?.close();
    await agent?.close();
    await kube?.close();
    await net?.close();
  });

  const get = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await fetch(`${api.url}${path}`);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  test('identity from the cluster: pod, workload through the owner chain, service, kept labels, node', () => {
    assert.deepEqual(agent.startNotices(), []);
    assert.deepEqual(agent.identity(b.ipv4), {
      namespace: 'shop',
      pod: 'api-7d9f-bbbbb',
      labels: { app: 'api' },
      workload: { kind: 'Deployment', name: 'api' },
      service: 'api',
      node: 'node-1',
    });
    assert.deepEqual(agent.identity(a.ipv4)?.workload, { kind: 'Deployment', name: 'client' });
    assert.equal(agent.identity('10.96.0.50'), undefined, 'a ClusterIP is not a pod');
    assert.deepEqual([...agent.knownPods()].map(([ip, id]) => `${ip} ${id.namespace}/${id.pod}`).sort(), [`${a.ipv4} default/client-5c6d-aaaaa`, `${b.ipv4} shop/api-7d9f-bbbbb`].sort(), "this node's pods only");
  });

  test('flows filtered by workload, service and label, with the names beside the IPs', async () => {
    net.traffic(a, ['udp-send', b.ipv4, String(PORT), String(COUNT), String(PAYLOAD), String(SRCPORT)]);
    await waitFor('the flow', () => agent.flows({ port: PORT }).length >= 1, 3000);
    await sleep(250);
    const want = { packets: COUNT, bytes: COUNT * (20 + 8 + PAYLOAD) };
    const only = (flows: FlowView[]) => {
      assert.equal(flows.length, 1);
      assert.deepEqual({ packets: flows[0]!.packets, bytes: flows[0]!.bytes }, want);
      return flows[0]!;
    };
    const f = only(agent.flows({ workload: 'Deployment/api', port: PORT, interface: a.hostIf }));
    assert.equal(f.key.srcIp, a.ipv4);
    assert.equal(f.key.dstIp, b.ipv4);
    assert.deepEqual(f.source?.workload, { kind: 'Deployment', name: 'client' });
    assert.deepEqual(f.destination?.workload, { kind: 'Deployment', name: 'api' });
    assert.equal(f.destination?.service, 'api');
    assert.equal(agent.flows({ workload: 'api', port: PORT }).length, 1, 'counted once, where it entered the node');
    assert.equal(agent.flows({ workload: 'StatefulSet/api', port: PORT }).length, 0);
    assert.equal(agent.flows({ service: 'shop/api', port: PORT }).length, 1);
    assert.equal(agent.flows({ label: 'app=client', port: PORT }).length, 1);
    assert.equal(agent.flows({ label: 'pod-template-hash=7d9f', port: PORT }).length, 0, 'labels not kept do not match');

    const q = async (query: string) => (await get(`/api/v1/flows?${query}`)).body['flows'] as (FlowView & { key: { srcIp: string; dstIp: string } })[];
    const flows = await q(`workload=Deployment/api&service=api&label=app=client&port=${PORT}&interface=${a.hostIf}`);
    assert.equal(flows.length, 1);
    assert.deepEqual({ packets: flows[0]!.packets, bytes: flows[0]!.bytes }, want);
    assert.equal(flows[0]!.key.srcIp, a.ipv4, 'the IPs stay beside the names');
    assert.deepEqual(flows[0]!.source, { namespace: 'default', pod: 'client-5c6d-aaaaa', labels: { app: 'client' }, workload: { kind: 'Deployment', name: 'client' }, node: 'node-1' });
    assert.deepEqual(flows[0]!.destination, { namespace: 'shop', pod: 'api-7d9f-bbbbb', labels: { app: 'api' }, workload: { kind: 'Deployment', name: 'api' }, service: 'api', node: 'node-1' });
    assert.equal((await q(`service=other&port=${PORT}`)).length, 0);

    // The CLI: the same filters as flags; json keeps the IPs beside the names.
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'observe', '--workload', 'deployment/api', '--service', 'api', '--label', 'app=client', '--port', String(PORT), '--interface', a.hostIf, '-o', 'json', '--server', api.url]);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 1);
    assert.deepEqual([lines[0]!['srcIp'], lines[0]!['srcNamespace'], lines[0]!['srcPod'], lines[0]!['dstIp'], lines[0]!['dstNamespace'], lines[0]!['dstPod'], lines[0]!['packets']], [a.ipv4, 'default', 'client-5c6d-aaaaa', b.ipv4, 'shop', 'api-7d9f-bbbbb', COUNT]);
    // Live top: the conversation by workload, its ends named namespace/pod:port.
    const { stdout: top } = await promisify(execFile)(process.execPath, [CLI, 'top', '--once', '--interval-ms', '100', '--sort', 'bytes', '--workload', 'Deployment/api', '--port', String(PORT), '--server', api.url]);
    assert.match(top, new RegExp(`\\ndefault/client-5c6d-aaaaa:${SRCPORT} +shop/api-7d9f-bbbbb:${PORT} +(?:UDP|udp) +[^\\n]* ${COUNT} `), top);
    for (const [query, param] of [
      ['workload=a/b/c', 'workload'],
      ['service=Not_A_Name', 'service'],
      ['label=app', 'label'],
    ]) {
      const r = await get(`/api/v1/flows?${query}`);
      assert.equal(r.status, 400, query);
      assert.equal((r.body['error'] as { parameter: string }).parameter, param);
    }
  });

  test('security events filtered by namespace, pod, workload, service and label (attacker or target), with the names beside the IPs', async () => {
    const CLIENT = 'default/client-5c6d-aaaaa';
    const API = 'shop/api-7d9f-bbbbb';
    const OUTSIDE = ['198.51.100.9', '198.51.100.10'];
    const events = async (...args: string[]): Promise<Record<string, unknown>[]> => {
      const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'events', '-o', 'json', '--last', '100', ...args, '--server', api.url]);
      return stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    };
    const who = (e: Record<string, unknown>): string => `${(e['attacker'] as { ip: string }).ip}>${(e['target'] as { ip: string }).ip}`;
    // A follower by workload, subscribed before the events happen.
    const listening = agent.listenerCount('security');
    const follower = spawn(process.execPath, [CLI, 'events', '--follow', '--last', '0', '-o', 'json', '--workload', 'Deployment/client', '--server', api.url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let followed = '';
    follower.stdout.on('data', (d: Buffer) => (followed += d.toString()));
    try {
      await waitFor('the follower to subscribe', () => agent.listenerCount('security') > listening, 5000);
      const macA = mac(net.mac(a));
      const macB = mac(net.mac(b));
      // client -> api (a NULL probe), outside -> api (SYN+FIN), outside -> client (NULL).
      net.rawSend(a, 1, [ethernet(macB, macA, ipv4(a.ipv4, b.ipv4, tcp(52311, 23, 0)))]);
      net.rawSend(a, 1, [ethernet(macB, macA, ipv4(OUTSIDE[0]!, b.ipv4, tcp(52312, 80, TCP.SYN | TCP.FIN)))]);
      net.rawSend(b, 1, [ethernet(macA, macB, ipv4(OUTSIDE[1]!, a.ipv4, tcp(52313, 22, 0)))]);
      await waitFor('three security events', () => agent.recentSecurityEvents().length >= 3, 5000);
      await sleep(100);
      const clientToApi = `${a.ipv4}>${b.ipv4}`;
      const outsideToApi = `${OUTSIDE[0]}>${b.ipv4}`;
      const outsideToClient = `${OUTSIDE[1]}>${a.ipv4}`;
      assert.deepEqual((await events()).map(who), [clientToApi, outsideToApi, outsideToClient]);

      // The agent's filter, then the API's and the CLI's: exactly the events with such an end.
      assert.deepEqual(agent.recentSecurityEvents({ workload: 'Deployment/api' }).map((e) => `${e.attacker.ip}>${e.target.ip}`), [clientToApi, outsideToApi]);
      for (const [args, want] of [
        [['--workload', 'Deployment/api'], [clientToApi, outsideToApi]],
        [['--workload', 'deployment/client'], [clientToApi, outsideToClient]],
        [['--workload', 'StatefulSet/api'], []],
        [['--namespace', 'shop'], [clientToApi, outsideToApi]],
        [['--namespace', 'default'], [clientToApi, outsideToClient]],
        [['--namespace', 'kube-system'], []],
        [['--pod', API], [clientToApi, outsideToApi]],
        [['--service', 'shop/api'], [clientToApi, outsideToApi]],
        [['--service', 'client'], []],
        [['--label', 'app=client'], [clientToApi, outsideToClient]],
        [['--workload', 'client', '--namespace', 'shop'], [clientToApi]],
        [['--workload', 'api', '--source', '198.51.100.0/24'], [outsideToApi]],
        [['--namespace', 'default', '--type', 'tcp-syn-fin'], []],
      ] as const) {
        assert.deepEqual((await events(...args)).map(who), want, args.join(' '));
      }
      const q = async (query: string): Promise<string[]> =>
        (((await get(`/api/v1/security-events?${query}`)).body['events']) as { attacker: { ip: string }; target: { ip: string } }[]).map((e) => `${e.attacker.ip}>${e.target.ip}`);
      assert.deepEqual(await q('workload=Deployment/api&namespace=default'), [clientToApi]);
      assert.deepEqual(await q('service=api&label=app=api'), [clientToApi, outsideToApi]);

      // The json line: the IPs, with the names beside them (null for an address that is no pod).
      const [line] = await events('--workload', 'client', '--type', 'tcp-null-scan', '--namespace', 'shop');
      assert.deepEqual(
        [line!['attacker'], line!['attackerNamespace'], line!['attackerPod'], line!['attackerWorkload'], line!['attackerService']],
        [{ ip: a.ipv4, port: 52311 }, 'default', 'client-5c6d-aaaaa', 'Deployment/client', null],
      );
      assert.deepEqual(
        [line!['target'], line!['targetNamespace'], line!['targetPod'], line!['targetWorkload'], line!['targetService']],
        [{ ip: b.ipv4, port: 23 }, 'shop', 'api-7d9f-bbbbb', 'Deployment/api', 'api'],
      );
      const [fromOutside] = await events('--source', OUTSIDE[0]!);
      assert.deepEqual([fromOutside!['attackerNamespace'], fromOutside!['attackerWorkload'], fromOutside!['targetWorkload']], [null, null, 'Deployment/api']);
      // The table names the pods (and the service), the address where there is no pod.
      const { stdout: table } = await promisify(execFile)(process.execPath, [CLI, 'events', '--namespace', 'shop', '--server', api.url]);
      const rows = table.trim().split('\n');
      assert.equal(rows.length, 3, table);
      assert.match(rows[1]!, new RegExp(` ${CLIENT}:52311 +${API}:23 \\(svc api\\) +${a.hostIf} `));
      assert.match(rows[2]!, new RegExp(` ${OUTSIDE[0]!.replace(/\./g, '\\.')}:52312 +${API}:80 \\(svc api\\) `));

      // The follower got the client's two events as they came, not the other one.
      await waitFor('the followed events', () => followed.split('\n').filter(Boolean).length >= 2, 3000);
      await sleep(300);
      assert.deepEqual(followed.split('\n').filter(Boolean).map((l) => who(JSON.parse(l) as Record<string, unknown>)), [clientToApi, outsideToClient]);

      // Bad values name the flag's parameter.
      const bad = await promisify(execFile)(process.execPath, [CLI, 'events', '--workload', 'a/b/c', '--server', api.url]).catch((e: { code: number; stderr: string }) => e);
      assert.equal((bad as { code: number }).code, 2);
      assert.match((bad as { stderr: string }).stderr, /the agent refused: workload: not a workload name or kind\/name/);
    } finally {
      follower.kill('SIGTERM');
    }
  });

  test("a deleted pod's IP stops resolving, and it leaves knownPods", async () => {
    const metrics = async () => (await fetch(`${api.url}/metrics`)).text();
    assert.match(await metrics(), /kubenetprobe_pod_bytes_total\{namespace="shop",pod="api-7d9f-bbbbb",direction="received"\} \d+/);
    assert.ok(kube.delete('pods', 'api-7d9f-bbbbb', 'shop'));
    await waitFor("b's identity to go", () => agent.identity(b.ipv4) === undefined, 5000);
    await sleep(250); // a cycle: the metrics read knownPods each cycle
    const text = await metrics();
    assert.ok(!text.includes('pod="api-7d9f-bbbbb"'), 'its series are gone at the next scrape');
    assert.match(text, /kubenetprobe_pod_bytes_total\{namespace="default",pod="client-5c6d-aaaaa",direction="sent"\}/, 'the others stay');
    assert.deepEqual([...agent.knownPods()].map(([ip]) => ip), [a.ipv4]);
    assert.equal(agent.flows({ workload: 'Deployment/api', port: PORT }).length, 0);
    assert.equal(agent.identity(a.ipv4)?.pod, 'client-5c6d-aaaaa');
  });
});

test('a cluster that cannot be reached is reported, and the agent runs without its identity', async () => {
  const net = TestNet.create(1, { ipv6: false });
  let agent: Agent | undefined;
  let cleanup = async (): Promise<void> => {};
  try {
    agent = await Agent.start(
      loadConfig({ flags: { interface: [`kv${net.id}*`], intervalMs: 100, kubernetes: 'kubeconfig', kubeconfig: '/nonexistent/kubeconfig', kubernetesTimeoutMs: 500 } }),
    );
    assert.equal(agent.startNotices().length, 1);
    assert.match(agent.startNotices()[0]!, /^kubernetes: can't be used, running without cluster identity: /);
    assert.equal(agent.identity(net.pod('a').ipv4), undefined);
    await waitFor('ready', () => agent!.ready, 3000);
    await agent.close();
    // An API server that does not answer: the start goes on after the timeout.
    const gone = await FakeKubeApi.start();
    cleanup = () => gone.close();
    const kubeconfig = gone.writeKubeconfig();
    await gone.stopListening();
    const t0 = Date.now();
    agent = await Agent.start(loadConfig({ flags: { interface: [`kv${net.id}*`], intervalMs: 100, kubernetes: 'kubeconfig', kubeconfig, kubernetesTimeoutMs: 500 } }));
    assert.ok(Date.now() - t0 < 5000);
    assert.ok(agent.startNotices().some((n) => /^kubernetes: Kubernetes API: could not list within 500 ms: .*running without cluster identity until it answers$/.test(n)), agent.startNotices().join('\n'));
    assert.equal(agent.identity(net.pod('a').ipv4), undefined);
    await waitFor('ready', () => agent!.ready, 3000);
  } finally {
    await agent?.close();
    await net.close();
    await cleanup();
  }
});
