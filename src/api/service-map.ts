/**
 * The service map: pods (with namespace, workload, service and labels), the
 * outside world, and the traffic between them, built from the live flows of
 * the agent's last pipeline cycle. Each edge is one (client, server,
 * protocol, server port) with bytes and packets per second both ways, the
 * connections behind it, and what should stand out: TCP resets, frames
 * dropped because the source is blocked, and recent security events between
 * its ends. Served as GET /api/v1/service-map (the flow filters narrow it:
 * namespace, workload, label, ...).
 *
 * The kernel counts a packet between two watched pods once, at the veth it
 * came in through; where a direction still has several observations (both
 * ends of one veth pair watched), it counts once, as in the conversations,
 * from the observation point that saw the most of it.
 */
import type { Context, Hono } from 'hono';
import type { Agent, FlowView } from '../agent/agent.js';
import { toConversations } from '../agent/conversations.js';
import { FLOW_FILTER_PARAMS, FilterError, compileFilter, parseFilter, type CompiledFilter, type FlowFilter } from '../agent/flow-filter.js';
import type { PodIdentity } from '../agent/inventory.js';
import { SEVERITIES, type Severity } from '../abi/layouts.js';
import type { Block, FlowKey, FlowStats, SecurityEvent } from '../types.js';

/** The node of every address that is no known pod. */
export const WORLD = 'world';

export interface MapNode {
  /** `pod:namespace/name`, or `world`. */
  id: string;
  kind: 'pod' | 'world';
  label: string;
  namespace: string | null;
  pod: string | null;
  workload: { kind: string; name: string } | null;
  service: string | null;
  labels: Record<string, string>;
  /** The pod's address; for the world, the addresses seen (the busiest first, at most MAX_WORLD_IPS). */
  ips: string[];
  /** Sums over the node's edges. */
  bytesPerSecIn: number;
  bytesPerSecOut: number;
  /** Some edge of it has resets, drops or security events. */
  alert: boolean;
}

export interface MapEdge {
  /** `source>target protocol/port` (port `*` when several are merged). */
  id: string;
  /** The client: the side that opened the connection where TCP tells it, else the one on the higher port. */
  source: string;
  target: string;
  protocol: string;
  /** The server port; null for ICMP, and where more than MAX_PORTS_PER_PAIR ports are merged. */
  port: number | null;
  /** Distinct server ports behind the edge (1 unless merged). */
  ports: number;
  /** Both directions: client to server plus server to client. */
  bytesPerSec: number;
  packetsPerSec: number;
  /** Totals of the live flows behind it. */
  bytes: number;
  packets: number;
  connections: number;
  resets: number;
  /** Frames dropped because the client side is blocked. */
  drops: number;
  /** Security events from the client side to the server side within SECURITY_WINDOW_MS. */
  securityEvents: number;
  /** The worst of them, or null. */
  severity: Severity | null;
  securityTypes: string[];
}

export interface ServiceMap {
  at: Date;
  nodes: MapNode[];
  edges: MapEdge[];
  /** Edges left out by `limit` (the quietest go first). */
  truncatedEdges: number;
  /** The security events looked at: those of the last windowMs. */
  securityWindowMs: number;
}

/** More server ports than this between one client and server on one protocol become one edge (a scan is one edge, not 200). */
export const MAX_PORTS_PER_PAIR = 8;
export const MAX_WORLD_IPS = 50;
export const SECURITY_WINDOW_MS = 5 * 60_000;
export const DEFAULT_EDGE_LIMIT = 20_000;
const MAX_EDGE_LIMIT = 200_000;

export interface ServiceMapInput {
  /** Live flows (any interface, either direction), each with its rate. */
  flows: readonly (FlowStats & { packetsPerSec: number; bytesPerSec: number })[];
  identity: (ip: string) => PodIdentity | undefined;
  /** Pods known by IP (inventory or cluster): shown even when idle, if the filter takes them. */
  knownPods: Iterable<[string, PodIdentity]>;
  /** Recent security events (older ones than the window are skipped). */
  securityEvents: readonly SecurityEvent[];
  blocks: readonly Block[];
  filter: FlowFilter;
  limit?: number;
  now?: Date;
}

