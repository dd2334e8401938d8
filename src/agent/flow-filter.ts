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
}

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

const PROTOCOLS = new Set(['tcp', 'udp', 'icmp', 'icmpv6']);

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
        throw new FilterError(name, 'unknown filter (ip, cidr, port, protocol, direction, interface)');
    }
  }
  return f;
}

export function compileFilter(f: FlowFilter): CompiledFilter {
  let block: BlockList | undefined;
  if (f.cidr) {
    const [addr, prefix] = f.cidr.split('/') as [string, string];
    block = new BlockList();
    block.addSubnet(addr, Number(prefix), isIP(addr) === 4 ? 'ipv4' : 'ipv6');
  }
  const inBlock = (ip: string): boolean => block!.check(ip, isIP(ip) === 4 ? 'ipv4' : 'ipv6');
  return (k, iface) =>
    (f.ip === undefined || k.srcIp === f.ip || k.dstIp === f.ip) &&
    (block === undefined || inBlock(k.srcIp) || inBlock(k.dstIp)) &&
    (f.port === undefined || k.srcPort === f.port || k.dstPort === f.port) &&
    (f.protocol === undefined || k.protocol.toLowerCase() === f.protocol) &&
    (f.direction === undefined || k.direction === f.direction) &&
    (f.interface === undefined || iface === f.interface);
}
