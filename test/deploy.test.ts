// The deployment files (deploy/), checked offline: no cluster, no container engine, no network.
//
// - Every object of deploy/kubernetes/*.yaml and of the Helm chart's output validates against the
//   Kubernetes OpenAPI schemas (kubernetes-models: types, formats such as quantities, required
//   fields, enums; @kubernetes-models/prometheus-operator for the ServiceMonitor), and has no field
//   the API does not know (the model field maps of @kubernetes/client-node: kubectl's
//   --validate=strict would refuse such a field; the schemas alone let it pass).
// - The policy the issue asks for: read-only RBAC on exactly the listed resources, no privileged,
//   exactly the three capabilities (and the same ones as file capabilities in the image),
//   probes on /healthz and /readyz, tolerations for every node, resources from the benchmarks,
//   settings the agent accepts.
// - The chart is rendered by tools/helm-render (Go text/template + Sprig, as Helm does; no helm
//   binary can be installed here) and must equal the plain manifests but for Helm's labels and
//   the Namespace; those tests are skipped, saying why, where Go or Sprig is missing.
// - The Dockerfile passes dockerfile-utils' linter and the image's own rules.
// - deploy/metrics-proxy.mjs forwards only GET /metrics, /healthz, /readyz.
// Each check is also run on a broken copy, so it can fail.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import yaml from 'js-yaml';
import * as k8s from '@kubernetes/client-node';
import { DETECTOR_ENV, ENV, loadConfig } from '../src/agent/config.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PLAIN_DIR = join(ROOT, 'deploy/kubernetes');
const CHART = join(ROOT, 'deploy/helm/kubenetprobe');
const DOCKERFILE = join(ROOT, 'deploy/Dockerfile');

type Obj = Record<string, unknown>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

// ---------------------------------------------------------------- loading and schema validation

function loadDocs(text: string): Obj[] {
  return yaml.loadAll(text).filter((d): d is Obj => d !== null && typeof d === 'object');
}

function plainObjects(): Obj[] {
  const files = readdirSync(PLAIN_DIR).filter((f) => /\.ya?ml$/.test(f)).sort();
  return files.flatMap((f) => loadDocs(readFileSync(join(PLAIN_DIR, f), 'utf8')));
}

type ModelCtor = new (data: unknown) => { validate(): void };

/** The validators are devDependencies: kubernetes-models, @kubernetes-models/prometheus-operator, dockerfile-utils. */
const DEV_DEPS = 'npm install -D kubernetes-models@5.1.0 @kubernetes-models/prometheus-operator@6.0.0 dockerfile-utils@0.16.3';

async function importDev<T>(spec: string): Promise<T> {
  try {
    return (await import(spec)) as T;
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && String((e as Error).message).includes(spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/')))
      throw new Error(`${spec} is not installed (${DEV_DEPS})`);
    throw e;
  }
}

type Diagnostic = { message: string; range: { start: { line: number } } };
const lintDockerfile = async (text: string): Promise<Diagnostic[]> => (await importDev<{ validate(t: string): Diagnostic[] }>('dockerfile-utils')).validate(text);

async function modelFor(apiVersion: string, kind: string): Promise<ModelCtor> {
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  const spec =
    group === 'monitoring.coreos.com'
      ? `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`
      : `kubernetes-models/${group === '' ? '' : `${group}/`}${version}/${kind}`;
  let mod: Record<string, unknown>;
  try {
    mod = await importDev<Record<string, unknown>>(spec);
  } catch (e) {
    if (/is not installed/.test((e as Error).message)) throw e;
    throw new Error(`no schema for ${apiVersion} ${kind} (${spec})`);
  }
  const ctor = mod[kind];
  if (typeof ctor !== 'function') throw new Error(`no model ${kind} in ${spec}`);
  return ctor as ModelCtor;
}

/** Fields the API does not know, found through client-node's model field maps (built-in kinds only). */
function unknownFields(value: unknown, type: string, path: string, out: string[]): void {
  if (value === null || value === undefined) return;
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, arr[1]!, `${path}/${i}`, out));
    return;
  }
  const mapOf = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (mapOf) {
    if (typeof value === 'object') for (const [k, v] of Object.entries(value)) unknownFields(v, mapOf[1]!, `${path}/${k}`, out);
    return;
  }
  const model = (k8s as unknown as Record<string, unknown>)[type] as { getAttributeTypeMap?: () => { baseName: string; type: string }[] } | undefined;
  if (!model?.getAttributeTypeMap || typeof value !== 'object' || Array.isArray(value)) return; // primitives, IntOrString, any
  const attrs = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    const t = attrs.get(k);
    if (t === undefined) out.push(`${path}/${k}: unknown field (not in ${type})`);
    else unknownFields(v, t, `${path}/${k}`, out);
  }
}

