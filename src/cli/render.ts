/**
 * How the CLI prints flows, security events and blocks: `-o table` (aligned columns),
 * `-o compact` (one short line), `-o json` (one object per line; the field
 * names are stable and documented in the README).
 */
import type { AgentStats } from '../agent/agent.js';
import { formatBytes } from '../format.js';
import { blockChangeLine, blockLine, flowLine, lostLine, securityLine, type BlockChangeWire, type BlockWire, type FlowWire, type IdentityWire, type LostWire, type SecurityEventWire } from '../export/lines.js';

// The json lines and the wire types live in src/export/lines.ts, shared with
// the exporters; they are re-exported here for the CLI and its tests.
export { blockChangeLine, blockLine, flowLine, lostLine, securityLine };
export type { BlockChangeWire, BlockWire, FlowWire, LostWire, SecurityEventWire };

export type OutputFormat = 'table' | 'json' | 'compact';

export const ep = (ip: string, port: number): string => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
/** namespace/pod:port where the identity is known, with its service where that is known too (`shop/api-0:8080 (svc api)`), else the address. */
const named = (id: IdentityWire | null | undefined, ip: string, port: number): string =>
  id ? `${id.namespace}/${id.pod}:${port}${id.service ? ` (svc ${id.service})` : ''}` : ep(ip, port);

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

/**
 * A flow record from the history (`observe --since`), as the API sends it:
 * the live flow's fields, with `packets` and `bytes` what this record counted
 * (its deltas, so a range's rows add up to its traffic), and the flow's
 * totals as of the record in `totalPackets` and `totalBytes`.
 */
export interface HistoryFlowWire extends FlowWire {
  record: 'active' | 'final';
  deltaPackets: number;
  deltaBytes: number;
  totalPackets: number;
  totalBytes: number;
  packetsPerSec: number;
  bytesPerSec: number;
}

/** The json line for a history row: the flow line's fields (state null), then the record's, then the flow's totals. */
export function historyFlowLine(f: HistoryFlowWire): Record<string, unknown> {
  // No state: a record is active or final, in `record`.
  return flowLine({ ...f, state: undefined }, {
    record: f.record,
    deltaPackets: f.deltaPackets,
    deltaBytes: f.deltaBytes,
    packetsPerSec: f.packetsPerSec,
    bytesPerSec: f.bytesPerSec,
    totalPackets: f.totalPackets,
    totalBytes: f.totalBytes,
  });
}

/** History rows: as live flows in a table or compact, with the record (active or final) as their state. */
export function renderHistoryFlows(flows: readonly HistoryFlowWire[], format: OutputFormat): string {
  if (format === 'json') return flows.map((f) => JSON.stringify(historyFlowLine(f))).join('\n');
  return renderFlows(flows.map((f) => ({ ...f, state: f.record })), format);
}

export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export function renderStats(s: AgentStats, format: OutputFormat): string {
  if (format === 'json') return JSON.stringify(s);
  // The POD column where the agent attaches to pods' interfaces (attachPods).
  const pods = s.interfaces.some((i) => i.pod);
  const rows = [['INTERFACE', ...(pods ? ['POD'] : []), 'ATTACHED', 'IN PKTS', 'IN BYTES', 'OUT PKTS', 'OUT BYTES', 'BAD']];
  for (const i of s.interfaces) {
    const inC = i.counters['tc-ingress'];
    const outC = i.counters['tc-egress'];
    const bad = (inC?.packets.truncated ?? 0) + (inC?.packets.malformed ?? 0) + (outC?.packets.truncated ?? 0) + (outC?.packets.malformed ?? 0);
    const pod = pods ? [i.pod ? `${i.pod.namespace}/${i.pod.pod}` : '-'] : [];
    rows.push([i.name, ...pod, i.attached ? i.hooks.join(' ') : 'no', String(inC?.packets.total ?? 0), String(inC?.bytes.total ?? 0), String(outC?.packets.total ?? 0), String(outC?.bytes.total ?? 0), String(bad)]);
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
    `flow reads   ${s.pipeline.flowRead.detail}`,
    `evictions    ${s.pipeline.flowEvict.detail}`,
    historyLine(s.history),
  ];
  return lines.join('\n');
}

/** The history line of `stats`: off, or what the store holds and lost, and what it had to do. */
function historyLine(h: AgentStats['history'] | undefined): string {
  if (!h) return 'history      off (start the agent with --history PATH to keep flows for observe --since)';
  if (!h.available) return `history      unavailable: ${h.lastError ?? 'the store could not be started'}`;
  const when = (d: Date | string | null): string => (d === null ? '-' : tableTime(typeof d === 'string' ? d : d.toISOString()));
  const parts = [
    `${h.inMemory ? 'in memory (until restart)' : h.path}: ${h.flows} flow records, ${h.events} events, ${formatBytes(h.bytes)}`,
    h.oldest ? `${when(h.oldest)} to ${when(h.newest)}` : 'empty',
    `${h.dropped} rows lost`,
  ];
  if (h.recovery) parts.push(h.recovery.action === 'moved-aside' ? `recovered: the old store was moved to ${h.recovery.movedTo.join(' and ')}` : 'the file could not be used');
  if (h.lastError) parts.push(`last error: ${h.lastError}`);
  return `history      ${parts.join('; ')}`;
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
      // From history the ifindex is not kept: '-' when the interface had no name either.
      e.interface ?? (e.key.ifindex === undefined ? '-' : String(e.key.ifindex)),
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
