/**
 * Flow filters shared by the API and the CLI: ip, cidr, port, protocol,
 * direction, interface, and by identity (namespace, pod, workload, service,
 * label). Parsing names the bad parameter.
 */
import { BlockList, isIP } from 'node:net';
import { InvalidArgumentError } from '../errors.js';
import type { FlowKey } from '../types.js';

/** The identity filters, shared by flows and security events: each matches when either end (either address) is such a pod. */
export interface IdentityFilter {
  /** Either end is a pod in this namespace (where identity is known). */
  namespace?: string;
  /** Either end is this pod: "name" or "namespace/name". */
  pod?: string;
  /** Either end is a pod of this workload: "name" or "kind/name" (kind in any case, e.g. Deployment/web). */
  workload?: string;
  /** Either end is a pod behind this service: "name" or "namespace/name". */
  service?: string;
  /** Either end is a pod with this label: "key=value" (the labels the identity keeps). */
  label?: string;
}

export interface FlowFilter extends IdentityFilter {
  ip?: string;
  cidr?: string;
  port?: number;
  protocol?: string;
  direction?: 'ingress' | 'egress';
  interface?: string;
}

/** What the identity filters look at (PodIdentity in inventory.ts has this shape). */
export interface FilterIdentity {
  namespace: string;
  pod: string;
  labels?: Readonly<Record<string, string>>;
  workload?: { kind: string; name: string };
  service?: string;
}

/** Identity of an address, where known. */
export type IdentityResolver = (ip: string) => FilterIdentity | undefined;

export interface CompiledFilter {
  (key: FlowKey, iface: string | undefined): boolean;
}

export class FilterError extends InvalidArgumentError {
  constructor(
    readonly param: string,
    message: string,
  ) {
    super(`${param}: ${message}`);
  }
}

/** The identity filters' parameter names (flows and security events). */
export const IDENTITY_FILTER_PARAMS = ['namespace', 'pod', 'workload', 'service', 'label'] as const;

/** The flow filters' parameter names. */
export const FLOW_FILTER_PARAMS = ['ip', 'cidr', 'port', 'protocol', 'direction', 'interface', ...IDENTITY_FILTER_PARAMS] as const;

/**
 * The identity filters the history cannot answer: it keeps each end's
 * namespace, pod, workload and service as they were when a row was written,
 * but not its labels.
 */
export const LIVE_IDENTITY_PARAMS = ['label'] as const;

/** Why a LIVE_IDENTITY_PARAMS filter is refused with since/until (history.md, api.md). */
export const LIVE_ONLY_MESSAGE = "the history keeps each end's namespace, pod, workload and service, not its labels: filter by label on live flows and events (without since/until)";

const PROTOCOLS = new Set(['tcp', 'udp', 'icmp', 'icmpv6']);
/** Kubernetes object names: DNS labels and subdomains. */
const K8S_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
/** Kinds of workload: Deployment, StatefulSet, DaemonSet, CronJob, Job, ReplicaSet, Pod... */
const KIND = /^[A-Za-z][A-Za-z0-9]{0,62}$/;
/** A label's name part, and its value (which may be empty). */
const LABEL_NAME = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/;

/** "key=value" with a Kubernetes label key ([prefix/]name) and value; undefined if not. */
export function parseLabel(raw: string): { key: string; value: string } | undefined {
  const eq = raw.indexOf('=');
  if (eq <= 0) return undefined;
  const key = raw.slice(0, eq);
  const value = raw.slice(eq + 1);
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !K8S_NAME.test(prefix))) return undefined;
  if (!LABEL_NAME.test(name) || !LABEL_VALUE.test(value)) return undefined;
  return { key, value };
}

/**
 * One identity filter parameter, checked and set on `f`; false if `name` is
 * not an identity filter. parseFilter and parseSecurityFilter both use it, so
 * a bad value gets the same message from either.
 */
export function setIdentityParam(f: IdentityFilter, name: string, raw: string): boolean {
  switch (name) {
    case 'namespace':
      if (!K8S_NAME.test(raw)) throw new FilterError('namespace', `not a namespace name: ${JSON.stringify(raw)}`);
      f.namespace = raw;
      break;
    case 'pod': {
      const parts = raw.split('/');
      if (parts.length > 2 || !parts.every((p) => K8S_NAME.test(p))) throw new FilterError('pod', `not a pod name or namespace/name: ${JSON.stringify(raw)}`);
      f.pod = raw;
      break;
    }
    case 'workload': {
      const parts = raw.split('/');
      const ok = parts.length === 1 ? K8S_NAME.test(raw) : parts.length === 2 && KIND.test(parts[0]!) && K8S_NAME.test(parts[1]!);
      if (!ok) throw new FilterError('workload', `not a workload name or kind/name (e.g. Deployment/web): ${JSON.stringify(raw)}`);
      f.workload = raw;
      break;
    }
    case 'service': {
      const parts = raw.split('/');
      if (parts.length > 2 || !parts.every((p) => K8S_NAME.test(p))) throw new FilterError('service', `not a service name or namespace/name: ${JSON.stringify(raw)}`);
      f.service = raw;
      break;
    }
    case 'label':
      if (!parseLabel(raw)) throw new FilterError('label', `not key=value with a Kubernetes label key and value (e.g. app=web): ${JSON.stringify(raw)}`);
      f.label = raw;
      break;
    default:
      return false;
  }
  return true;
}

/** The identity filters alone (as /metrics and the event history take them); any other name is refused. */
export function parseIdentityFilter(params: Record<string, string | undefined>): IdentityFilter {
  const f: IdentityFilter = {};
  for (const [name, raw] of Object.entries(params)) {
    if (raw !== undefined && !setIdentityParam(f, name, raw)) throw new FilterError(name, `unknown filter (${IDENTITY_FILTER_PARAMS.join(', ')})`);
  }
  return f;
}