function clientNodeType(apiVersion: string, kind: string): string | undefined {
  const version = apiVersion.includes('/') ? apiVersion.slice(apiVersion.indexOf('/') + 1) : apiVersion;
  const name = `${version[0]!.toUpperCase()}${version.slice(1)}${kind}`;
  return typeof (k8s as unknown as Record<string, unknown>)[name] === 'function' ? name : undefined;
}

/** Schema problems of one object; empty when it is valid. */
async function schemaProblems(o: Obj): Promise<string[]> {
  const { apiVersion, kind } = o;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return ['apiVersion and kind must be strings'];
  const meta = o.metadata as Obj | undefined;
  const where = `${kind}/${String(meta?.name)}`;
  const problems: string[] = [];
  try {
    new (await modelFor(apiVersion, kind))(o).validate();
  } catch (e) {
    problems.push(`${where}: ${(e as Error).message}`);
  }
  const t = clientNodeType(apiVersion, kind);
  if (t) {
    const unknown: string[] = [];
    unknownFields(o, t, '', unknown);
    problems.push(...unknown.map((u) => `${where}: ${u}`));
  } else if (!apiVersion.endsWith('monitoring.coreos.com/v1')) {
    problems.push(`${where}: no field map for ${apiVersion} ${kind}`);
  }
  if (typeof meta?.name !== 'string' || meta.name === '') problems.push(`${kind}: metadata.name missing`);
  return problems;
}

async function allSchemaProblems(objs: Obj[]): Promise<string[]> {
  return (await Promise.all(objs.map(schemaProblems))).flat();
}

// ---------------------------------------------------------------- the issue's policy, as checks

const READ = ['get', 'list', 'watch'];
const EXPECTED_RBAC = ['/pods', '/services', '/nodes', 'discovery.k8s.io/endpointslices', 'apps/replicasets', 'batch/jobs'].sort();
const AGENT_CAPS = ['BPF', 'NET_ADMIN', 'PERFMON'];

const ofKind = (objs: Obj[], kind: string): Any[] => objs.filter((o) => o.kind === kind);
const daemonSet = (objs: Obj[]): Any => {
  const ds = ofKind(objs, 'DaemonSet');
  assert.equal(ds.length, 1, 'one DaemonSet');
  return ds[0];
};
const container = (ds: Any, name: string): Any => (ds.spec.template.spec.containers as Any[]).find((c) => c.name === name);
const envOf = (c: Any): Map<string, string> => new Map(((c.env ?? []) as Any[]).filter((e) => typeof e.value === 'string').map((e) => [e.name, e.value]));

function rbacProblems(objs: Obj[]): string[] {
  const p: string[] = [];
  if (ofKind(objs, 'Role').length || ofKind(objs, 'RoleBinding').length) p.push('no namespaced Roles expected');
  const roles = ofKind(objs, 'ClusterRole');
  if (roles.length !== 1) return [...p, `expected one ClusterRole, got ${roles.length}`];
  const seen: string[] = [];
  for (const r of roles[0].rules as Any[]) {
    if (r.nonResourceURLs || r.resourceNames) p.push('rule with nonResourceURLs or resourceNames');
    const verbs = [...(r.verbs as string[])].sort();
    if (JSON.stringify(verbs) !== JSON.stringify([...READ].sort())) p.push(`verbs ${verbs.join(',')} on ${(r.resources as string[]).join(',')}: only get, list, watch`);
    for (const g of r.apiGroups as string[]) for (const res of r.resources as string[]) seen.push(`${g}/${res}`);
  }
  if (JSON.stringify(seen.sort()) !== JSON.stringify(EXPECTED_RBAC)) p.push(`resources ${seen.join(' ')}; expected exactly ${EXPECTED_RBAC.join(' ')}`);
  const crb = ofKind(objs, 'ClusterRoleBinding');
  const sa = ofKind(objs, 'ServiceAccount')[0];
  if (crb.length !== 1) p.push('expected one ClusterRoleBinding');
  else {
    if (crb[0].roleRef.name !== roles[0].metadata.name || crb[0].roleRef.kind !== 'ClusterRole') p.push('binding does not refer to the ClusterRole');
    const subj = (crb[0].subjects as Any[]) ?? [];
    if (subj.length !== 1 || subj[0].kind !== 'ServiceAccount' || subj[0].name !== sa?.metadata.name || subj[0].namespace !== sa?.metadata.namespace) p.push('binding subject is not the ServiceAccount');
  }
  return p;
}

