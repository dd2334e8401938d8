/**
 * Cluster identity: which pod, workload, service or node an IP belongs to.
 *
 * Informers (kube-client.ts) follow pods, services, endpoint slices and
 * nodes, plus ReplicaSets and Jobs to resolve owner chains (ReplicaSet ->
 * Deployment, Job -> CronJob). Each keeps only the fields slim.ts lists.
 * Not wired into the agent yet; see docs/kubernetes.md.
 */
import { EventEmitter } from 'node:events';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
import { IpIndex } from './ip-index.js';
import { loadKubeConfig, SlimInformer, type KubeConfigSource } from './kube-client.js';
import {
  canonicalIp,
  labelFilter,
  slimEndpointSlice,
  slimNode,
  slimOwnerObject,
  slimPod,
  slimService,
  type OwnerRef,
  type SlimEndpointSlice,
  type SlimNode,
  type SlimOwnerObject,
  type SlimPod,
  type SlimService,
} from './slim.js';

export interface Workload {
  kind: string;
  name: string;
}

export type Identity =
  | {
      kind: 'pod';
      namespace: string;
      pod: string;
      workload: Workload;
      labels: Readonly<Record<string, string>>;
      node: string;
      hostNetwork: boolean;
      /** A service whose endpoint slices list this IP (same namespace). */
      service?: string;
    }
  | { kind: 'service'; namespace: string; service: string }
  | { kind: 'node'; node: string; local: boolean }
  | { kind: 'world' };

export interface PodRef {
  namespace: string;
  pod: string;
}

export interface PodEvent extends PodRef {
  uid: string;
  ips: readonly string[];
  node: string;
  hostNetwork: boolean;
}

export interface ClusterIdentityOptions extends KubeConfigSource {
  /** A loaded configuration (instead of kubeconfig / in-cluster). */
  kubeConfig?: KubeConfig;
  /** This node's name (for `local`); default $NODE_NAME. */
  nodeName?: string;
  /** Labels to keep: exact keys, or prefixes ending in "*". Default: none. */
  labels?: readonly string[];
  /** Watch ReplicaSets and Jobs to resolve Deployments and CronJobs. Default true. */
  resolveOwners?: boolean;
  /** First retry delay after a failed list or a broken watch (doubles, up to 30 s). Default 200 ms. */
  backoffMs?: number;
  /** Items per list page. Default 500. */
  pageSize?: number;
}

export interface ClusterIdentityEvents {
  podAdded: [PodEvent];
  podDeleted: [PodEvent];
  /** A list or watch failed; it is retried with backoff. */
  warning: [Error, string];
}

export const PATHS = {
  pods: '/api/v1/pods',
  services: '/api/v1/services',
  endpointslices: '/apis/discovery.k8s.io/v1/endpointslices',
  nodes: '/api/v1/nodes',
  replicasets: '/apis/apps/v1/replicasets',
  jobs: '/apis/batch/v1/jobs',
} as const;

