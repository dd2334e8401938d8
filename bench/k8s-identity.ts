/**
 * The cluster-identity cache (src/k8s): heap it holds for a 10 000-pod
 * cluster, time to the first full sync, and identify() cost.
 *
 * The cluster is served by test/helpers/fake-kube-api.ts, a local stand-in
 * for the Kubernetes API server (in this process; its objects are in the
 * heap before each measurement, so they are part of the baseline and not
 * of the figures). 10 000 pods (realistic noise: managed fields, container
 * specs and statuses, 6 labels of which 2 are allowed), 300 services with
 * one endpoint slice each, 300 ReplicaSets under 300 Deployments, 20 Jobs,
 * 50 nodes.
 *
 * Each round, order rotated:
 *   ours      ClusterIdentity started against the server, synced, GC'd:
 *             heap used minus heap before it started.
 *   baseline  the same lists fetched and kept as parsed JSON objects (what
 *             an informer that caches whole objects holds, as the stock
 *             makeInformer does), GC'd, heap minus heap before.
 * Also reported: the raw JSON size of the listed objects.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { FakeKubeApi, endpointSlice, node, owned, pod, service } from '../test/helpers/fake-kube-api.js';
import { ClusterIdentity, PATHS } from '../src/k8s/cluster-identity.js';
import { getJson, loadKubeConfig } from '../src/k8s/kube-client.js';
import { envInt, fmt, fmtSummary, log, nowNs, pairedRatios, rotate, summarize, writeResult, type BenchResult } from './common.js';

const PODS = envInt('BENCH_K8S_PODS', 10_000);
const SERVICES = envInt('BENCH_K8S_SERVICES', 300);
const NODES = envInt('BENCH_K8S_NODES', 50);
const ROUNDS = envInt('BENCH_K8S_ROUNDS', 5);
const LOOKUPS = 200_000;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Heap used after the previous case's garbage (sockets closing, aborted requests) has settled. */
async function heapUsed(): Promise<number> {
  let prev = -1;
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 20));
    gc();
    const now = process.memoryUsage().heapUsed;
    if (prev >= 0 && Math.abs(now - prev) < 64 * 1024) return now;
    prev = now;
  }
  return prev;
}

function ip4(base: number, i: number): string {
  const n = base + i;
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}
const POD_BASE = (10 << 24) | (244 << 16);
const SVC_BASE = (10 << 24) | (96 << 16);
const NODE_BASE = (192 << 24) | (168 << 16);