function securityProblems(objs: Obj[]): string[] {
  const p: string[] = [];
  const ds = daemonSet(objs);
  const pod = ds.spec.template.spec;
  if (pod.hostNetwork !== true) p.push('hostNetwork must be true');
  if (pod.hostPID || pod.hostIPC) p.push('no hostPID/hostIPC');
  if (pod.securityContext?.runAsNonRoot !== true) p.push('pod runAsNonRoot must be true');
  if (pod.securityContext?.seccompProfile?.type !== 'RuntimeDefault') p.push('pod seccomp RuntimeDefault');
  const sa = ofKind(objs, 'ServiceAccount')[0];
  if (pod.serviceAccountName !== sa?.metadata.name) p.push('pod must use the ServiceAccount');
  for (const c of [...(pod.initContainers ?? []), ...pod.containers] as Any[]) {
    const sc = c.securityContext ?? {};
    if (sc.privileged === true) p.push(`${c.name}: privileged`);
    if (sc.runAsNonRoot === false || sc.runAsUser === 0 || (sc.runAsUser ?? pod.securityContext?.runAsUser ?? 0) === 0) p.push(`${c.name}: must run as a non-root UID`);
    if (sc.readOnlyRootFilesystem !== true) p.push(`${c.name}: readOnlyRootFilesystem`);
    if (JSON.stringify(sc.capabilities?.drop) !== JSON.stringify(['ALL'])) p.push(`${c.name}: capabilities.drop must be [ALL]`);
    const add = [...((sc.capabilities?.add as string[]) ?? [])].sort();
    if (c.name === 'agent') {
      if (JSON.stringify(add) !== JSON.stringify(AGENT_CAPS)) p.push(`agent: capabilities.add ${add.join(',')}; expected exactly ${AGENT_CAPS.join(',')}`);
      // File capabilities only work without no_new_privs.
      if (sc.allowPrivilegeEscalation !== true) p.push('agent: allowPrivilegeEscalation must be true (file capabilities)');
    } else {
      if (add.length) p.push(`${c.name}: adds capabilities`);
      if (sc.allowPrivilegeEscalation !== false) p.push(`${c.name}: allowPrivilegeEscalation must be false`);
    }
  }
  const agent = container(ds, 'agent');
  const bpffs = (pod.volumes as Any[]).find((v) => v.hostPath?.path === '/sys/fs/bpf');
  if (!bpffs || !(agent.volumeMounts as Any[]).some((m) => m.name === bpffs.name && m.mountPath === '/sys/fs/bpf')) p.push('bpffs (/sys/fs/bpf hostPath) must be mounted in the agent');
  const otherHostPaths = (pod.volumes as Any[]).filter((v) => v.hostPath && v.hostPath.path !== '/sys/fs/bpf');
  if (otherHostPaths.length) p.push(`unexpected hostPath volumes: ${otherHostPaths.map((v) => v.hostPath.path).join(', ')}`);
  const tol = (pod.tolerations ?? []) as Any[];
  if (!tol.some((t) => t.operator === 'Exists' && t.key === undefined && t.effect === undefined)) p.push('tolerations must include {operator: Exists} (every taint)');
  return p;
}

function probeProblems(objs: Obj[]): string[] {
  const p: string[] = [];
  const agent = container(daemonSet(objs), 'agent');
  const listen = envOf(agent).get('KUBENETPROBE_LISTEN');
  const port = listen ? Number(/:(\d+)$/.exec(listen)?.[1]) : NaN;
  for (const [probe, path] of [['livenessProbe', '/healthz'], ['readinessProbe', '/readyz']] as const) {
    const g = agent[probe]?.httpGet;
    if (!g) p.push(`agent: ${probe} must be an httpGet`);
    else {
      if (g.path !== path) p.push(`agent: ${probe} path ${g.path}, expected ${path}`);
      if (g.port !== port) p.push(`agent: ${probe} port ${g.port}, the agent listens on ${listen}`);
      const host = listen?.replace(/:\d+$/, '');
      if (host && host !== '0.0.0.0' && g.host !== host) p.push(`agent: ${probe} host ${g.host}, the agent listens on ${host}`);
    }
  }
  return p;
}

const BYTES: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, K: 1e3, M: 1e6, G: 1e9 };
function bytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G)?$/.exec(q);
  assert.ok(m, `quantity ${q}`);
  return Number(m[1]) * (m[2] ? BYTES[m[2]]! : 1);
}
const cpu = (q: string): number => (q.endsWith('m') ? Number(q.slice(0, -1)) / 1000 : Number(q));

function resourceProblems(objs: Obj[]): string[] {
  const p: string[] = [];
  for (const c of daemonSet(objs).spec.template.spec.containers as Any[]) {
    const r = c.resources;
    if (!r?.requests?.memory || !r?.limits?.memory || !r?.requests?.cpu || !r?.limits?.cpu) {
      p.push(`${c.name}: requests and limits for cpu and memory`);
      continue;
    }
    if (bytes(r.requests.memory) > bytes(r.limits.memory) || cpu(r.requests.cpu) > cpu(r.limits.cpu)) p.push(`${c.name}: requests above limits`);
  }
  const agent = container(daemonSet(objs), 'agent').resources;
  // README benchmarks: RSS 69-70 MB at 10k flows, 88-140 MB (peaks 148) at 100k; plus the
  // kernel's per-CPU flow table charged to the pod (docs/deploy.md#sizing).
  if (agent && bytes(agent.requests.memory) < 140e6) p.push('agent: memory request below the 100k-flow RSS (140 MB)');
  if (agent && bytes(agent.limits.memory) < 148e6 + 64 * 3 * 2 ** 20) p.push('agent: memory limit below peak RSS + a 64-CPU flow table');
  return p;
}

