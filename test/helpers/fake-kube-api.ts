/**
 * A local stand-in for the Kubernetes API server, for tests and benches. It
 * is NOT a real API server: it implements just what informers use, for
 * cluster-wide collection paths (/api/v1/pods, /apis/apps/v1/replicasets...):
 *
 * - list: GET <path>[?limit=N&continue=T], items in name order, with the
 *   collection's resourceVersion; continue tokens page through a snapshot.
 * - watch: GET <path>?watch=true&resourceVersion=R[&allowWatchBookmarks=true],
 *   a chunked stream of JSON lines {type, object}: ADDED / MODIFIED /
 *   DELETED / BOOKMARK / ERROR. Events after R are replayed from history;
 *   if R is older than the compacted history the answer is 410 Gone, as an
 *   HTTP 410 response or (the way a real server does it mid-stream) as an
 *   ERROR event carrying a Status with code 410.
 *
 * One resourceVersion counter is shared by all resources, as in etcd. The
 * test drives it: create / update / delete objects (optionally "silently",
 * i.e. lost from history and never sent, like changes during a watch gap),
 * compact history, send bookmarks, end or break watches, force 410.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type KubeObj = {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
};

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface Watcher {
  res: http.ServerResponse;
  bookmarks: boolean;
}

interface Resource {
  kind: string;
  apiVersion: string;
  objects: Map<string, KubeObj>;
  history: { rv: number; type: EventType; object: KubeObj }[];
  watchers: Set<Watcher>;
}

const RESOURCES: Record<string, { kind: string; apiVersion: string }> = {
  '/api/v1/pods': { kind: 'Pod', apiVersion: 'v1' },
  '/api/v1/services': { kind: 'Service', apiVersion: 'v1' },
  '/api/v1/nodes': { kind: 'Node', apiVersion: 'v1' },
  '/apis/discovery.k8s.io/v1/endpointslices': { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1' },
  '/apis/apps/v1/replicasets': { kind: 'ReplicaSet', apiVersion: 'apps/v1' },
  '/apis/batch/v1/jobs': { kind: 'Job', apiVersion: 'batch/v1' },
};

export type ResourceName = 'pods' | 'services' | 'nodes' | 'endpointslices' | 'replicasets' | 'jobs';

const PATH_OF: Record<ResourceName, string> = {
  pods: '/api/v1/pods',
  services: '/api/v1/services',
  nodes: '/api/v1/nodes',
  endpointslices: '/apis/discovery.k8s.io/v1/endpointslices',
  replicasets: '/apis/apps/v1/replicasets',
  jobs: '/apis/batch/v1/jobs',
};

function keyOf(o: KubeObj): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

function status(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

export interface WriteOptions {
  /** Change the object without an event: lost from history (which is compacted to here) and never sent. */
  silent?: boolean;
}

export class FakeKubeApi {
  private readonly server: http.Server;
  private readonly resources = new Map<string, Resource>();
  private rv = 1000;
  private compactedRv = 0;
  /** Delay before answering a list (to test close() during a list). */
  listDelayMs = 0;
  /** How the 410 for a too-old resourceVersion is given. */
  goneAs: 'status' | 'event' = 'status';
  /** Requests seen, for assertions: "list <path>" / "watch <path>" -> query strings. */
  readonly requests: { verb: 'list' | 'watch'; path: string; query: URLSearchParams; status: number }[] = [];

