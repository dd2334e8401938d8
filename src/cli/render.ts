/**
 * How the CLI prints flows, security events and blocks: `-o table` (aligned columns),
 * `-o compact` (one short line), `-o json` (one object per line; the field
 * names are stable and documented in the README).
 */
import type { AgentStats } from '../agent/agent.js';

export type OutputFormat = 'table' | 'json' | 'compact';

/** A flow as the API sends it (dates as ISO strings). */
export interface FlowWire {
  key: { srcIp: string; dstIp: string; srcPort: number; dstPort: number; protocol: string; direction: string; ifindex: number; icmp?: { type: number; code: number } };
  interface?: string;
  packets: number;
  bytes: number;
  firstSeen: string;
  lastSeen: string;
  tcpFlags: string[];
  state?: string;
  packetsPerSec?: number;
  bytesPerSec?: number;
  source?: { namespace: string; pod: string } | null;
  destination?: { namespace: string; pod: string } | null;
}

/** The stable json line for a flow. */
export function flowLine(f: FlowWire, extra: Record<string, unknown> = {}): Record<string, unknown> {
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
    dstIp: f.key.dstIp,
    dstPort: f.key.dstPort,
    dstNamespace: f.destination?.namespace ?? null,
    dstPod: f.destination?.pod ?? null,
    packets: f.packets,
    bytes: f.bytes,
    tcpFlags: f.tcpFlags,
    state: f.state ?? null,
    ...extra,
  };
}

const ep = (ip: string, port: number): string => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
/** namespace/pod:port where the identity is known, else the address. */
const named = (id: { namespace: string; pod: string } | null | undefined, ip: string, port: number): string => (id ? `${id.namespace}/${id.pod}:${port}` : ep(ip, port));

export function renderFlows(flows: readonly FlowWire[], format: OutputFormat): string {
  if (format === 'json') return flows.map((f) => JSON.stringify(flowLine(f))).join('\n');
  if (format === 'compact') {
    return flows.map((f) => `${f.lastSeen} ${f.interface ?? f.key.ifindex} ${f.key.direction} ${f.key.protocol} ${ep(f.key.srcIp, f.key.srcPort)} -> ${ep(f.key.dstIp, f.key.dstPort)} ${f.packets} pkts ${f.bytes} B`).join('\n');
  }
  const rows = [['TIME', 'INTERFACE', 'DIR', 'PROTO', 'SOURCE', 'DESTINATION', 'PACKETS', 'BYTES', 'FLAGS', 'STATE']];
  for (const f of flows) {
    rows.push([
      f.lastSeen.replace('T', ' ').replace('Z', ''),
      f.interface ?? String(f.key.ifindex),
      f.key.direction,
      f.key.protocol,
      named(f.source, f.key.srcIp, f.key.srcPort),
      named(f.destination, f.key.dstIp, f.key.dstPort),
      String(f.packets),
      String(f.bytes),
      f.tcpFlags.join(',') || '-',
      f.state ?? '-',
    ]);
  }
  return table(rows);
}

export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export function renderStats(s: AgentStats, format: OutputFormat): string {
  if (format === 'json') return JSON.stringify(s);
  const rows = [['INTERFACE', 'ATTACHED', 'IN PKTS', 'IN BYTES', 'OUT PKTS', 'OUT BYTES', 'BAD']];
  for (const i of s.interfaces) {
    const inC = i.counters['tc-ingress'];
    const outC = i.counters['tc-egress'];
    const bad = (inC?.packets.truncated ?? 0) + (inC?.packets.malformed ?? 0) + (outC?.packets.truncated ?? 0) + (outC?.packets.malformed ?? 0);
    rows.push([i.name, i.attached ? i.hooks.join(' ') : 'no', String(inC?.packets.total ?? 0), String(inC?.bytes.total ?? 0), String(outC?.packets.total ?? 0), String(outC?.bytes.total ?? 0), String(bad)]);
  }
  const lines = [
    table(rows),
    '',
    `flow table   ${s.flowTable.entries}/${s.flowTable.capacity} (${(s.flowTable.fill * 100).toFixed(1)} %), insert failures ${s.flowTable.insertFailed}`,
    `coverage     ${(s.coverage.ratio * 100).toFixed(2)} % (${s.coverage.attributed} of ${s.coverage.seen} packets in flows)`,
    `lost events  packet ${s.lost.packetEvents}, security ${s.lost.securityEvents} (gaps ${s.lost.securityGaps}), consumer ${s.lost.consumer}`,
    `security     ${s.security.mode} mode; ${s.security.sent} events sent, ${s.security.dropped} dropped, ${s.security.gaps} gaps, ${s.security.suppressed} held back by the rate limits`,
    `blocks       ${s.blocks.active} active, ${s.blocks.packetsDropped} packets dropped${s.blocks.insertFailed ? `, ${s.blocks.insertFailed} blocks not stored (table full)` : ''}`,
    `pipeline     ${s.pipeline.cycles} cycles, last ${s.pipeline.lastCycleMs?.toFixed(1) ?? '-'} ms; ${s.pipeline.recentFlows} recent flows, ${s.pipeline.recentEvents} recent events`,
  ];
  return lines.join('\n');
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
  attackerIdentity?: { namespace: string; pod: string } | null;
  targetIdentity?: { namespace: string; pod: string } | null;
  interface?: string;
  hook: string;
  count: number;
  threshold: number;
  windowMs: number;
  suppressed: number;
  tcpFlags: string[];
  cpu: number;
  seq: string;
}