function scrapeProblems(objs: Obj[]): string[] {
  const p: string[] = [];
  const ds = daemonSet(objs);
  const ann = ds.spec.template.metadata.annotations ?? {};
  const proxy = container(ds, 'metrics-proxy');
  const metricsPort = proxy?.ports?.find((x: Any) => x.name === 'metrics')?.containerPort;
  const monitors = ofKind(objs, 'ServiceMonitor');
  if (monitors.length) {
    // Scraped through the ServiceMonitor: no annotations as well (that would scrape twice).
    if (ann['prometheus.io/scrape'] !== undefined) p.push('scrape annotations and a ServiceMonitor: scraped twice');
    const svc = ofKind(objs, 'Service').find((s) => Object.entries(monitors[0].spec.selector.matchLabels as Record<string, string>).every(([k, v]) => s.metadata.labels?.[k] === v));
    const port = (svc?.spec.ports as Any[] | undefined)?.find((x) => x.name === monitors[0].spec.endpoints[0].port);
    if (!port || (port.targetPort !== 'metrics' && port.targetPort !== metricsPort)) p.push('the ServiceMonitor does not reach the metrics port');
  } else {
    if (ann['prometheus.io/scrape'] !== 'true' || ann['prometheus.io/path'] !== '/metrics') p.push('prometheus.io scrape annotations');
    if (String(metricsPort) !== ann['prometheus.io/port']) p.push(`prometheus.io/port ${ann['prometheus.io/port']} is not the metrics port ${metricsPort}`);
  }
  const listen = envOf(container(ds, 'agent')).get('KUBENETPROBE_LISTEN') ?? '';
  if (!/^127\.0\.0\.1:\d+$/.test(listen)) p.push(`the agent's API must stay on loopback (hostNetwork), not ${listen}`);
  if (proxy && envOf(proxy).get('METRICS_PROXY_UPSTREAM') !== `http://${listen}`) p.push('metrics-proxy upstream is not the agent');
  const np = ofKind(objs, 'NetworkPolicy');
  if (np.length !== 1) return [...p, 'one NetworkPolicy'];
  const sel = np[0].spec.podSelector.matchLabels as Record<string, string>;
  const labels = ds.spec.template.metadata.labels as Record<string, string>;
  if (!Object.entries(sel).every(([k, v]) => labels[k] === v)) p.push('NetworkPolicy does not select the agent pods');
  const ports = (np[0].spec.ingress as Any[]).flatMap((i) => (i.ports ?? []) as Any[]).map((x) => x.port);
  if (JSON.stringify(ports) !== JSON.stringify([metricsPort])) p.push(`NetworkPolicy ports ${ports.join(',')}, expected ${metricsPort}`);
  return p;
}

/** The agent's settings from the manifest, through the agent's own config loader. */
function configProblems(objs: Obj[]): string[] {
  const env = envOf(container(daemonSet(objs), 'agent'));
  const known = new Set([...Object.values(ENV), ...Object.values(DETECTOR_ENV)]);
  const p = [...env.keys()].filter((k) => k.startsWith('KUBENETPROBE_') && !known.has(k)).map((k) => `agent: unknown setting ${k}`);
  try {
    loadConfig({ env: Object.fromEntries([...env].filter(([k]) => k.startsWith('KUBENETPROBE_'))) });
  } catch (e) {
    p.push(`agent: config refused: ${(e as Error).message}`);
  }
  return p;
}

const POLICY = { rbacProblems, securityProblems, probeProblems, resourceProblems, scrapeProblems, configProblems };
function policyProblems(objs: Obj[]): string[] {
  return Object.values(POLICY).flatMap((f) => f(objs));
}

// ---------------------------------------------------------------- the Helm chart

const HELM_LABELS = ['app.kubernetes.io/instance', 'app.kubernetes.io/version', 'app.kubernetes.io/managed-by', 'helm.sh/chart'];