  private constructor() {
    for (const [path, r] of Object.entries(RESOURCES)) {
      this.resources.set(path, { ...r, objects: new Map(), history: [], watchers: new Set() });
    }
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  static async start(): Promise<FakeKubeApi> {
    const api = new FakeKubeApi();
    await new Promise<void>((resolve) => api.server.listen(0, '127.0.0.1', resolve));
    return api;
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}`;
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  /** Directories writeKubeconfig() made; close() removes them. */
  private readonly dirs: string[] = [];

  /** Writes a kubeconfig pointing at this server (plain http, no TLS) and returns its path; close() removes it. */
  writeKubeconfig(): string {
    const dir = mkdtempSync(join(tmpdir(), 'fake-kube-'));
    this.dirs.push(dir);
    const path = join(dir, 'kubeconfig');
    writeFileSync(
      path,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: fake',
        '  cluster:',
        `    server: ${this.url}`,
        '    insecure-skip-tls-verify: true',
        'users:',
        '- name: fake',
        '  user:',
        '    token: fake-token',
        'contexts:',
        '- name: fake',
        '  context: {cluster: fake, user: fake}',
        'current-context: fake',
        '',
      ].join('\n'),
    );
    return path;
  }

  // ---- Driving the cluster --------------------------------------------------------

  /** Creates or replaces an object (ADDED or MODIFIED). Sets uid (if missing) and resourceVersion. */
  apply(resource: ResourceName, obj: KubeObj, opts: WriteOptions = {}): KubeObj {
    const r = this.res(resource);
    const key = keyOf(obj);
    const old = r.objects.get(key);
    const stored: KubeObj = {
      apiVersion: r.apiVersion,
      kind: r.kind,
      ...obj,
      metadata: { ...obj.metadata, uid: obj.metadata.uid ?? old?.metadata.uid ?? randomUUID(), resourceVersion: String(++this.rv) },
    };
    r.objects.set(key, stored);
    this.record(r, old ? 'MODIFIED' : 'ADDED', stored, opts);
    return stored;
  }

  /** Deletes an object (DELETED, carrying the last state). Returns false if absent. */
  delete(resource: ResourceName, name: string, namespace?: string, opts: WriteOptions = {}): boolean {
    const r = this.res(resource);
    const key = `${namespace ?? ''}/${name}`;
    const old = r.objects.get(key);
    if (!old) return false;
    r.objects.delete(key);
    const gone: KubeObj = { ...old, metadata: { ...old.metadata, resourceVersion: String(++this.rv) } };
    this.record(r, 'DELETED', gone, opts);
    return true;
  }

  get(resource: ResourceName, name: string, namespace?: string): KubeObj | undefined {
    return this.res(resource).objects.get(`${namespace ?? ''}/${name}`);
  }

  /** Forgets history up to now: a watch from an older resourceVersion gets 410 Gone. */
  compact(): void {
    this.compactedRv = this.rv;
    for (const r of this.resources.values()) r.history = [];
  }

  /** Sends a BOOKMARK (current resourceVersion) to watchers that asked for bookmarks. */
  bookmark(resource?: ResourceName): number {
    let sent = 0;
    for (const r of this.pick(resource)) {
      for (const w of r.watchers) {
        if (!w.bookmarks) continue;
        w.res.write(JSON.stringify({ type: 'BOOKMARK', object: { kind: r.kind, apiVersion: r.apiVersion, metadata: { resourceVersion: String(this.rv) } } }) + '\n');
        sent++;
      }
    }
    return sent;
  }

  /** Sends ERROR 410 Gone to the open watches and ends them; compacts history so a resume gets 410 too. */
  expireWatches(resource?: ResourceName): void {
    this.compact();
    for (const r of this.pick(resource)) {
      for (const w of r.watchers) {
        w.res.end(JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', 'too old resource version') }) + '\n');
      }
      r.watchers.clear();
    }
  }

  /** Ends the open watches cleanly (as a server does at its watch timeout). */
  endWatches(resource?: ResourceName): void {
    for (const r of this.pick(resource)) {
      for (const w of r.watchers) w.res.end();
      r.watchers.clear();
    }
  }

  /** Breaks the open watch connections (socket destroyed mid-stream). */
  breakWatches(resource?: ResourceName): void {
    for (const r of this.pick(resource)) {
      for (const w of r.watchers) w.res.socket?.destroy();
      r.watchers.clear();
    }
  }

  watcherCount(resource: ResourceName): number {
    return this.res(resource).watchers.size;
  }

  /** Stops serving (nothing listens on its port any more); the kubeconfigs it wrote stay until close(). */
  async stopListening(): Promise<void> {
    for (const r of this.resources.values()) {
      for (const w of r.watchers) w.res.end();
      r.watchers.clear();
    }
    this.server.closeAllConnections();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Stops serving and removes the kubeconfigs it wrote. Safe to call twice. */
  async close(): Promise<void> {
    await this.stopListening();
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }

  // ---- HTTP -----------------------------------------------------------------------

  private res(name: ResourceName): Resource {
    return this.resources.get(PATH_OF[name])!;
  }

  private pick(name?: ResourceName): Resource[] {
    return name ? [this.res(name)] : [...this.resources.values()];
  }

  private record(r: Resource, type: EventType, object: KubeObj, opts: WriteOptions): void {
    if (opts.silent) {
      this.compact();
      return;
    }
    r.history.push({ rv: this.rv, type, object });
    const line = JSON.stringify({ type, object }) + '\n';
    for (const w of r.watchers) w.res.write(line);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const r = this.resources.get(url.pathname);
    const q = url.searchParams;
    const watch = q.get('watch') === 'true' || q.get('watch') === '1';
    const reply = (code: number, body: unknown): void => {
      this.requests.push({ verb: watch ? 'watch' : 'list', path: url.pathname, query: q, status: code });
      res.writeHead(code, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET') return reply(405, status(405, 'MethodNotAllowed', `${req.method} not supported`));
    if (!r) return reply(404, status(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`));
    if (watch) return this.watch(r, url.pathname, q, res);
    if (this.listDelayMs > 0) {
      setTimeout(() => this.list(r, q, reply), this.listDelayMs);
      return;
    }
    this.list(r, q, reply);
  }

  private list(r: Resource, q: URLSearchParams, reply: (code: number, body: unknown) => void): void {

    // List, paged: the continue token is "<rv>:<offset>" into a snapshot taken by sorting keys.
    const limit = Number(q.get('limit') ?? 0);
    const cont = q.get('continue');
    let offset = 0;
    let listRv = this.rv;
    if (cont) {
      const [rvS, offS] = cont.split(':');
      listRv = Number(rvS);
      offset = Number(offS);
      if (listRv < this.compactedRv) return reply(410, status(410, 'Expired', 'the provided continue parameter is too old'));
    }
    const keys = [...r.objects.keys()].sort();
    const end = limit > 0 ? Math.min(keys.length, offset + limit) : keys.length;
    const items = keys.slice(offset, end).map((k) => r.objects.get(k)!);
    const metadata: Record<string, unknown> = { resourceVersion: String(listRv) };
    if (end < keys.length) metadata.continue = `${listRv}:${end}`;
    reply(200, { kind: `${r.kind}List`, apiVersion: r.apiVersion, metadata, items });
  }

  private watch(r: Resource, path: string, q: URLSearchParams, res: http.ServerResponse): void {
    const from = q.get('resourceVersion') ?? '';
    const fromRv = from === '' || from === '0' ? -1 : Number(from);
    if (fromRv >= 0 && fromRv < this.compactedRv && this.goneAs === 'status') {
      this.requests.push({ verb: 'watch', path, query: q, status: 410 });
      res.writeHead(410, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(status(410, 'Expired', `too old resource version: ${from} (${this.compactedRv})`)));
      return;
    }
    this.requests.push({ verb: 'watch', path, query: q, status: 200 });
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    if (fromRv >= 0 && fromRv < this.compactedRv) {
      res.end(JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from}`) }) + '\n');
      return;
    }
    if (fromRv < 0) {
      for (const o of r.objects.values()) res.write(JSON.stringify({ type: 'ADDED', object: o }) + '\n');
    } else {
      for (const e of r.history) if (e.rv > fromRv) res.write(JSON.stringify({ type: e.type, object: e.object }) + '\n');
    }
    const w: Watcher = { res, bookmarks: q.get('allowWatchBookmarks') === 'true' };
    r.watchers.add(w);
    res.on('close', () => r.watchers.delete(w));
  }
}

// ---- Object builders ---------------------------------------------------------------

export interface PodSpec {
  namespace?: string;
  name: string;
  ip?: string | string[];
  node?: string;
  hostNetwork?: boolean;
  labels?: Record<string, string>;
  owner?: { kind: string; name: string };
  phase?: string;
  uid?: string;
}

function ownerRefs(owner?: { kind: string; name: string }): Record<string, unknown>[] | undefined {
  if (!owner) return undefined;
  const apiVersion = { ReplicaSet: 'apps/v1', Deployment: 'apps/v1', StatefulSet: 'apps/v1', DaemonSet: 'apps/v1', Job: 'batch/v1', CronJob: 'batch/v1' }[owner.kind] ?? 'v1';
  return [{ apiVersion, kind: owner.kind, name: owner.name, uid: `owner-${owner.kind}-${owner.name}`, controller: true, blockOwnerDeletion: true }];
}

/** A pod as the API server returns it, with the usual noise (managed fields, containers, conditions). */
export function pod(p: PodSpec): KubeObj {
  const ips = p.ip === undefined ? [] : Array.isArray(p.ip) ? p.ip : [p.ip];
  const ns = p.namespace ?? 'default';
  return {
    metadata: {
      name: p.name,
      namespace: ns,
      ...(p.uid ? { uid: p.uid } : {}),
      labels: p.labels ?? {},
      annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-11-26T12:00:00Z' },
      ...(p.owner ? { ownerReferences: ownerRefs(p.owner) } : {}),
      creationTimestamp: '2026-11-26T12:00:00Z',
      managedFields: [{ manager: 'kube-controller-manager', operation: 'Update', apiVersion: 'v1', time: '2026-11-26T12:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:labels': {} } } }],
    },
    spec: {
      nodeName: p.node ?? 'node-1',
      hostNetwork: p.hostNetwork ?? false,
      serviceAccountName: 'default',
      containers: [
        {
          name: 'main',
          image: 'registry.example/app:1.2.3',
          ports: [{ containerPort: 8080, protocol: 'TCP' }],
          resources: { requests: { cpu: '100m', memory: '128Mi' } },
          volumeMounts: [{ name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
        },
      ],
      volumes: [{ name: 'kube-api-access', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }] } }],
    },
    status: {
      phase: p.phase ?? 'Running',
      hostIP: '192.168.0.1',
      ...(ips[0] !== undefined ? { podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) } : {}),
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2026-11-26T12:00:01Z' }],
      containerStatuses: [{ name: 'main', ready: true, restartCount: 0, image: 'registry.example/app:1.2.3', imageID: 'registry.example/app@sha256:0123', containerID: 'containerd://0123', state: { running: { startedAt: '2026-11-26T12:00:01Z' } } }],
    },
  };
}

export function service(s: { namespace?: string; name: string; clusterIP: string | string[]; ports?: number[] }): KubeObj {
  const ips = Array.isArray(s.clusterIP) ? s.clusterIP : [s.clusterIP];
  return {
    metadata: { name: s.name, namespace: s.namespace ?? 'default', labels: { app: s.name } },
    spec: {
      type: 'ClusterIP',
      clusterIP: ips[0],
      clusterIPs: ips,
      selector: { app: s.name },
      ports: (s.ports ?? [80]).map((port) => ({ name: `p${port}`, protocol: 'TCP', port, targetPort: port })),
    },
  };
}

export function endpointSlice(e: { namespace?: string; name: string; service: string; addresses: string[] }): KubeObj {
  return {
    metadata: { name: e.name, namespace: e.namespace ?? 'default', labels: { 'kubernetes.io/service-name': e.service, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
    addressType: 'IPv4',
    endpoints: e.addresses.map((a) => ({ addresses: [a], conditions: { ready: true }, targetRef: { kind: 'Pod', name: a } })),
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
  };
}

export function node(n: { name: string; ip: string }): KubeObj {
  return {
    metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name } },
    spec: { podCIDR: '10.244.0.0/24' },
    status: {
      addresses: [
        { type: 'InternalIP', address: n.ip },
        { type: 'Hostname', address: n.name },
      ],
      nodeInfo: { kubeletVersion: 'v1.31.0', osImage: 'Linux' },
    },
  };
}

/** A ReplicaSet or Job (or anything with an owner), with its controller owner. */
export function owned(o: { namespace?: string; name: string; owner?: { kind: string; name: string } }): KubeObj {
  return {
    metadata: { name: o.name, namespace: o.namespace ?? 'default', ...(o.owner ? { ownerReferences: ownerRefs(o.owner) } : {}) },
    spec: {},
  };
}
