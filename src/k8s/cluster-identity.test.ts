/**
 * ClusterIdentity against test/helpers/fake-kube-api.ts, a local stand-in
 * for the Kubernetes API server (list + watch, resourceVersions, bookmarks,
 * 410 Gone). No real cluster is involved.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeKubeApi, endpointSlice, node, owned, pod, service } from '../../test/helpers/fake-kube-api.js';
import { ClusterIdentity, type PodEvent } from './cluster-identity.js';
import { KubeConfigError, loadKubeConfig } from './kube-client.js';

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Setup {
  api: FakeKubeApi;
  id: ClusterIdentity;
  events: { type: 'add' | 'del'; e: PodEvent }[];
}

async function setup(t: TestContext, seed: (api: FakeKubeApi) => void = () => {}, labels: string[] = ['app', 'team.example.com/*']): Promise<Setup> {
  const api = await FakeKubeApi.start();
  seed(api);
  const id = new ClusterIdentity({ kubeconfig: api.writeKubeconfig(), nodeName: 'node-1', labels, backoffMs: 20 });
  const events: Setup['events'] = [];
  id.on('podAdded', (e) => events.push({ type: 'add', e }));
  id.on('podDeleted', (e) => events.push({ type: 'del', e }));
  t.after(async () => {
    await id.close();
    await api.close();
  });
  await id.start(5000);
  return { api, id, events };
}

function podName(id: ClusterIdentity, ip: string): string {
  const r = id.identify(ip);
  return r.kind === 'pod' ? `${r.namespace}/${r.pod}` : r.kind;
}

test('initial list: pods, workloads through owner chains, services, nodes, world, labels', async (t) => {
  const { id, api } = await setup(t, (api) => {
    api.apply('nodes', node({ name: 'node-1', ip: '192.168.0.1' }));
    api.apply('nodes', node({ name: 'node-2', ip: '192.168.0.2' }));
    api.apply('replicasets', owned({ name: 'web-7d9f', owner: { kind: 'Deployment', name: 'web' } }));
    api.apply('jobs', owned({ name: 'backup-2911', owner: { kind: 'CronJob', name: 'backup' } }));
    api.apply('pods', pod({ name: 'web-7d9f-abcde', ip: '10.244.1.10', owner: { kind: 'ReplicaSet', name: 'web-7d9f' }, labels: { app: 'web', 'pod-template-hash': '7d9f', 'team.example.com/owner': 'payments' } }));
    api.apply('pods', pod({ name: 'backup-2911-xyz', ip: '10.244.1.11', owner: { kind: 'Job', name: 'backup-2911' } }));
    api.apply('pods', pod({ name: 'db-0', namespace: 'data', ip: '10.244.2.5', node: 'node-2', owner: { kind: 'StatefulSet', name: 'db' } }));
    api.apply('pods', pod({ name: 'fluent-q8x', namespace: 'kube-system', ip: '10.244.1.12', owner: { kind: 'DaemonSet', name: 'fluent' } }));
    api.apply('pods', pod({ name: 'debug', ip: '10.244.1.13' }));
    api.apply('pods', pod({ name: 'orphan-rs-pod', ip: '10.244.1.14', owner: { kind: 'ReplicaSet', name: 'unknown-rs' } }));
    api.apply('pods', pod({ name: 'kube-proxy-1', namespace: 'kube-system', ip: '192.168.0.1', hostNetwork: true, owner: { kind: 'DaemonSet', name: 'kube-proxy' } }));
    api.apply('pods', pod({ name: 'hostnet-lost', namespace: 'kube-system', ip: '192.168.0.99', hostNetwork: true, node: 'node-9' }));
    api.apply('services', service({ name: 'web', clusterIP: ['10.96.0.20', 'fd00:96::20'] }));
    api.apply('services', service({ name: 'headless', clusterIP: 'None' }));
    api.apply('endpointslices', endpointSlice({ name: 'web-abc', service: 'web', addresses: ['10.244.1.10'] }));
    api.apply('endpointslices', endpointSlice({ name: 'ext-1', service: 'external-db', addresses: ['172.16.5.5'] }));
  });

  const web = id.identify('10.244.1.10');
  assert.deepEqual(web, {
    kind: 'pod',
    namespace: 'default',
    pod: 'web-7d9f-abcde',
    workload: { kind: 'Deployment', name: 'web' },
    labels: { app: 'web', 'team.example.com/owner': 'payments' }, // pod-template-hash not in the allowlist
    node: 'node-1',
    hostNetwork: false,
    service: 'web',
  });
  const wl = (ip: string): unknown => {
    const r = id.identify(ip);
    return r.kind === 'pod' ? r.workload : r;
  };
  assert.deepEqual(wl('10.244.1.11'), { kind: 'CronJob', name: 'backup' });
  assert.deepEqual(wl('10.244.2.5'), { kind: 'StatefulSet', name: 'db' });
  assert.deepEqual(wl('10.244.1.12'), { kind: 'DaemonSet', name: 'fluent' });
  assert.deepEqual(wl('10.244.1.13'), { kind: 'Pod', name: 'debug' });
  assert.deepEqual(wl('10.244.1.14'), { kind: 'ReplicaSet', name: 'unknown-rs' }, 'an unknown ReplicaSet is reported as itself');
  assert.deepEqual(id.identify('::ffff:10.244.1.13').kind, 'pod', 'IPv4-mapped IPv6 resolves as IPv4');

  assert.deepEqual(id.identify('10.96.0.20'), { kind: 'service', namespace: 'default', service: 'web' });
  assert.deepEqual(id.identify('FD00:96:0::20'), { kind: 'service', namespace: 'default', service: 'web' }, 'IPv6 in any spelling');
  assert.deepEqual(id.identify('172.16.5.5'), { kind: 'service', namespace: 'default', service: 'external-db' }, 'by endpoint slice membership');
  assert.deepEqual(id.identify('None'), { kind: 'world' });

  assert.deepEqual(id.identify('192.168.0.1'), { kind: 'node', node: 'node-1', local: true });
  assert.deepEqual(id.identify('192.168.0.2'), { kind: 'node', node: 'node-2', local: false });
  assert.deepEqual(id.hostNetworkPods('192.168.0.1'), [{ namespace: 'kube-system', pod: 'kube-proxy-1' }]);
  const lost = id.identify('192.168.0.99');
  assert.equal(lost.kind === 'pod' && lost.hostNetwork && lost.node, 'node-9', 'a host-network pod whose node is unknown says so');
  assert.deepEqual(id.identify('8.8.8.8'), { kind: 'world' });

  const pods = new Map(id.pods());
  assert.equal(pods.size, 6, 'host-network pods are not in pods()');
  assert.deepEqual(pods.get('10.244.2.5'), { namespace: 'data', pod: 'db-0' });
  assert.equal(id.pods({ node: 'node-2' }).length, 1);
  assert.deepEqual(api.requests.filter((r) => r.verb === 'list').map((r) => r.query.get('limit')).slice(0, 1), ['500'], 'lists are paged');
});

test('pods created, updated (IP assigned, labels, finished) and deleted', async (t) => {
  const { api, id, events } = await setup(t);
  api.apply('pods', pod({ name: 'a', labels: { app: 'x' } })); // pending: no IP yet
  await until('pod a seen', () => id.stats().pods === 1);
  assert.equal(events.length, 0, 'no podAdded before the pod has an IP');
  api.apply('pods', pod({ name: 'a', ip: '10.0.0.1', labels: { app: 'x' } }));
  await until('a has its IP', () => podName(id, '10.0.0.1') === 'default/a');
  assert.deepEqual(events.map((e) => [e.type, e.e.pod, e.e.ips]), [['add', 'a', ['10.0.0.1']]]);
  api.apply('pods', pod({ name: 'a', ip: '10.0.0.1', labels: { app: 'y' } }));
  await until('label update', () => {
    const r = id.identify('10.0.0.1');
    return r.kind === 'pod' && r.labels.app === 'y';
  });
  assert.equal(events.length, 1, 'a label change is not an add');
  api.apply('pods', pod({ name: 'a', ip: '10.0.0.1', phase: 'Succeeded' }));
  await until('finished pod releases its IP', () => id.identify('10.0.0.1').kind === 'world');
  assert.deepEqual(events.map((e) => e.type), ['add', 'del']);
  api.apply('pods', pod({ name: 'b', ip: '10.0.0.2' }));
  await until('b', () => podName(id, '10.0.0.2') === 'default/b');
  api.delete('pods', 'b', 'default');
  await until('b deleted', () => id.identify('10.0.0.2').kind === 'world');
  assert.deepEqual(events.map((e) => `${e.type} ${e.e.pod}`), ['add a', 'del a', 'add b', 'del b']);
  assert.deepEqual(id.pods(), []);
});

test('IP reuse: A deleted then B gets the IP; and B added before A is deleted', async (t) => {
  const { api, id } = await setup(t);
  api.apply('pods', pod({ name: 'a', ip: '10.0.0.5' }));
  await until('a', () => podName(id, '10.0.0.5') === 'default/a');
  api.delete('pods', 'a', 'default');
  api.apply('pods', pod({ name: 'b', ip: '10.0.0.5' }));
  await until('b owns the IP', () => podName(id, '10.0.0.5') === 'default/b');

  // Reverse order: C gets B's IP before B's delete event arrives.
  api.apply('pods', pod({ name: 'c', ip: '10.0.0.5' }));
  await until('c takes over', () => podName(id, '10.0.0.5') === 'default/c');
  api.apply('pods', pod({ name: 'b', ip: '10.0.0.5', labels: { app: 'still-terminating' } }));
  api.apply('pods', pod({ name: 'z', ip: '10.0.0.6' })); // a marker: events are in order
  await until('marker', () => podName(id, '10.0.0.6') === 'default/z');
  assert.equal(podName(id, '10.0.0.5'), 'default/c', "an update of B that keeps the IP doesn't take it back");
  api.delete('pods', 'b', 'default');
  api.delete('pods', 'z', 'default');
  await until('marker gone', () => id.identify('10.0.0.6').kind === 'world');
  assert.equal(podName(id, '10.0.0.5'), 'default/c', "B's late delete leaves C");
  api.delete('pods', 'c', 'default');
  await until('c gone', () => id.identify('10.0.0.5').kind === 'world');
  assert.deepEqual(id.pods(), []);
});

test('410 Gone mid-stream (ERROR event): relist replaces the cache, including a delete during the gap', async (t) => {
  const { api, id, events } = await setup(t, (api) => {
    api.apply('pods', pod({ name: 'keep', ip: '10.0.1.1' }));
    api.apply('pods', pod({ name: 'gone', ip: '10.0.1.2' }));
    api.apply('pods', pod({ name: 'sts-0', ip: '10.0.1.3', uid: 'sts-old', owner: { kind: 'StatefulSet', name: 'sts' } }));
    api.apply('services', service({ name: 'svc', clusterIP: '10.96.1.1' }));
  });
  const before = id.listCounts().pods!;
  await until('watching', () => api.watcherCount('pods') === 1 && api.watcherCount('services') === 1);
  // Changes the watch never delivers (history compacted), then the watch expires.
  api.delete('pods', 'gone', 'default', { silent: true });
  api.delete('pods', 'sts-0', 'default', { silent: true });
  api.apply('pods', pod({ name: 'sts-0', ip: '10.0.1.4', uid: 'sts-new', owner: { kind: 'StatefulSet', name: 'sts' } }), { silent: true });
  api.apply('pods', pod({ name: 'new', ip: '10.0.1.5' }), { silent: true });
  api.delete('services', 'svc', 'default', { silent: true });
  api.expireWatches();
  await until('relisted', () => id.listCounts().pods === before + 1 && id.identify('10.0.1.5').kind === 'pod' && id.identify('10.96.1.1').kind === 'world');
  assert.equal(podName(id, '10.0.1.1'), 'default/keep');
  assert.equal(id.identify('10.0.1.2').kind, 'world', 'deleted during the gap');
  assert.equal(id.identify('10.0.1.3').kind, 'world', 'the old sts-0 is gone');
  assert.equal(podName(id, '10.0.1.4'), 'default/sts-0');
  const tail = events.filter((e) => e.type === 'del' || e.e.pod !== 'keep').map((e) => `${e.type} ${e.e.pod} ${e.e.uid === 'sts-new' ? 'new' : ''}`.trim());
  assert.ok(tail.includes('del gone'));
  assert.ok(tail.includes('del sts-0'));
  assert.ok(tail.includes('add sts-0 new'));
  assert.ok(tail.includes('add new'));
  // And it follows the cluster again afterwards.
  api.apply('pods', pod({ name: 'after', ip: '10.0.1.6' }));
  await until('watch resumed after relist', () => podName(id, '10.0.1.6') === 'default/after');
});

for (const goneAs of ['status', 'event'] as const) {
  test(`410 Gone for a resumed watch (${goneAs === 'status' ? 'a 410 response' : 'an ERROR event first thing'}): relist`, async (t) => {
    const { api, id, events } = await setup(t, (api) => api.apply('pods', pod({ name: 'gone', ip: '10.0.2.1' })));
    api.goneAs = goneAs;
    await until('watching', () => api.watcherCount('pods') === 1);
    const before = id.listCounts().pods!;
    api.delete('pods', 'gone', 'default', { silent: true });
    api.endWatches('pods'); // clean end: the informer resumes from its resourceVersion, now too old
    await until('relisted', () => id.listCounts().pods === before + 1 && id.identify('10.0.2.1').kind === 'world');
    assert.deepEqual(events.map((e) => `${e.type} ${e.e.pod}`), ['add gone', 'del gone']);
    if (goneAs === 'status') {
      assert.ok(api.requests.some((r) => r.verb === 'watch' && r.path === '/api/v1/pods' && r.status === 410), 'the server answered 410');
    }
    api.apply('pods', pod({ name: 'later', ip: '10.0.2.2' }));
    await until('watching again', () => podName(id, '10.0.2.2') === 'default/later');
  });
}

test('bookmarks are asked for and accepted; a watch that ends or breaks is resumed without a relist', async (t) => {
  const { api, id } = await setup(t);
  await until('watching', () => api.watcherCount('pods') === 1);
  const watches = api.requests.filter((r) => r.verb === 'watch');
  assert.ok(watches.length >= 6 && watches.every((r) => r.query.get('allowWatchBookmarks') === 'true'));
  api.apply('services', service({ name: 'unrelated', clusterIP: '10.96.9.9' })); // moves the shared resourceVersion
  assert.equal(api.bookmark('pods'), 1);
  const rv = api.resourceVersion;
  await new Promise((r) => setTimeout(r, 50));
  const lists = id.listCounts().pods;
  api.endWatches('pods');
  await until('resumed', () => api.watcherCount('pods') === 1);
  const last = api.requests.filter((r) => r.verb === 'watch' && r.path === '/api/v1/pods').at(-1)!;
  assert.equal(last.query.get('resourceVersion'), rv, 'resumed from the bookmark');
  api.breakWatches('pods');
  api.apply('pods', pod({ name: 'during-break', ip: '10.0.3.1' }));
  await until('resumed after a broken connection', () => podName(id, '10.0.3.1') === 'default/during-break');
  assert.equal(id.listCounts().pods, lists, 'no relist needed: events replayed from history');
});

test('an unreachable API server: start() rejects with the reason, keeps retrying, close() twice is safe', async (t) => {
  const api = await FakeKubeApi.start();
  t.after(() => api.close());
  const kubeconfig = api.writeKubeconfig();
  await api.stopListening(); // nothing listens on that port any more
  const id = new ClusterIdentity({ kubeconfig, backoffMs: 10 });
  const warnings: string[] = [];
  id.on('warning', (err, path) => warnings.push(`${path}: ${err.message}`));
  await assert.rejects(id.start(300), /could not list within 300 ms: \/api\/v1\/pods: .*ECONNREFUSED/);
  assert.ok(warnings.length >= 6, 'each informer retried');
  await id.close();
  await id.close();
  const n = warnings.length;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(warnings.length, n, 'no retries after close');
});

test('no configuration: the error says how to give one', (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'no-kube-'));
  t.after(() => rmSync(empty, { recursive: true, force: true }));
  assert.throws(() => loadKubeConfig({}, { HOME: empty, KUBECONFIG: join(empty, 'nope') }), (err: unknown) => {
    assert.ok(err instanceof KubeConfigError);
    assert.match(err.message, /no Kubernetes configuration found; give a kubeconfig file .*KUBECONFIG.*in-cluster/);
    return true;
  });
  assert.throws(() => loadKubeConfig({ kubeconfig: join(empty, 'missing') }), /kubeconfig .*missing does not exist/);
  assert.throws(() => loadKubeConfig({ inCluster: true }, { KUBERNETES_SERVICE_HOST: '' }), /in-cluster config needs KUBERNETES_SERVICE_HOST/);
});

test('close() during the first list opens no watch afterwards', async () => {
  const api = await FakeKubeApi.start();
  api.listDelayMs = 100;
  const id = new ClusterIdentity({ kubeconfig: api.writeKubeconfig() });
  const started = id.start(1000).catch((err: unknown) => err);
  await new Promise((r) => setTimeout(r, 20));
  await id.close();
  await new Promise((r) => setTimeout(r, 250));
  const open = (['pods', 'services', 'nodes', 'endpointslices', 'replicasets', 'jobs'] as const).map((r) => api.watcherCount(r));
  assert.deepEqual(open, [0, 0, 0, 0, 0, 0]);
  assert.equal(api.requests.filter((r) => r.verb === 'watch').length, 0);
  await api.close();
  void started;
});