const SEVERITY_RANK = new Map<string, number>(SEVERITIES.map((s, i) => [s, i]));

function podNodeId(id: PodIdentity): string {
  return `pod:${id.namespace}/${id.pod}`;
}

function tupleKey(k: FlowKey): string {
  return `${k.protocol} ${k.srcIp} ${k.srcPort} ${k.dstIp} ${k.dstPort}`;
}

/** A key with one address at both ends: what a filter says about a pod on its own. */
function addressKey(ip: string): FlowKey {
  return { family: ip.includes(':') ? 'ipv6' : 'ipv4', srcIp: ip, dstIp: ip, srcPort: 0, dstPort: 0, protocol: '', protocolNumber: 0, direction: 'ingress', ifindex: 0 } as FlowKey;
}

/** The filter's identity parts alone: whether an idle pod belongs on the map. */
function identityOnly(f: FlowFilter): FlowFilter {
  const out: FlowFilter = {};
  for (const k of ['ip', 'cidr', 'namespace', 'pod', 'workload', 'service', 'label'] as const) if (f[k] !== undefined) (out as Record<string, unknown>)[k] = f[k];
  return out;
}

const hasPortFilters = (f: FlowFilter): boolean => f.port !== undefined || f.protocol !== undefined || f.direction !== undefined || f.interface !== undefined;