function helmRenderer(): { bin?: string; why?: string } {
  const bin = join(ROOT, 'build/helm-render');
  const src = join(ROOT, 'tools/helm-render/main.go');
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs) return { bin };
  const gopath = '/usr/share/gocode';
  if (!existsSync(join(gopath, 'src/github.com/Masterminds/sprig'))) return { why: 'Go and Sprig are not installed (apt-get install golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v2-dev)' };
  try {
    execFileSync('go', ['build', '-o', bin, './tools/helm-render'], {
      cwd: ROOT,
      env: { ...process.env, GO111MODULE: 'off', GOPATH: gopath, GOFLAGS: '', GOCACHE: process.env.GOCACHE ?? join(tmpdir(), 'kubenetprobe-gocache') },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 120_000,
    });
    return { bin };
  } catch (e) {
    return { why: `cannot build tools/helm-render: ${(e as Error).message.split('\n')[0]}` };
  }
}

function render(bin: string, ...args: string[]): string {
  return execFileSync(bin, ['--name', 'kubenetprobe', '--namespace', 'kubenetprobe', ...args, CHART], { encoding: 'utf8' });
}

/** Drops what only Helm adds (its labels), for comparing with the plain manifests. */
function withoutHelmLabels<T>(v: T): T {
  if (Array.isArray(v)) return v.map(withoutHelmLabels) as T;
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === 'labels' && x && typeof x === 'object') out[k] = Object.fromEntries(Object.entries(x).filter(([l]) => !HELM_LABELS.includes(l)));
      else out[k] = withoutHelmLabels(x);
    }
    return out as T;
  }
  return v;
}

const key = (o: Obj): string => `${String(o.kind)}/${String((o.metadata as Obj | undefined)?.name)}`;

// ---------------------------------------------------------------- the tests

describe('deploy/kubernetes (plain manifests)', () => {
  const objs = plainObjects();

  test('has the objects the issue asks for', () => {
    assert.deepEqual(objs.map(key).sort(), ['ClusterRole/kubenetprobe', 'ClusterRoleBinding/kubenetprobe', 'DaemonSet/kubenetprobe', 'Namespace/kubenetprobe', 'NetworkPolicy/kubenetprobe', 'ServiceAccount/kubenetprobe']);
  });

  test('every object validates against the Kubernetes schemas, with no unknown field', async () => {
    assert.deepEqual(await allSchemaProblems(objs), []);
  });

  for (const [name, check] of Object.entries(POLICY)) {
    test(name.replace(/Problems$/, ''), () => assert.deepEqual(check(objs), []));
  }

  test('the namespace allows the pod (Pod Security "privileged"; baseline forbids the capabilities)', () => {
    const ns = ofKind(objs, 'Namespace')[0];
    assert.equal(ns.metadata.labels['pod-security.kubernetes.io/enforce'], 'privileged');
    for (const o of objs) if (o.kind !== 'Namespace' && !String(o.kind).startsWith('Cluster')) assert.equal((o.metadata as Obj).namespace, ns.metadata.name, key(o));
  });
});

describe('the checks fail on broken manifests', () => {
  const broken = (mutate: (objs: Any[]) => void): Obj[] => {
    const objs = structuredClone(plainObjects()) as Any[];
    mutate(objs);
    return objs;
  };
  const ds = (objs: Any[]): Any => objs.find((o) => o.kind === 'DaemonSet');

  test('schema: wrong type, bad quantity, missing selector, unknown field', async () => {
    const cases: [string, (o: Any[]) => void, RegExp][] = [
      ['hostNetwork "yes"', (o) => (ds(o).spec.template.spec.hostNetwork = 'yes'), /hostNetwork must be boolean/],
      ['memory "512 MB"', (o) => (ds(o).spec.template.spec.containers[0].resources.limits.memory = '512 MB'), /quantity/],
      ['no selector', (o) => delete ds(o).spec.selector, /required property selector/],
      ['typo hostNetwrk', (o) => (ds(o).spec.template.spec.hostNetwrk = true), /hostNetwrk: unknown field/],
      ['typo in a container', (o) => (ds(o).spec.template.spec.containers[0].securityContext.capabilites = {}), /capabilites: unknown field/],
      ['verbs not a list', (o) => (o.find((x) => x.kind === 'ClusterRole').rules[0].verbs = 'get'), /verbs must be array/],
    ];
    for (const [what, mutate, expect] of cases) {
      const problems = await allSchemaProblems(broken(mutate));
      assert.ok(problems.some((p) => expect.test(p)), `${what}: ${problems.join('; ') || 'accepted'}`);
    }
  });

  test('policy: privileged, a fourth capability, a write verb, a missing probe, one taint only, a public API', () => {
    const cases: [string, (o: Any[]) => void, keyof typeof POLICY][] = [
      ['privileged', (o) => (ds(o).spec.template.spec.containers[0].securityContext.privileged = true), 'securityProblems'],
      ['SYS_ADMIN', (o) => ds(o).spec.template.spec.containers[0].securityContext.capabilities.add.push('SYS_ADMIN'), 'securityProblems'],
      ['no_new_privs', (o) => (ds(o).spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation = false), 'securityProblems'],
      ['root', (o) => (ds(o).spec.template.spec.containers[0].securityContext.runAsUser = 0), 'securityProblems'],
      ['one taint', (o) => (ds(o).spec.template.spec.tolerations = [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }]), 'securityProblems'],
      ['list secrets', (o) => o.find((x) => x.kind === 'ClusterRole').rules.push({ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] }), 'rbacProblems'],
      ['create pods', (o) => o.find((x) => x.kind === 'ClusterRole').rules[0].verbs.push('create'), 'rbacProblems'],
      ['wildcard', (o) => (o.find((x) => x.kind === 'ClusterRole').rules[1].resources = ['*']), 'rbacProblems'],
      ['liveness on /metrics', (o) => (ds(o).spec.template.spec.containers[0].livenessProbe.httpGet.path = '/metrics'), 'probeProblems'],
      ['no readiness', (o) => delete ds(o).spec.template.spec.containers[0].readinessProbe, 'probeProblems'],
      ['64Mi limit', (o) => (ds(o).spec.template.spec.containers[0].resources.limits.memory = '64Mi'), 'resourceProblems'],
      ['API on 0.0.0.0', (o) => (ds(o).spec.template.spec.containers[0].env.find((e: Any) => e.name === 'KUBENETPROBE_LISTEN').value = '0.0.0.0:9470'), 'scrapeProblems'],
      ['bad mode', (o) => (ds(o).spec.template.spec.containers[0].env.find((e: Any) => e.name === 'KUBENETPROBE_MODE').value = 'block'), 'configProblems'],
      ['unknown setting', (o) => ds(o).spec.template.spec.containers[0].env.push({ name: 'KUBENETPROBE_NOPE', value: '1' }), 'configProblems'],
    ];
    for (const [what, mutate, check] of cases) assert.notDeepEqual(POLICY[check](broken(mutate)), [], `${what} passed ${check}`);
  });
});