function keyOf(o: KubernetesObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

function podEvent(p: SlimPod): PodEvent {
  return {
    namespace: p.metadata.namespace ?? '',
    pod: p.metadata.name,
    uid: p.metadata.uid,
    ips: p.ips,
    node: p.node,
    hostNetwork: p.hostNetwork,
  };
}

function asError(err: unknown): Error {
  if (err instanceof Error) return err;
  return new Error(typeof err === 'string' ? err : JSON.stringify(err));
}

export class ClusterIdentity extends EventEmitter<ClusterIdentityEvents> {
  readonly nodeName: string;
  private readonly kc: KubeConfig;
  private readonly informers: SlimInformer<KubernetesObject>[] = [];
  private readonly rs: SlimInformer<SlimOwnerObject> | undefined;
  private readonly jobs: SlimInformer<SlimOwnerObject> | undefined;

  private readonly podsByKey = new Map<string, SlimPod>();
  /** Pod IPs of pods on the pod network. */
  private readonly podIps = new IpIndex<SlimPod>();
  /** IPs of host-network pods (their node's IPs). */
  private readonly hostNetIps = new IpIndex<SlimPod>();
  private readonly servicesByKey = new Map<string, SlimService>();
  private readonly clusterIps = new IpIndex<SlimService>();
  private readonly slicesByKey = new Map<string, SlimEndpointSlice>();
  private readonly endpointIps = new IpIndex<{ namespace: string; service: string }>();
  private readonly nodesByName = new Map<string, SlimNode>();
  private readonly nodeIps = new IpIndex<SlimNode>();
  private closed = false;
  private started: Promise<void> | undefined;

  constructor(opts: ClusterIdentityOptions = {}) {
    super();
    this.kc = opts.kubeConfig ?? loadKubeConfig(opts);
    this.nodeName = opts.nodeName ?? process.env.NODE_NAME ?? '';
    const keep = labelFilter(opts.labels ?? []);
    const common = {
      kc: this.kc,
      backoffMs: opts.backoffMs,
      pageSize: opts.pageSize,
      onError: (err: unknown, path: string) => {
        if (!this.closed) this.emit('warning', asError(err), path);
      },
    };
    const add = <T extends KubernetesObject>(inf: SlimInformer<T>): SlimInformer<T> => {
      this.informers.push(inf as unknown as SlimInformer<KubernetesObject>);
      return inf;
    };
    add(
      new SlimInformer<SlimPod>({
        ...common,
        path: PATHS.pods,
        slim: (raw) => slimPod(raw, keep),
        onAdd: (p) => this.podUpsert(p),
        onUpdate: (p) => this.podUpsert(p),
        onDelete: (p) => this.podDelete(p),
      }),
    );
    add(
      new SlimInformer<SlimService>({
        ...common,
        path: PATHS.services,
        slim: slimService,
        onAdd: (s) => this.serviceUpsert(s),
        onUpdate: (s) => this.serviceUpsert(s),
        onDelete: (s) => this.serviceDelete(s),
      }),
    );
    add(
      new SlimInformer<SlimEndpointSlice>({
        ...common,
        path: PATHS.endpointslices,
        slim: slimEndpointSlice,
        onAdd: (s) => this.sliceUpsert(s),
        onUpdate: (s) => this.sliceUpsert(s),
        onDelete: (s) => this.sliceDelete(s),
      }),
    );
    add(
      new SlimInformer<SlimNode>({
        ...common,
        path: PATHS.nodes,
        slim: slimNode,
        onAdd: (n) => this.nodeUpsert(n),
        onUpdate: (n) => this.nodeUpsert(n),
        onDelete: (n) => this.nodeDelete(n),
      }),
    );
    if (opts.resolveOwners ?? true) {
      // Kept in the informers' own caches (name, namespace, controller owner): looked up on demand.
      const none = (): void => {};
      this.rs = add(new SlimInformer<SlimOwnerObject>({ ...common, path: PATHS.replicasets, slim: slimOwnerObject, onAdd: none, onUpdate: none, onDelete: none }));
      this.jobs = add(new SlimInformer<SlimOwnerObject>({ ...common, path: PATHS.jobs, slim: slimOwnerObject, onAdd: none, onUpdate: none, onDelete: none }));
    }
  }

  /**
   * Starts the informers and resolves once each has listed its resource.
   * Rejects after `timeoutMs` (default 30 s) if some cannot list, naming
   * them and the last error; they keep retrying until close().
   */
  start(timeoutMs = 30_000): Promise<void> {
    if (this.closed) return Promise.reject(new Error('ClusterIdentity is closed'));
    this.started ??= (async () => {
      for (const inf of this.informers) void inf.start();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const missing = this.informers.filter((i) => i.lists === 0);
          const why = missing.map((i) => `${i.path}: ${asError(i.lastError ?? 'no answer').message}`);
          reject(new Error(`Kubernetes API: could not list within ${timeoutMs} ms: ${why.join('; ')}`));
        }, timeoutMs);
      });
      try {
        await Promise.race([Promise.all(this.informers.map((i) => i.synced)), timeout]);
      } finally {
        clearTimeout(timer);
      }
    })();
    return this.started;
  }

  /** Stops every informer. Safe to call more than once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.informers.map((i) => i.close()));
  }

  /** How many lists each informer has completed (1 + relists after 410 Gone). */
  listCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, path] of Object.entries(PATHS)) {
      const inf = this.informers.find((i) => i.path === path);
      if (inf) out[name] = inf.lists;
    }
    return out;
  }

  // ---- Lookups ----------------------------------------------------------------

  identify(ipIn: string): Identity {
    const ip = canonicalIp(ipIn);
    const pod = this.podIps.get(ip);
    if (pod) return this.podIdentity(pod, ip);
    const svc = this.clusterIps.get(ip);
    if (svc) return { kind: 'service', namespace: svc.metadata.namespace ?? '', service: svc.metadata.name };
    const node = this.nodeIps.get(ip);
    if (node) return { kind: 'node', node: node.metadata.name, local: node.metadata.name === this.nodeName };
    const ep = this.endpointIps.get(ip);
    if (ep) return { kind: 'service', namespace: ep.namespace, service: ep.service };
    const host = this.hostNetIps.get(ip);
    if (host) return this.podIdentity(host, ip);
    return { kind: 'world' };
  }

  /** Host-network pods whose IP is `ip` (they share their node's IP). */
  hostNetworkPods(ip: string): PodRef[] {
    const c = canonicalIp(ip);
    const out: PodRef[] = [];
    for (const p of this.podsByKey.values()) {
      if (p.hostNetwork && p.ips.includes(c)) out.push({ namespace: p.metadata.namespace ?? '', pod: p.metadata.name });
    }
    return out;
  }

  /** Pod-network pods by IP, for per-pod metrics (host-network pods have no IP of their own). */
  pods(filter: { node?: string } = {}): [string, PodRef][] {
    const out: [string, PodRef][] = [];
    for (const [ip, p] of this.podIps.owners()) {
      if (filter.node !== undefined && p.node !== filter.node) continue;
      out.push([ip, { namespace: p.metadata.namespace ?? '', pod: p.metadata.name }]);
    }
    return out;
  }

  /** The workload a pod belongs to, following ReplicaSet -> Deployment and Job -> CronJob. */
  workloadOf(p: SlimPod): Workload {
    const o = p.owner;
    if (!o) return { kind: 'Pod', name: p.metadata.name };
    const ns = p.metadata.namespace;
    let parent: OwnerRef | undefined;
    if (o.kind === 'ReplicaSet') parent = this.rs?.informer.get(o.name, ns)?.owner;
    else if (o.kind === 'Job') parent = this.jobs?.informer.get(o.name, ns)?.owner;
    return parent ? { kind: parent.kind, name: parent.name } : { kind: o.kind, name: o.name };
  }

  /** Sizes of the indexes (for tests and the bench). */
  stats(): { pods: number; podIps: number; services: number; endpointIps: number; nodes: number; replicasets: number; jobs: number } {
    return {
      pods: this.podsByKey.size,
      podIps: this.podIps.size,
      services: this.servicesByKey.size,
      endpointIps: this.endpointIps.size,
      nodes: this.nodesByName.size,
      replicasets: this.rs?.informer.list().length ?? 0,
      jobs: this.jobs?.informer.list().length ?? 0,
    };
  }

  private podIdentity(p: SlimPod, ip: string): Identity {
    const namespace = p.metadata.namespace ?? '';
    const id: Identity = {
      kind: 'pod',
      namespace,
      pod: p.metadata.name,
      workload: this.workloadOf(p),
      labels: p.labels,
      node: p.node,
      hostNetwork: p.hostNetwork,
    };
    const ep = this.endpointIps.get(ip);
    if (ep && ep.namespace === namespace) id.service = ep.service;
    return id;
  }

  // ---- Cache maintenance ----------------------------------------------------------

  private podUpsert(p: SlimPod): void {
    const key = keyOf(p);
    let old = this.podsByKey.get(key);
    if (old && old.metadata.uid !== p.metadata.uid) {
      // Same name, new pod (e.g. a StatefulSet pod recreated during a watch gap).
      this.podRemove(key, old);
      old = undefined;
    }
    this.podsByKey.set(key, p);
    const index = p.hostNetwork ? this.hostNetIps : this.podIps;
    if (old && old.hostNetwork !== p.hostNetwork) {
      for (const ip of old.ips) (old.hostNetwork ? this.hostNetIps : this.podIps).remove(ip, key);
      old = { ...old, ips: [] };
    }
    index.set(key, p.ips, p, old?.ips ?? []);
    const had = old !== undefined && old.ips.length > 0;
    const has = p.ips.length > 0;
    const changed = had && (old!.ips.length !== p.ips.length || old!.ips.some((ip, i) => ip !== p.ips[i]));
    if (had && (!has || changed)) this.emit('podDeleted', podEvent(old!));
    if (has && (!had || changed)) this.emit('podAdded', podEvent(p));
  }

  private podDelete(p: SlimPod): void {
    const key = keyOf(p);
    const cur = this.podsByKey.get(key);
    // A late delete of an earlier pod of the same name must not remove its successor.
    if (!cur || (p.metadata.uid !== '' && cur.metadata.uid !== p.metadata.uid)) return;
    this.podRemove(key, cur);
  }

  private podRemove(key: string, p: SlimPod): void {
    const index = p.hostNetwork ? this.hostNetIps : this.podIps;
    for (const ip of p.ips) index.remove(ip, key);
    this.podsByKey.delete(key);
    if (p.ips.length > 0) this.emit('podDeleted', podEvent(p));
  }

  private serviceUpsert(s: SlimService): void {
    const key = keyOf(s);
    const old = this.servicesByKey.get(key);
    this.servicesByKey.set(key, s);
    this.clusterIps.set(key, s.clusterIPs, s, old?.clusterIPs ?? []);
  }

  private serviceDelete(s: SlimService): void {
    const key = keyOf(s);
    const old = this.servicesByKey.get(key);
    if (!old) return;
    for (const ip of old.clusterIPs) this.clusterIps.remove(ip, key);
    this.servicesByKey.delete(key);
  }

  private sliceUpsert(s: SlimEndpointSlice): void {
    const key = keyOf(s);
    const old = this.slicesByKey.get(key);
    this.slicesByKey.set(key, s);
    const ips = s.service ? s.addresses : [];
    this.endpointIps.set(key, ips, { namespace: s.metadata.namespace ?? '', service: s.service ?? '' }, old?.service ? old.addresses : []);
  }

  private sliceDelete(s: SlimEndpointSlice): void {
    const key = keyOf(s);
    const old = this.slicesByKey.get(key);
    if (!old) return;
    for (const ip of old.addresses) this.endpointIps.remove(ip, key);
    this.slicesByKey.delete(key);
  }

  private nodeUpsert(n: SlimNode): void {
    const key = n.metadata.name;
    const old = this.nodesByName.get(key);
    this.nodesByName.set(key, n);
    this.nodeIps.set(key, n.internalIPs, n, old?.internalIPs ?? []);
  }

  private nodeDelete(n: SlimNode): void {
    const key = n.metadata.name;
    const old = this.nodesByName.get(key);
    if (!old) return;
    for (const ip of old.internalIPs) this.nodeIps.remove(ip, key);
    this.nodesByName.delete(key);
  }
}
