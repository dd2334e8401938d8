/**
 * The stable JSON lines: one shape per kind of record, shared by the CLI's
 * `-o json` output and the exporters (JSON lines, OTLP). The field names
 * are documented in the README ("The command") and must not change; new
 * fields may only be added.
 *
 * The builders take the API's wire types (dates as ISO strings, sequence
 * numbers as strings), which is what the CLI has; the exporters build the
 * same wire objects from the agent's in-memory records (./records.ts), so
 * both paths go through one definition of each line.
 */

/** Pod identity of one end, as the API sends it (PodIdentity in src/agent/inventory.ts; labels left out here). */
export interface IdentityWire {
  namespace: string;
  pod: string;
  /** What owns the pod (a Deployment through its ReplicaSet, a CronJob through its Job; Pod for a bare pod), where known. */
  workload?: { kind: string; name: string } | undefined;
  /** A service whose endpoints list the pod (in the pod's namespace), where known. */
  service?: string | undefined;
  /** The node the pod runs on, where known. */
  node?: string | undefined;
}

/** A workload as the json lines give it: "Kind/name" (Deployment/web), or null where unknown. */
export function workloadName(w: { kind: string; name: string } | null | undefined): string | null {
  return w ? `${w.kind}/${w.name}` : null;
}

/** A flow as the API sends it (dates as ISO strings). */
export interface FlowWire {
  key: { srcIp: string; dstIp: string; srcPort: number; dstPort: number; protocol: string; direction: string; ifindex: number; icmp?: { type: number; code: number } };
  interface?: string | undefined;
  packets: number;
  bytes: number;
  firstSeen: string;
  lastSeen: string;
  tcpFlags: readonly string[];
  state?: string;
  packetsPerSec?: number;
  bytesPerSec?: number;
  source?: IdentityWire | null;
  destination?: IdentityWire | null;
}

/** A security event as the API sends it (dates as ISO strings, seq as a string). */
export interface SecurityEventWire {
  timestamp: string;
  type: string;
  severity: string;
  description: string;
  key: { protocol: string; direction: string; ifindex: number };
  attacker: { ip: string; port: number };
  target: { ip: string; port: number };
  attackerIdentity?: IdentityWire | null;
  targetIdentity?: IdentityWire | null;
  interface?: string | undefined;
  hook: string;
  count: number;
  threshold: number;
  windowMs: number;
  suppressed: number;
  tcpFlags: readonly string[];
  cpu: number;
  seq: string;
}

export interface BlockWire {
  ip: string;
  reason: string;
  createdAt: string;
  expiresAt?: string | undefined;
  packetsDropped: number;
}

export interface BlockChangeWire {
  action: 'blocked' | 'unblocked';
  cause: 'detector' | 'manual' | 'expired';
  block: BlockWire;
  at: string;
}

export interface LostWire {
  ring: string;
  count: number;
  total: number;
  at: string;
}

// The lines are type aliases, not interfaces, so that they stay assignable
// to Record<string, unknown> (what generic JSON writers take).

/** The stable json line for a flow. */
export type FlowLine = {
  time: string;
  firstSeen: string;
  interface: string | null;
  direction: string;
  protocol: string;
  srcIp: string;
  srcPort: number;
  srcNamespace: string | null;
  srcPod: string | null;
  /** "Kind/name" (Deployment/web), null where unknown. */
  srcWorkload: string | null;
  srcService: string | null;
  dstIp: string;
  dstPort: number;
  dstNamespace: string | null;
  dstPod: string | null;
  dstWorkload: string | null;
  dstService: string | null;
  packets: number;
  bytes: number;
  tcpFlags: readonly string[];
  state: string | null;
};

/** What a flow record (`observe --follow`, the exporters) adds to a flow line. */
export type FlowRecordFields = {
  record: 'active' | 'final';
  /** Since the flow's previous record: summed over a flow's records, exactly its packets and bytes. */
  deltaPackets: number;
  deltaBytes: number;
  /** Over the last read interval. */
  packetsPerSec: number;
  bytesPerSec: number;
};

export type FlowRecordLine = FlowLine & FlowRecordFields;