describe('deploy/helm/kubenetprobe', () => {
  let bin: string | undefined;
  let why = '';
  before(() => {
    const r = helmRenderer();
    bin = r.bin;
    why = r.why ?? '';
  });
  const skipUnless = (t: { skip(msg: string): void }): boolean => {
    if (bin) return false;
    t.skip(why);
    return true;
  };

  test('renders with the default values to objects that validate and pass every check', async (t) => {
    if (skipUnless(t)) return;
    const objs = loadDocs(render(bin!));
    assert.deepEqual(await allSchemaProblems(objs), []);
    assert.deepEqual(policyProblems([...objs, ...ofKind(plainObjects(), 'Namespace')]), []);
  });

  test('renders the plain manifests, but for Helm labels and the Namespace (which helm makes with --create-namespace)', (t) => {
    if (skipUnless(t)) return;
    const rendered = new Map(loadDocs(render(bin!)).map((o) => [key(o), withoutHelmLabels(o)]));
    const plain = new Map(plainObjects().filter((o) => o.kind !== 'Namespace').map((o) => [key(o), o]));
    assert.deepEqual([...rendered.keys()].sort(), [...plain.keys()].sort());
    for (const [k, o] of plain) assert.deepEqual(rendered.get(k), o, k);
  });

  test('namespace.create, serviceMonitor.enabled: a Namespace, a Service and a ServiceMonitor that validate', async (t) => {
    if (skipUnless(t)) return;
    const objs = loadDocs(render(bin!, '--set', 'serviceMonitor.enabled=true', '--set', 'namespace.create=true', '--api-versions', 'monitoring.coreos.com/v1'));
    assert.deepEqual(await allSchemaProblems(objs), []);
    assert.deepEqual(policyProblems(objs), []);
    const ns = withoutHelmLabels(ofKind(objs, 'Namespace')[0]);
    assert.deepEqual(ns, ofKind(plainObjects(), 'Namespace')[0]);
    const svc = ofKind(objs, 'Service')[0];
    const sm = ofKind(objs, 'ServiceMonitor')[0];
    const ds = daemonSet(objs);
    assert.ok(Object.entries(svc.spec.selector as Record<string, string>).every(([k, v]) => ds.spec.template.metadata.labels[k] === v), 'Service selects the agents');
    assert.deepEqual(sm.spec.selector.matchLabels, ds.spec.selector.matchLabels);
    assert.equal(sm.spec.endpoints[0].port, svc.spec.ports[0].name);
    assert.equal(ds.spec.template.metadata.annotations, undefined, 'no scrape annotations beside the ServiceMonitor');
    // A broken ServiceMonitor fails the schema.
    const bad = structuredClone(sm);
    bad.spec.endpoints = 'metrics';
    assert.notDeepEqual(await schemaProblems(bad), []);
  });

  test('other values render valid objects (listen elsewhere, extra env, no proxy, no policy)', async (t) => {
    if (skipUnless(t)) return;
    const objs = loadDocs(render(bin!, '--set', 'agent.listen=127.0.0.1:9500', '--set', 'agent.extraEnv.KUBENETPROBE_OTLP_ENDPOINT=http://otel-collector.monitoring:4318', '--set', 'metricsProxy.enabled=false', '--set', 'image.tag=dev'));
    assert.deepEqual(await allSchemaProblems(objs), []);
    const ds = daemonSet(objs);
    assert.equal(ds.spec.template.spec.containers.length, 1);
    assert.equal(ds.spec.template.metadata.annotations, undefined);
    assert.equal(ofKind(objs, 'NetworkPolicy').length, 0);
    assert.deepEqual(probeProblems(objs), []);
    assert.deepEqual(configProblems(objs), []);
    assert.equal(container(ds, 'agent').image, 'kubenetprobe/agent:dev');
  });

  test('NOTES.txt renders', (t) => {
    if (skipUnless(t)) return;
    const notes = render(bin!, '--notes');
    assert.match(notes, /daemonset\/kubenetprobe/);
    assert.match(notes, /:9471\/metrics/);
  });
});