export interface BlockWire {
  ip: string;
  reason: string;
  createdAt: string;
  expiresAt?: string;
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

/** The stable json line for a security event. */
export function securityLine(e: SecurityEventWire): Record<string, unknown> {
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
export function blockChangeLine(c: BlockChangeWire): Record<string, unknown> {
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
export function lostLine(l: LostWire): Record<string, unknown> {
  return { time: l.at, event: 'lost', ring: l.ring, count: l.count, total: l.total };
}

/** The stable json line for a current block. */
export function blockLine(b: BlockWire): Record<string, unknown> {
  return { ip: b.ip, reason: b.reason, createdAt: b.createdAt, expiresAt: b.expiresAt ?? null, packetsDropped: b.packetsDropped };
}

const tableTime = (iso: string): string => iso.replace('T', ' ').replace('Z', '');

export function securityCompact(e: SecurityEventWire): string {
  return `${e.timestamp} SECURITY ${e.severity} ${e.type} ${ep(e.attacker.ip, e.attacker.port)} -> ${ep(e.target.ip, e.target.port)} on ${e.interface ?? '?'}: ${e.description}`;
}

export function blockChangeCompact(c: BlockChangeWire): string {
  const b = c.block;
  if (c.action === 'blocked') {
    return `${c.at} BLOCK ${b.ip} blocked (${b.reason === 'manual' ? 'by hand' : `by ${b.reason}`}) ${b.expiresAt ? `until ${b.expiresAt}` : 'until lifted'}`;
  }
  return `${c.at} BLOCK ${b.ip} unblocked (${c.cause === 'expired' ? 'expired' : 'lifted by hand'}) after ${b.packetsDropped} packets dropped`;
}

export function lostCompact(l: LostWire): string {
  return `${l.at} LOST ${l.count} ${l.ring} events (${l.total} since the agent started)`;
}

export function renderSecurityEvents(events: readonly SecurityEventWire[], format: OutputFormat): string {
  if (format === 'json') return events.map((e) => JSON.stringify(securityLine(e))).join('\n');
  if (format === 'compact') return events.map(securityCompact).join('\n');
  const rows = [['TIME', 'SEVERITY', 'TYPE', 'ATTACKER', 'TARGET', 'INTERFACE', 'DESCRIPTION']];
  for (const e of events) {
    rows.push([
      tableTime(e.timestamp),
      e.severity,
      e.type,
      named(e.attackerIdentity, e.attacker.ip, e.attacker.port),
      named(e.targetIdentity, e.target.ip, e.target.port),
      e.interface ?? String(e.key.ifindex),
      e.description,
    ]);
  }
  return table(rows);
}

/** "in 4 min", "in 30 s", "2 h ago". */
export function relative(ms: number): string {
  const a = Math.abs(ms);
  const text = a < 120_000 ? `${Math.round(a / 1000)} s` : a < 7_200_000 ? `${Math.round(a / 60_000)} min` : a < 172_800_000 ? `${Math.round(a / 3_600_000)} h` : `${Math.round(a / 86_400_000)} d`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

export function renderBlocks(blocks: readonly BlockWire[], format: 'table' | 'json', now = Date.now()): string {
  if (format === 'json') return blocks.map((b) => JSON.stringify(blockLine(b))).join('\n');
  const rows = [['IP', 'REASON', 'SINCE', 'EXPIRES', 'DROPPED']];
  for (const b of blocks) {
    rows.push([
      b.ip,
      b.reason,
      tableTime(b.createdAt),
      b.expiresAt ? `${tableTime(b.expiresAt)} (${relative(Date.parse(b.expiresAt) - now)})` : 'until lifted',
      String(b.packetsDropped),
    ]);
  }
  return table(rows);
}