export function buildServiceMap(input: ServiceMapInput): ServiceMap {
  const now = input.now ?? new Date();
  const identity = input.identity;
  const match: CompiledFilter = compileFilter(input.filter, identity);
  const nodes = new Map<string, MapNode>();
  const worldIps = new Map<string, number>();

  const podNode = (id: PodIdentity, ip: string): MapNode => {
    const nid = podNodeId(id);
    let n = nodes.get(nid);
    if (!n) {
      n = {
        id: nid,
        kind: 'pod',
        label: id.pod,
        namespace: id.namespace,
        pod: id.pod,
        workload: id.workload ? { kind: id.workload.kind, name: id.workload.name } : null,
        service: id.service ?? null,
        labels: { ...id.labels },
        ips: [ip],
        bytesPerSecIn: 0,
        bytesPerSecOut: 0,
        alert: false,
      };
      nodes.set(nid, n);
    } else if (!n.ips.includes(ip)) n.ips.push(ip);
    return n;
  };
  const nodeOf = (ip: string, bytesPerSec = 0): MapNode => {
    const id = identity(ip);
    if (id) return podNode(id, ip);
    worldIps.set(ip, (worldIps.get(ip) ?? 0) + bytesPerSec);
    let w = nodes.get(WORLD);
    if (!w) {
      w = { id: WORLD, kind: 'world', label: 'world', namespace: null, pod: null, workload: null, service: null, labels: {}, ips: [], bytesPerSecIn: 0, bytesPerSecOut: 0, alert: false };
      nodes.set(WORLD, w);
    }
    return w;
  };

  // Idle pods the filter takes (by identity alone; a port or protocol filter shows only pods with such traffic).
  if (!hasPortFilters(input.filter)) {
    const takes = compileFilter(identityOnly(input.filter), identity);
    for (const [ip, id] of input.knownPods) if (takes(addressKey(ip), undefined)) podNode(id, ip);
  }

  // Each direction once: its busiest observation's rate.
  const live = input.flows.filter((f) => match(f.key, f.interface));
  const rate = new Map<string, { bytesPerSec: number; packetsPerSec: number; packets: number }>();
  for (const f of live) {
    const t = tupleKey(f.key);
    const r = rate.get(t);
    if (!r || f.packets > r.packets) rate.set(t, { bytesPerSec: f.bytesPerSec, packetsPerSec: f.packetsPerSec, packets: f.packets });
  }

  // Conversations (client and server sorted out) become edges by (client node, server node, protocol, server port).
  const byPort = new Map<string, MapEdge>();
  for (const c of toConversations(live)) {
    const ab = `${c.a.ip} ${c.a.port} ${c.b.ip} ${c.b.port}`;
    const ba = `${c.b.ip} ${c.b.port} ${c.a.ip} ${c.a.port}`;
    const fwd = rate.get(`${c.protocol} ${ab}`);
    const rev = rate.get(`${c.protocol} ${ba}`);
    const bytesPerSec = (fwd?.bytesPerSec ?? 0) + (rev?.bytesPerSec ?? 0);
    const packetsPerSec = (fwd?.packetsPerSec ?? 0) + (rev?.packetsPerSec ?? 0);
    // Between two addresses that are no pods: not on the map.
    if (!identity(c.a.ip) && !identity(c.b.ip)) continue;
    const src = nodeOf(c.a.ip, bytesPerSec);
    const dst = nodeOf(c.b.ip, bytesPerSec);
    const hasPorts = c.protocol === 'TCP' || c.protocol === 'UDP';
    const port = hasPorts ? c.b.port : null;
    const key = `${src.id}>${dst.id} ${c.protocol}/${port ?? '-'}`;
    let e = byPort.get(key);
    if (!e) {
      e = {
        id: key,
        source: src.id,
        target: dst.id,
        protocol: c.protocol,
        port,
        ports: 1,
        bytesPerSec: 0,
        packetsPerSec: 0,
        bytes: 0,
        packets: 0,
        connections: 0,
        resets: 0,
        drops: 0,
        securityEvents: 0,
        severity: null,
        securityTypes: [],
      };
      byPort.set(key, e);
    }
    e.bytesPerSec += bytesPerSec;
    e.packetsPerSec += packetsPerSec;
    e.bytes += c.aToB.bytes + c.bToA.bytes;
    e.packets += c.aToB.packets + c.bToA.packets;
    e.connections += 1;
    e.resets += c.rstCount;
  }

  // Many ports between one pair on one protocol (a scan): one edge.
  const byPair = new Map<string, MapEdge[]>();
  for (const e of byPort.values()) {
    const k = `${e.source}>${e.target} ${e.protocol}`;
    const list = byPair.get(k);
    if (list) list.push(e);
    else byPair.set(k, [e]);
  }
  let edges: MapEdge[] = [];
  for (const [k, list] of byPair) {
    if (list.length <= MAX_PORTS_PER_PAIR) {
      edges.push(...list);
      continue;
    }
    const first = list[0]!;
    const merged: MapEdge = { ...first, id: `${k}/*`, port: null, ports: list.length, bytesPerSec: 0, packetsPerSec: 0, bytes: 0, packets: 0, connections: 0, resets: 0 };
    for (const e of list) {
      merged.bytesPerSec += e.bytesPerSec;
      merged.packetsPerSec += e.packetsPerSec;
      merged.bytes += e.bytes;
      merged.packets += e.packets;
      merged.connections += e.connections;
      merged.resets += e.resets;
    }
    edges.push(merged);
  }

  // Security events of the window, from the attacker's node to the target's, on the edges between them (or an edge of their own).
  const since = now.getTime() - SECURITY_WINDOW_MS;
  const pairEdges = (s: string, t: string): MapEdge[] => edges.filter((e) => e.source === s && e.target === t);
  for (const ev of input.securityEvents) {
    if (ev.timestamp.getTime() < since || !match(ev.key, ev.interface)) continue;
    if (!identity(ev.attacker.ip) && !identity(ev.target.ip)) continue;
    const s = nodeOf(ev.attacker.ip);
    const t = nodeOf(ev.target.ip);
    let on = pairEdges(s.id, t.id);
    if (on.length === 0) {
      const protocol = ev.key.protocol || 'IP';
      const port = protocol === 'TCP' || protocol === 'UDP' ? ev.target.port : null;
      const e: MapEdge = {
        id: `${s.id}>${t.id} ${protocol}/${port ?? '-'} security`,
        source: s.id,
        target: t.id,
        protocol,
        port,
        ports: 1,
        bytesPerSec: 0,
        packetsPerSec: 0,
        bytes: 0,
        packets: 0,
        connections: 0,
        resets: 0,
        drops: 0,
        securityEvents: 0,
        severity: null,
        securityTypes: [],
      };
      edges.push(e);
      on = [e];
    }
    for (const e of on) {
      e.securityEvents += 1;
      if (e.severity === null || (SEVERITY_RANK.get(ev.severity) ?? 0) > (SEVERITY_RANK.get(e.severity) ?? 0)) e.severity = ev.severity;
      if (!e.securityTypes.includes(ev.type)) e.securityTypes.push(ev.type);
    }
  }

  // Frames dropped because the client side is blocked.
  for (const b of input.blocks) {
    if (b.packetsDropped === 0) continue;
    const id = identity(b.ip);
    const sid = id ? podNodeId(id) : WORLD;
    for (const e of edges) if (e.source === sid) e.drops += b.packetsDropped;
  }

  const limit = input.limit ?? DEFAULT_EDGE_LIMIT;
  let truncatedEdges = 0;
  if (edges.length > limit) {
    // The ones that stand out stay; then the busiest.
    const standsOut = (e: MapEdge): number => (e.resets > 0 || e.drops > 0 || e.securityEvents > 0 ? 1 : 0);
    edges.sort((x, y) => standsOut(y) - standsOut(x) || y.bytesPerSec - x.bytesPerSec || y.bytes - x.bytes);
    truncatedEdges = edges.length - limit;
    edges = edges.slice(0, limit);
  }
  for (const e of edges) {
    const s = nodes.get(e.source)!;
    const t = nodes.get(e.target)!;
    s.bytesPerSecOut += e.bytesPerSec;
    t.bytesPerSecIn += e.bytesPerSec;
    if (e.resets > 0 || e.drops > 0 || e.securityEvents > 0) s.alert = t.alert = true;
  }
  const world = nodes.get(WORLD);
  if (world) {
    world.ips = [...worldIps.entries()]
      .sort((x, y) => y[1] - x[1])
      .slice(0, MAX_WORLD_IPS)
      .map(([ip]) => ip);
  }
  return { at: now, nodes: [...nodes.values()], edges, truncatedEdges, securityWindowMs: SECURITY_WINDOW_MS };
}