describe('deploy/Dockerfile', () => {
  const text = readFileSync(DOCKERFILE, 'utf8');
  const lines = text.split('\n').filter((l) => !/^\s*#/.test(l));
  const stages = text.split(/^FROM /m).slice(1);

  test('dockerfile-utils finds nothing', async () => {
    assert.deepEqual((await lintDockerfile(text)).map((d) => `${d.range.start.line + 1}: ${d.message}`), []);
    // ... and does find a broken one.
    assert.notDeepEqual(await lintDockerfile(`${text}\nEXPOSE notaport\nFROM\n`), []);
  });

  test('multi-stage: node 20 bookworm to build (clang, libbpf-dev, build-bpf, tsc, prune), bookworm-slim to run', () => {
    assert.equal(stages.length, 2);
    assert.match(stages[0]!, /^node:20-bookworm AS build/);
    assert.match(stages[0]!, /clang/);
    assert.match(stages[0]!, /libbpf-dev/);
    assert.match(stages[0]!, /npm ci/);
    assert.match(stages[0]!, /scripts\/build-bpf\.sh/);
    assert.match(stages[0]!, /tsc -p/);
    assert.match(stages[0]!, /npm prune --omit=dev/);
    assert.match(stages[1]!, /^node:20-bookworm-slim AS runtime/);
    assert.match(stages[1]!, /install[^\n]*libbpf1/);
    assert.doesNotMatch(stages[1]!, /clang|libbpf-dev/);
    for (const copy of ['dist/src/', 'build/bpf/', 'node_modules/', 'package.json', 'deploy/metrics-proxy.mjs']) assert.ok(stages[1]!.includes(copy), copy);
    assert.ok(!lines.some((l) => /^FROM .*:latest/.test(l)), 'no :latest');
  });

  test('runs as a non-root user, with the capabilities as file capabilities matching the manifests', () => {
    const user = /^USER (\S+)/m.exec(stages[1]!)?.[1];
    assert.ok(user && /^[1-9]\d*(:\d+)?$/.test(user), `numeric non-root USER, got ${user}`);
    const uid = Number(user.split(':')[0]);
    const agentSc = container(daemonSet(plainObjects()), 'agent').securityContext;
    assert.equal(agentSc.runAsUser, uid, 'the manifest runs as the image user');
    const setcap = /setcap (\S+)=ep (\S+)/.exec(stages[1]!);
    assert.ok(setcap, 'setcap CAPS=ep BINARY');
    const fileCaps = setcap[1]!.split(',').map((c) => c.replace(/^cap_/, '').toUpperCase()).sort();
    // With the effective bit set, execve fails unless the bounding set (the pod's capabilities.add)
    // holds every file capability: the two lists must be the same.
    assert.deepEqual(fileCaps, [...(agentSc.capabilities.add as string[])].sort());
    const entry = /^ENTRYPOINT (.+)$/m.exec(stages[1]!)?.[1];
    assert.ok(entry, 'ENTRYPOINT');
    const argv = JSON.parse(entry) as string[];
    assert.deepEqual(argv, [setcap[2], ...CLI_NODE_FLAGS, '/app/dist/src/cli/main.js', 'agent']);
    assert.match(stages[1]!, /KUBENETPROBE_LISTEN=127\.0\.0\.1:9470/);
    assert.match(stages[1]!, /rm -rf \/var\/lib\/apt\/lists/);
  });

  test('the build context it needs is not ignored', () => {
    const ignore = readFileSync(`${DOCKERFILE}.dockerignore`, 'utf8');
    for (const m of text.matchAll(/^COPY (?!--from)(.+) \S+$/gm))
      for (const src of m[1]!.split(/\s+/)) assert.ok(ignore.includes(`!${src}`), `${src} is excluded from the context`);
  });
});

// The kubenetprobe command's node flags, on the first line of src/cli/main.ts (the bin); the image and the demo pass the same.
const CLI_NODE_FLAGS = (/^#!\/usr\/bin\/env -S node (.+)$/.exec(readFileSync(join(ROOT, 'src/cli/main.ts'), 'utf8').split('\n', 1)[0]!)?.[1] ?? '').split(' ').filter(Boolean);

describe('the node flags of the kubenetprobe command', () => {
  test('the bin, the built file, the demo and the image run with the same ones', () => {
    assert.deepEqual(CLI_NODE_FLAGS, ['--max-semi-space-size=8']);
    assert.equal(readFileSync(join(ROOT, 'dist/src/cli/main.js'), 'utf8').split('\n', 1)[0], `#!/usr/bin/env -S node ${CLI_NODE_FLAGS.join(' ')}`);
    assert.match(readFileSync(join(ROOT, 'scripts/demo.sh'), 'utf8'), new RegExp(`^exec node ${CLI_NODE_FLAGS.join(' ')} dist/src/cli/main\\.js demo `, 'm'));
  });

  test('this node takes them: garbage that grows the young generation to 32 MB leaves it at 16 (8 MB a semi-space)', () => {
    const script = "let a=[];for(let i=0;i<3e6;i++){a.push({a:i,b:[i,i+1],c:'x'+i});if(a.length>20000)a=[]}process.stdout.write(String(require('v8').getHeapSpaceStatistics().find((s)=>s.space_name==='new_space').space_size>>20))";
    const newSpaceMb = (flags: string[]): number => Number(execFileSync(process.execPath, [...flags, '-e', script], { encoding: 'utf8' }));
    assert.ok(newSpaceMb(CLI_NODE_FLAGS) <= 16, `new space ${newSpaceMb(CLI_NODE_FLAGS)} MB with ${CLI_NODE_FLAGS.join(' ')}`);
    assert.ok(newSpaceMb([]) > 16, 'without the flags the same garbage grows it (or this check tells nothing)');
  });
});

describe('deploy/metrics-proxy.mjs', () => {
  test('forwards GET /metrics, /healthz, /readyz to the agent and nothing else', async () => {
    const upstreamSeen: string[] = [];
    const upstream = http.createServer((req, res) => {
      upstreamSeen.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(`ok ${req.url}\n`);
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const { createMetricsProxy, parseListen } = (await import(pathToFileURL(join(ROOT, 'deploy/metrics-proxy.mjs')).href)) as {
      createMetricsProxy: (u: string) => http.Server;
      parseListen: (s: string) => { host: string; port: number };
    };
    const proxy = createMetricsProxy(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      const metrics = await fetch(`${base}/metrics`);
      assert.equal(metrics.status, 200);
      assert.equal(await metrics.text(), 'ok /metrics\n');
      assert.match(metrics.headers.get('content-type') ?? '', /version=0\.0\.4/);
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      assert.equal((await fetch(`${base}/api/v1/flows`)).status, 404);
      assert.equal((await fetch(`${base}/api/v1/blocks`, { method: 'POST', body: '{"ip":"10.0.0.1"}', headers: { 'content-type': 'application/json' } })).status, 405);
      assert.equal((await fetch(`${base}/api/v1/detectors`, { method: 'PATCH', body: '{}' })).status, 405);
      assert.deepEqual(upstreamSeen, ['GET /metrics', 'GET /readyz']);
      assert.deepEqual(parseListen('10.1.2.3:9471'), { host: '10.1.2.3', port: 9471 });
      assert.deepEqual(parseListen('[fd00::1]:9471'), { host: 'fd00::1', port: 9471 });
      assert.throws(() => parseListen('9471'));
      // The agent down: 502, not a hang.
      await new Promise<void>((r) => upstream.close(() => r()));
      upstream.closeAllConnections();
      assert.equal((await fetch(`${base}/metrics`)).status, 502);
    } finally {
      proxy.closeAllConnections();
      await new Promise<void>((r) => proxy.close(() => r()));
      upstream.closeAllConnections();
    }
  });
});

// A scratch check that the renderer refuses what Helm refuses (a template error fails the render).
test('tools/helm-render fails on a broken template', (t) => {
  const r = helmRenderer();
  if (!r.bin) {
    t.skip(r.why ?? '');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'knp-chart-'));
  try {
    writeFileSync(join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: x\nversion: 0.0.1\n');
    execFileSync('mkdir', ['-p', join(dir, 'templates')]);
    writeFileSync(join(dir, 'templates/a.yaml'), 'a: {{ required "need .Values.b" .Values.b }}\n');
    assert.throws(() => execFileSync(r.bin!, [dir], { stdio: 'pipe' }), /need .Values.b/);
    assert.equal(execFileSync(r.bin!, ['--set', 'b=1', dir], { encoding: 'utf8' }), '---\n# Source: x/templates/a.yaml\na: 1\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
