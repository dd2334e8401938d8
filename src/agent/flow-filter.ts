/**
 * Flow filters shared by the API and the CLI: ip, cidr, port, protocol,
 * direction, interface. Parsing names the bad parameter.
 */
import { BlockList, isIP } from 'node:net';
import { InvalidArgumentError } from '../errors.js';
import type { FlowKey } from '../types.js';

export interface FlowFilter {
  ip?: string;
  cidr?: string;
  port?: number;
  protocol?: string;
  direction?: 'ingress' | 'egress';
  interface?: string;
  /** Either end is a pod in this namespace (where identity is known). */
  namespace?: string;
  /** Either end is this pod: "name" or "namespace/name". */
  pod?: string;
}

/** Identity of an address, where known. */
export type IdentityResolver = (ip: string) => { namespace: string; pod: string } | undefined;

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

/** The flow filters' parameter names. */
export const FLOW_FILTER_PARAMS = ['ip', 'cidr', 'port', 'protocol', 'direction', 'interface', 'namespace', 'pod'] as const;

const PROTOCOLS = new Set(['tcp', 'udp', 'icmp', 'icmpv6']);
/** Kubernetes object names: DNS labels and subdomains. */
const K8S_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

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
      default:
        throw new FilterError(name, `unknown filter (${FLOW_FILTER_PARAMS.join(', ')})`);
    }
  }
  return f;
}

export function compileFilter(f: FlowFilter, identity: IdentityResolver = () => undefined): CompiledFilter {
  let block: BlockList | undefined;
  if (f.cidr) {
    const [addr, prefix] = f.cidr.split('/') as [string, string];
    block = new BlockList();
    block.addSubnet(addr, Number(prefix), isIP(addr) === 4 ? 'ipv4' : 'ipv6');
  }
  const inBlock = (ip: string): boolean => block!.check(ip, isIP(ip) === 4 ? 'ipv4' : 'ipv6');
  const isIn = (ip: string, test: (id: { namespace: string; pod: string }) => boolean): boolean => {
    const id = identity(ip);
    return id !== undefined && test(id);
  };
  const podMatch = (id: { namespace: string; pod: string }): boolean => (f.pod!.includes('/') ? `${id.namespace}/${id.pod}` === f.pod : id.pod === f.pod);
  return (k, iface) =>
    (f.ip === undefined || k.srcIp === f.ip || k.dstIp === f.ip) &&
    (block === undefined || inBlock(k.srcIp) || inBlock(k.dstIp)) &&
    (f.port === undefined || k.srcPort === f.port || k.dstPort === f.port) &&
    (f.protocol === undefined || k.protocol.toLowerCase() === f.protocol) &&
    (f.direction === undefined || k.direction === f.direction) &&
    (f.interface === undefined || iface === f.interface) &&
    (f.namespace === undefined || isIn(k.srcIp, (id) => id.namespace === f.namespace) || isIn(k.dstIp, (id) => id.namespace === f.namespace)) &&
    (f.pod === undefined || isIn(k.srcIp, podMatch) || isIn(k.dstIp, podMatch));
}

/** The filter's address parts (ip, cidr) alone, for things that have one address (a block). */
export function addressMatcher(f: FlowFilter): (ip: string) => boolean {
  const match = compileFilter({ ...(f.ip !== undefined ? { ip: f.ip } : {}), ...(f.cidr !== undefined ? { cidr: f.cidr } : {}) });
  return (ip) => {
    const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    return match({ family, srcIp: ip, dstIp: ip, srcPort: 0, dstPort: 0, protocol: '', protocolNumber: 0, direction: 'ingress', ifindex: 0 }, undefined);
  };
}
