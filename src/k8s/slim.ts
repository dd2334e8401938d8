/**
 * The few fields the identity cache keeps from each Kubernetes object.
 *
 * Objects arrive as parsed JSON (list pages and watch events) and are
 * reduced here before anything stores them, so the informers' caches hold
 * only these slim records (bounded memory: see docs/kubernetes.md). Strings
 * that repeat across objects (namespaces, node names, owner kinds, label
 * keys and values) are interned so that 10 000 pods share one copy of each.
 */

/** The metadata every slim record keeps (what the informer cache keys on). */
export interface SlimMeta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion?: string;
}

export interface OwnerRef {
  kind: string;
  name: string;
}

export interface SlimPod {
  metadata: SlimMeta;
  /** Pod IPs (status.podIPs, or status.podIP); empty once the pod has finished (Succeeded/Failed). */
  ips: string[];
  node: string;
  hostNetwork: boolean;
  /** The controller owner reference, if any. */
  owner?: OwnerRef;
  /** Only the labels the allowlist admits. */
  labels: Record<string, string>;
}

export interface ServicePort {
  name?: string;
  protocol: string;
  port: number;
}

export interface SlimService {
  metadata: SlimMeta;
  /** spec.clusterIPs (or spec.clusterIP); "None" (headless) is dropped. */
  clusterIPs: string[];
  ports: ServicePort[];
}

export interface SlimEndpointSlice {
  metadata: SlimMeta;
  /** The kubernetes.io/service-name label. */
  service?: string;
  addresses: string[];
}

export interface SlimNode {
  metadata: SlimMeta;
  internalIPs: string[];
}

/** A ReplicaSet or a Job: only who controls it. */
export interface SlimOwnerObject {
  metadata: SlimMeta;
  owner?: OwnerRef;
}

// ---- Helpers over parsed JSON (unknown) ------------------------------------

type Json = Record<string, unknown>;

function obj(v: unknown): Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

const pool = new Map<string, string>();
const POOL_MAX = 200_000;

/**
 * One shared copy of a repeating string. The pool is bounded: past
 * POOL_MAX entries it is cleared (the strings stay alive where used).
 */
export function intern(s: string): string {
  const hit = pool.get(s);
  if (hit !== undefined) return hit;
  if (pool.size >= POOL_MAX) pool.clear();
  pool.set(s, s);
  return s;
}

function meta(o: Json, namespaced: boolean): SlimMeta {
  const m = obj(o.metadata);
  // Names are unique per object: not interned (the pool would only grow).
  const out: SlimMeta = { name: str(m.name) ?? '', uid: str(m.uid) ?? '' };
  const ns = str(m.namespace);
  if (namespaced && ns !== undefined) out.namespace = intern(ns);
  const rv = str(m.resourceVersion);
  if (rv !== undefined) out.resourceVersion = rv;
  return out;
}

function controllerOf(o: Json): OwnerRef | undefined {
  const refs = arr(obj(o.metadata).ownerReferences).map(obj);
  const ref = refs.find((r) => r.controller === true) ?? refs[0];
  if (!ref) return undefined;
  const kind = str(ref.kind);
  const name = str(ref.name);
  return kind && name ? { kind: intern(kind), name: intern(name) } : undefined;
}

/**
 * One spelling per address, so that lookups match whatever form the caller
 * has: IPv4-mapped IPv6 (::ffff:10.0.0.1) becomes IPv4, IPv6 is compressed
 * and lower-cased.
 */
export function canonicalIp(ip: string): string {
  if (!ip.includes(':')) return ip;
  const lower = ip.toLowerCase();
  if (lower.startsWith('::ffff:') && lower.includes('.')) return lower.slice(7);
  try {
    const host = new URL(`http://[${lower}]/`).hostname;
    const v6 = host.slice(1, -1);
    // URL writes an IPv4-mapped address in hex (::ffff:a00:1): back to dotted IPv4.
    const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
    if (m) {
      const hi = parseInt(m[1]!, 16);
      const lo = parseInt(m[2]!, 16);
      return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
    }
    return v6;
  } catch {
    return lower;
  }
}