/** From query parameters or flags (strings); unknown names are refused. */
export function parseFilter(params: Record<string, string | undefined>): FlowFilter {
  const f: FlowFilter = {};
  for (const [name, raw] of Object.entries(params)) {
    if (raw === undefined || raw === '') continue;
    switch (name) {
      case 'ip':
        if (!isIP(raw)) throw new FilterError('ip', `not an IP address: ${JSON.stringify(raw)}`);
        f.ip = raw;
        break;
      case 'cidr': {
        const m = /^(.+)\/(\d{1,3})$/.exec(raw);
        const fam = m ? isIP(m[1]!) : 0;
        if (!m || !fam || Number(m[2]) > (fam === 4 ? 32 : 128)) throw new FilterError('cidr', `not a CIDR block: ${JSON.stringify(raw)} (e.g. 10.0.0.0/8)`);
        f.cidr = raw;
        break;
      }
      case 'port': {
        const n = Number(raw);
        if (!/^\d{1,5}$/.test(raw) || n > 65535) throw new FilterError('port', `not a port number: ${JSON.stringify(raw)}`);
        f.port = n;
        break;
      }
      case 'protocol':
        if (!PROTOCOLS.has(raw.toLowerCase())) throw new FilterError('protocol', `must be tcp, udp, icmp or icmpv6, got ${JSON.stringify(raw)}`);
        f.protocol = raw.toLowerCase();
        break;
      case 'direction':
        if (raw !== 'ingress' && raw !== 'egress') throw new FilterError('direction', `must be ingress or egress, got ${JSON.stringify(raw)}`);
        f.direction = raw;
        break;
      case 'interface':
        if (!/^[\x21-\x7e]{1,15}$/.test(raw)) throw new FilterError('interface', `not an interface name: ${JSON.stringify(raw)}`);
        f.interface = raw;
        break;
      default:
        if (!setIdentityParam(f, name, raw)) throw new FilterError(name, `unknown filter (${FLOW_FILTER_PARAMS.join(', ')})`);
    }
  }
  return f;
}

/**
 * The identity filters as one test over the identities of a record's ends
 * (a flow's source and destination, an event's attacker and target; undefined
 * where unknown): each filter given must match at least one end. Undefined
 * when the filter has no identity part, so callers need not resolve anything.
 */
export function compileIdentityFilter(f: IdentityFilter): ((ends: readonly (FilterIdentity | undefined)[]) => boolean) | undefined {
  const tests: ((id: FilterIdentity) => boolean)[] = [];
  if (f.namespace !== undefined) {
    const ns = f.namespace;
    tests.push((id) => id.namespace === ns);
  }
  if (f.pod !== undefined) {
    const pod = f.pod;
    tests.push(pod.includes('/') ? (id) => `${id.namespace}/${id.pod}` === pod : (id) => id.pod === pod);
  }
  if (f.workload !== undefined) {
    const slash = f.workload.indexOf('/');
    const kind = slash < 0 ? undefined : f.workload.slice(0, slash).toLowerCase();
    const name = f.workload.slice(slash + 1);
    tests.push((id) => id.workload !== undefined && id.workload.name === name && (kind === undefined || id.workload.kind.toLowerCase() === kind));
  }
  if (f.service !== undefined) {
    const svc = f.service;
    tests.push((id) => id.service !== undefined && (svc.includes('/') ? `${id.namespace}/${id.service}` === svc : id.service === svc));
  }
  if (f.label !== undefined) {
    const label = parseLabel(f.label);
    tests.push((id) => label !== undefined && id.labels !== undefined && Object.hasOwn(id.labels, label.key) && id.labels[label.key] === label.value);
  }
  if (tests.length === 0) return undefined;
  // An unknown end never matches an identity filter.
  return (ends) => tests.every((t) => ends.some((id) => id !== undefined && t(id)));
}

export function compileFilter(f: FlowFilter, identity: IdentityResolver = () => undefined): CompiledFilter {
  let block: BlockList | undefined;
  if (f.cidr) {
    const [addr, prefix] = f.cidr.split('/') as [string, string];
    block = new BlockList();
    block.addSubnet(addr, Number(prefix), isIP(addr) === 4 ? 'ipv4' : 'ipv6');
  }
  const inBlock = (ip: string): boolean => block!.check(ip, isIP(ip) === 4 ? 'ipv4' : 'ipv6');
  const ident = compileIdentityFilter(f);
  return (k, iface) =>
    (f.ip === undefined || k.srcIp === f.ip || k.dstIp === f.ip) &&
    (block === undefined || inBlock(k.srcIp) || inBlock(k.dstIp)) &&
    (f.port === undefined || k.srcPort === f.port || k.dstPort === f.port) &&
    (f.protocol === undefined || k.protocol.toLowerCase() === f.protocol) &&
    (f.direction === undefined || k.direction === f.direction) &&
    (f.interface === undefined || iface === f.interface) &&
    (ident === undefined || ident([identity(k.srcIp), identity(k.dstIp)]));
}

/** The filter's address parts (ip, cidr) alone, for things that have one address (a block). */
export function addressMatcher(f: FlowFilter): (ip: string) => boolean {
  const match = compileFilter({ ...(f.ip !== undefined ? { ip: f.ip } : {}), ...(f.cidr !== undefined ? { cidr: f.cidr } : {}) });
  return (ip) => {
    const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    return match({ family, srcIp: ip, dstIp: ip, srcPort: 0, dstPort: 0, protocol: '', protocolNumber: 0, direction: 'ingress', ifindex: 0 }, undefined);
  };
}
