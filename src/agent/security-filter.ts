/**
 * Filters for security events, shared by the API and the CLI: type (one or
 * more, comma-separated), severity (at least this one), source (the
 * attacker: an address or a CIDR block), and the identity filters of the
 * flows (namespace, pod, workload, service, label: the attacker or the
 * target is such a pod; parsed and matched by the code in flow-filter.ts).
 * Parsing names the bad parameter, as the flow filters do.
 */
import { BlockList, isIP } from 'node:net';
import { SECURITY_TYPES, SEVERITIES, type Severity } from '../abi/layouts.js';
import { FilterError, IDENTITY_FILTER_PARAMS, compileIdentityFilter, setIdentityParam, type IdentityFilter, type IdentityResolver } from './flow-filter.js';

/** Every security event type, including 'blocked' (enforce mode blocked a source). */
export const SECURITY_EVENT_TYPES: readonly string[] = Object.values(SECURITY_TYPES);

export const SECURITY_FILTER_PARAMS = ['type', 'severity', 'source', ...IDENTITY_FILTER_PARAMS] as const;

/** The identity filters (IdentityFilter) match when the attacker or the target is such a pod. */
export interface SecurityFilter extends IdentityFilter {
  /** Any of these types. */
  types?: string[];
  /** At least this severity (info < low < medium < high < critical). */
  severity?: Severity;
  /** The attacker is this address, or in this CIDR block. */
  source?: string;
}

/** What a security filter looks at. */
export interface SecurityFields {
  type: string;
  severity: string;
  attacker: { ip: string };
  target: { ip: string };
}

/** An address, or a CIDR block; undefined if neither. */
function parseSource(raw: string): { addr: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(raw);
  if (!m) return undefined;
  const fam = isIP(m[1]!);
  if (!fam) return undefined;
  const max = fam === 4 ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (prefix > max) return undefined;
  return { addr: m[1]!, prefix, family: fam === 4 ? 'ipv4' : 'ipv6' };
}

/** From query parameters or flags (strings); unknown names are refused. */
export function parseSecurityFilter(params: Record<string, string | undefined>): SecurityFilter {
  const f: SecurityFilter = {};
  for (const [name, raw] of Object.entries(params)) {
    if (raw === undefined || raw === '') continue;
    switch (name) {
      case 'type': {
        const types = raw.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean);
        const bad = types.find((t) => !SECURITY_EVENT_TYPES.includes(t));
        if (bad !== undefined || types.length === 0) {
          throw new FilterError('type', `not a security event type: ${JSON.stringify(bad ?? raw)} (types: ${SECURITY_EVENT_TYPES.join(', ')})`);
        }
        f.types = [...new Set(types)];
        break;
      }
      case 'severity': {
        const s = raw.toLowerCase();
        if (!(SEVERITIES as readonly string[]).includes(s)) throw new FilterError('severity', `must be ${SEVERITIES.join(', ')}; got ${JSON.stringify(raw)}`);
        f.severity = s as Severity;
        break;
      }
      case 'source':
        if (!parseSource(raw)) throw new FilterError('source', `not an IP address or CIDR block: ${JSON.stringify(raw)} (e.g. 198.18.0.2 or 10.0.0.0/8)`);
        f.source = raw;
        break;
      default:
        if (!setIdentityParam(f, name, raw)) throw new FilterError(name, `unknown filter (${SECURITY_FILTER_PARAMS.join(', ')})`);
    }
  }
  return f;
}

/** Matches an address against `source` (everything when there is none). */
export function sourceMatcher(source: string | undefined): (ip: string) => boolean {
  const s = source === undefined ? undefined : parseSource(source);
  if (!s) return () => true;
  const list = new BlockList();
  list.addSubnet(s.addr, s.prefix, s.family);
  return (ip) => {
    const fam = isIP(ip);
    return fam !== 0 && list.check(ip, fam === 4 ? 'ipv4' : 'ipv6');
  };
}

/** `identity` names the pod behind an address (Agent.identity); an address it does not know never matches an identity filter. */
export function compileSecurityFilter(f: SecurityFilter, identity: IdentityResolver = () => undefined): (e: SecurityFields) => boolean {
  const types = f.types ? new Set(f.types) : undefined;
  const least = f.severity === undefined ? 0 : SEVERITIES.indexOf(f.severity);
  const source = sourceMatcher(f.source);
  const ident = compileIdentityFilter(f);
  return (e) =>
    (types === undefined || types.has(e.type)) &&
    (least === 0 || SEVERITIES.indexOf(e.severity as Severity) >= least) &&
    source(e.attacker.ip) &&
    (ident === undefined || ident([identity(e.attacker.ip), identity(e.target.ip)]));
}