function ipList(ips: Iterable<string>): string[] {
  const out: string[] = [];
  for (const ip of ips) {
    const c = canonicalIp(ip);
    if (c !== '' && !out.includes(c)) out.push(c);
  }
  return out;
}

// ---- Label allowlist --------------------------------------------------------

/**
 * Which labels to keep: exact keys ("app.kubernetes.io/name"), or prefixes
 * ending in "*" ("app.kubernetes.io/*"). An empty list keeps none.
 */
export type LabelFilter = (key: string) => boolean;

export function labelFilter(allow: readonly string[]): LabelFilter {
  const exact = new Set(allow.filter((a) => !a.endsWith('*')));
  const prefixes = allow.filter((a) => a.endsWith('*')).map((a) => a.slice(0, -1));
  if (exact.size === 0 && prefixes.length === 0) return () => false;
  return (key) => exact.has(key) || prefixes.some((p) => key.startsWith(p));
}

function labels(o: Json, keep: LabelFilter): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(obj(o.metadata).labels))) {
    if (typeof v === 'string' && keep(k)) out[intern(k)] = intern(v);
  }
  return out;
}

// ---- Reducers ----------------------------------------------------------------

export function slimPod(raw: unknown, keep: LabelFilter): SlimPod {
  const o = obj(raw);
  const spec = obj(o.spec);
  const status = obj(o.status);
  const phase = str(status.phase);
  let ips: string[] = [];
  // A finished pod's sandbox is gone and its IP may already belong to another pod.
  if (phase !== 'Succeeded' && phase !== 'Failed') {
    ips = arr(status.podIPs)
      .map((p) => str(obj(p).ip))
      .filter((ip): ip is string => ip !== undefined && ip !== '');
    const single = str(status.podIP);
    if (ips.length === 0 && single) ips = [single];
  }
  const pod: SlimPod = {
    metadata: meta(o, true),
    ips: ipList(ips),
    node: intern(str(spec.nodeName) ?? ''),
    hostNetwork: spec.hostNetwork === true,
    labels: labels(o, keep),
  };
  const owner = controllerOf(o);
  if (owner) pod.owner = owner;
  return pod;
}

export function slimService(raw: unknown): SlimService {
  const o = obj(raw);
  const spec = obj(o.spec);
  let ips = arr(spec.clusterIPs).map(str).filter((s): s is string => s !== undefined);
  const single = str(spec.clusterIP);
  if (ips.length === 0 && single) ips = [single];
  const ports = arr(spec.ports).map((p) => {
    const po = obj(p);
    const port: ServicePort = { protocol: intern(str(po.protocol) ?? 'TCP'), port: typeof po.port === 'number' ? po.port : 0 };
    const name = str(po.name);
    if (name) port.name = intern(name);
    return port;
  });
  return { metadata: meta(o, true), clusterIPs: ipList(ips.filter((ip) => ip !== '' && ip !== 'None')), ports };
}

export function slimEndpointSlice(raw: unknown): SlimEndpointSlice {
  const o = obj(raw);
  const addresses: string[] = [];
  for (const ep of arr(o.endpoints).map(obj)) {
    for (const a of arr(ep.addresses)) if (typeof a === 'string') addresses.push(a);
  }
  const slice: SlimEndpointSlice = { metadata: meta(o, true), addresses: ipList(addresses) };
  const service = str(obj(obj(o.metadata).labels)['kubernetes.io/service-name']);
  if (service) slice.service = intern(service);
  return slice;
}

export function slimNode(raw: unknown): SlimNode {
  const o = obj(raw);
  const internalIPs = arr(obj(o.status).addresses)
    .map(obj)
    .filter((a) => a.type === 'InternalIP')
    .map((a) => str(a.address))
    .filter((s): s is string => s !== undefined && s !== '');
  return { metadata: meta(o, false), internalIPs: ipList(internalIPs) };
}

export function slimOwnerObject(raw: unknown): SlimOwnerObject {
  const o = obj(raw);
  const out: SlimOwnerObject = { metadata: meta(o, true) };
  const owner = controllerOf(o);
  if (owner) out.owner = owner;
  return out;
}