export type SecurityLine = {
  time: string;
  event: 'security';
  type: string;
  severity: string;
  attacker: { ip: string; port: number };
  target: { ip: string; port: number };
  attackerNamespace: string | null;
  attackerPod: string | null;
  targetNamespace: string | null;
  targetPod: string | null;
  /** "Kind/name" (Deployment/web), null where unknown. */
  attackerWorkload: string | null;
  attackerService: string | null;
  targetWorkload: string | null;
  targetService: string | null;
  interface: string | null;
  hook: string;
  protocol: string;
  count: number;
  threshold: number;
  windowMs: number;
  suppressed: number;
  tcpFlags: readonly string[];
  cpu: number;
  seq: number;
  description: string;
};

export type BlockChangeLine = {
  time: string;
  event: 'block';
  action: 'blocked' | 'unblocked';
  cause: 'detector' | 'manual' | 'expired';
  ip: string;
  reason: string;
  createdAt: string;
  expiresAt: string | null;
  packetsDropped: number;
};

export type LostLine = { time: string; event: 'lost'; ring: string; count: number; total: number };

export type BlockLine = { ip: string; reason: string; createdAt: string; expiresAt: string | null; packetsDropped: number };

/** The stable json line for a flow; `extra` fields (a record's) go after the flow's own. */
export function flowLine(f: FlowWire): FlowLine;
export function flowLine<E extends object>(f: FlowWire, extra: E): FlowLine & E;
export function flowLine(f: FlowWire, extra: object = {}): FlowLine {
  return {
    time: f.lastSeen,
    firstSeen: f.firstSeen,
    interface: f.interface ?? null,
    direction: f.key.direction,
    protocol: f.key.protocol,
    srcIp: f.key.srcIp,
    srcPort: f.key.srcPort,
    srcNamespace: f.source?.namespace ?? null,
    srcPod: f.source?.pod ?? null,
    srcWorkload: workloadName(f.source?.workload),
    srcService: f.source?.service ?? null,
    dstIp: f.key.dstIp,
    dstPort: f.key.dstPort,
    dstNamespace: f.destination?.namespace ?? null,
    dstPod: f.destination?.pod ?? null,
    dstWorkload: workloadName(f.destination?.workload),
    dstService: f.destination?.service ?? null,
    packets: f.packets,
    bytes: f.bytes,
    tcpFlags: f.tcpFlags,
    state: f.state ?? null,
    ...extra,
  };
}

/** The stable json line for a security event. */
export function securityLine(e: SecurityEventWire): SecurityLine {
  return {
    time: e.timestamp,
    event: 'security',
    type: e.type,
    severity: e.severity,
    attacker: e.attacker,
    target: e.target,
    attackerNamespace: e.attackerIdentity?.namespace ?? null,
    attackerPod: e.attackerIdentity?.pod ?? null,
    targetNamespace: e.targetIdentity?.namespace ?? null,
    targetPod: e.targetIdentity?.pod ?? null,
    attackerWorkload: workloadName(e.attackerIdentity?.workload),
    attackerService: e.attackerIdentity?.service ?? null,
    targetWorkload: workloadName(e.targetIdentity?.workload),
    targetService: e.targetIdentity?.service ?? null,
    interface: e.interface ?? null,
    hook: e.hook,
    protocol: e.key.protocol,
    count: e.count,
    threshold: e.threshold,
    windowMs: e.windowMs,
    suppressed: e.suppressed,
    tcpFlags: e.tcpFlags,
    cpu: e.cpu,
    seq: Number(e.seq),
    description: e.description,
  };
}

/** The stable json line for a block or an unblock. */
export function blockChangeLine(c: BlockChangeWire): BlockChangeLine {
  return {
    time: c.at,
    event: 'block',
    action: c.action,
    cause: c.cause,
    ip: c.block.ip,
    reason: c.block.reason,
    createdAt: c.block.createdAt,
    expiresAt: c.block.expiresAt ?? null,
    packetsDropped: c.block.packetsDropped,
  };
}

/** The stable json line for a lost-events report. */
export function lostLine(l: LostWire): LostLine {
  return { time: l.at, event: 'lost', ring: l.ring, count: l.count, total: l.total };
}

/** The stable json line for a current block. */
export function blockLine(b: BlockWire): BlockLine {
  return { ip: b.ip, reason: b.reason, createdAt: b.createdAt, expiresAt: b.expiresAt ?? null, packetsDropped: b.packetsDropped };
}