/** Query parameters: the flow filters and `limit` (edges, the busiest kept). */
function parseQuery(q: Record<string, string>): { filter: FlowFilter; limit: number } {
  const params: Record<string, string> = {};
  let limit = DEFAULT_EDGE_LIMIT;
  for (const [k, v] of Object.entries(q)) {
    if (k === 'limit') {
      if (!/^\d{1,7}$/.test(v) || Number(v) < 1 || Number(v) > MAX_EDGE_LIMIT) throw new FilterError('limit', `must be a whole number from 1 to ${MAX_EDGE_LIMIT}, got ${JSON.stringify(v)}`);
      limit = Number(v);
    } else if ((FLOW_FILTER_PARAMS as readonly string[]).includes(k)) params[k] = v;
    else throw new FilterError(k, `unknown parameter (${[...FLOW_FILTER_PARAMS, 'limit'].join(', ')})`);
  }
  return { filter: parseFilter(params), limit };
}

/**
 * The flows the map is drawn from: the live ones, and those that ended less
 * than the idle timeout ago (a closed connection leaves the kernel table
 * after endedTimeoutMs, 2 s, but stays on the map as long as an idle flow
 * would have stayed in the table), the latter with no rate.
 */
function mapFlows(agent: Agent): FlowView[] {
  const since = Date.now() - agent.config.idleTimeoutMs;
  const out: FlowView[] = [];
  for (const f of agent.flows({}, Number.POSITIVE_INFINITY)) {
    if (f.state === 'live') out.push(f);
    else if (f.lastSeen.getTime() >= since) out.push({ ...f, packetsPerSec: 0, bytesPerSec: 0 });
  }
  return out;
}

/** The agent's service map now, narrowed by a filter. */
export function agentServiceMap(agent: Agent, filter: FlowFilter, limit: number): ServiceMap {
  return buildServiceMap({
    flows: mapFlows(agent),
    identity: (ip) => agent.identity(ip),
    knownPods: agent.knownPods(),
    securityEvents: agent.recentSecurityEvents({}),
    blocks: agent.blocks(),
    filter,
    limit,
  });
}

/** Registers GET /api/v1/service-map; errors (a bad filter: FilterError) go to the server's one error handler. */
export function registerServiceMap(app: Hono, agent: Agent, json: (c: Context, body: unknown) => Response): void {
  app.get('/api/v1/service-map', (c) => {
    const { filter, limit } = parseQuery(c.req.query());
    return json(c, agentServiceMap(agent, filter, limit));
  });
}