function seed(api: FakeKubeApi): void {
  for (let n = 0; n < NODES; n++) api.apply('nodes', node({ name: `node-${n}`, ip: ip4(NODE_BASE, n + 1) }));
  const perSvc = Math.ceil(PODS / SERVICES);
  for (let s = 0; s < SERVICES; s++) {
    const ns = `ns-${s % 20}`;
    api.apply('services', service({ namespace: ns, name: `svc-${s}`, clusterIP: ip4(SVC_BASE, s + 1), ports: [80, 443] }));
    api.apply('replicasets', owned({ namespace: ns, name: `app-${s}-5f6d7`, owner: { kind: 'Deployment', name: `app-${s}` } }));
    const addrs: string[] = [];
    for (let k = 0; k < perSvc; k++) {
      const i = s * perSvc + k;
      if (i >= PODS) break;
      addrs.push(ip4(POD_BASE, i + 1));
    }
    api.apply('endpointslices', endpointSlice({ namespace: ns, name: `svc-${s}-x1`, service: `svc-${s}`, addresses: addrs }));
  }
  for (let j = 0; j < 20; j++) api.apply('jobs', owned({ namespace: 'batch', name: `job-${j}`, owner: { kind: 'CronJob', name: `cron-${j % 5}` } }));
  for (let i = 0; i < PODS; i++) {
    const s = Math.floor(i / perSvc);
    api.apply(
      'pods',
      pod({
        namespace: `ns-${s % 20}`,
        name: `app-${s}-5f6d7-${i.toString(36).padStart(5, '0')}`,
        ip: ip4(POD_BASE, i + 1),
        node: `node-${i % NODES}`,
        owner: { kind: 'ReplicaSet', name: `app-${s}-5f6d7` },
        labels: { app: `app-${s}`, 'app.kubernetes.io/version': '1.2.3', 'pod-template-hash': '5f6d7', tier: 'backend', 'team.example.com/owner': `team-${s % 7}`, 'security.example.com/scan': 'passed' },
      }),
    );
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const api = await FakeKubeApi.start();
  seed(api);
  const kubeconfig = api.writeKubeconfig();
  const kc = loadKubeConfig({ kubeconfig });
  let rawBytes = 0;
  for (const path of Object.values(PATHS)) rawBytes += Buffer.byteLength(JSON.stringify(await getJson(kc, path)));
  log(`k8s-identity: ${PODS} pods, ${SERVICES} services, ${NODES} nodes; raw JSON ${fmt(rawBytes / 2 ** 20)} MiB`);

  const ours: number[] = [];
  const base: number[] = [];
  const syncMs: number[] = [];
  const lookupNs: number[] = [];
  const checks: BenchResult['checks'] = [];
  // Each case runs in its own async function, so that nothing it held survives in
  // a suspended frame's registers into the next measurement.
  const measureOurs = async (round: number): Promise<void> => {
    const before = await heapUsed();
    const t0 = nowNs();
    const id = new ClusterIdentity({ kubeConfig: kc, nodeName: 'node-0', labels: ['app', 'team.example.com/*'] });
    await id.start(60_000);
    syncMs.push((nowNs() - t0) / 1e6);
    ours.push((await heapUsed()) - before);
    const st = id.stats();
    if (round === 0) {
      checks.push({ what: 'every pod indexed by IP', ok: st.pods === PODS && st.podIps === PODS, detail: JSON.stringify(st) });
      const r = id.identify(ip4(POD_BASE, 1));
      checks.push({ what: 'a pod resolves to its Deployment and service', ok: r.kind === 'pod' && r.workload.kind === 'Deployment' && r.service === 'svc-0', detail: JSON.stringify(r) });
    }
    const ips = Array.from({ length: 1000 }, (_, k) => ip4(POD_BASE, ((k * 7919) % (PODS + 2000)) + 1));
    let sink = 0;
    const l0 = nowNs();
    for (let k = 0; k < LOOKUPS; k++) if (id.identify(ips[k % 1000]!).kind === 'pod') sink++;
    lookupNs.push((nowNs() - l0) / LOOKUPS);
    if (sink === 0) throw new Error('no lookup hit');
    await id.close();
  };
  const measureBaseline = async (): Promise<void> => {
    const before = await heapUsed();
    const kept: unknown[] = [];
    for (const path of Object.values(PATHS)) kept.push(await getJson(kc, path));
    base.push((await heapUsed()) - before);
    if (kept.length !== 6) throw new Error('unreachable');
  };
  for (let round = 0; round < ROUNDS; round++) {
    for (const which of rotate(['ours', 'baseline'] as const, round)) {
      if (which === 'ours') await measureOurs(round);
      else await measureBaseline();
    }
  }
  await api.close();

  const perPod = summarize(ours.map((b) => b / PODS));
  const limit = 16 * 2 ** 20;
  const result: BenchResult = {
    bench: 'k8s-identity',
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    config: { pods: PODS, services: SERVICES, endpointSlices: SERVICES, replicaSets: SERVICES, jobs: 20, nodes: NODES, rounds: ROUNDS, labelsKept: 2, labelsPerPod: 6 },
    rows: [
      {
        case: `identity cache, ${PODS} pods + ${SERVICES} services/slices/ReplicaSets + ${NODES} nodes`,
        metric: 'heap held after sync (GC’d), above heap before start',
        unit: 'MiB',
        value: summarize(ours.map((b) => b / 2 ** 20)),
        baseline: { name: 'whole parsed objects', metric: 'heap held by the same lists kept as parsed JSON', value: summarize(base.map((b) => b / 2 ** 20)) },
        ratio: summarize(pairedRatios(ours, base)),
        ratioMeaning: 'memory, lower is better',
        goal: { text: `under 16 MiB for ${PODS} pods (docs/kubernetes.md)`, pass: summarize(ours).max < limit },
        note: `raw JSON of the listed objects: ${fmt(rawBytes / 2 ** 20)} MiB`,
      },
      { case: 'identity cache per pod', metric: 'heap held / pods', unit: 'B', value: perPod },
      { case: 'first sync (6 paged lists + watches)', metric: 'start() to synced', unit: 'ms', value: summarize(syncMs) },
      { case: 'identify(ip), mixed hits and misses', metric: 'time per lookup', unit: 'ns', value: summarize(lookupNs) },
    ],
    checks,
    notes: ['The API server is test/helpers/fake-kube-api.ts, a local stand-in in this process; its objects are in the baseline heap.'],
    tables: [],
  };
  const path = writeResult(result);
  for (const r of result.rows) log(`${r.case}: ${fmtSummary(r.value)} ${r.unit}${r.baseline ? ` (baseline ${fmtSummary(r.baseline.value)}, ratio ${fmtSummary(r.ratio!, 3)})` : ''}`);
  for (const c of checks) log(`${c.ok ? 'ok' : 'FAIL'}: ${c.what}`);
  log(`wrote ${path}`);
  if (!checks.every((c) => c.ok)) process.exitCode = 1;
}

await main();
