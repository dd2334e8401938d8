/**
 * How the CLI prints flows and events: `-o table` (aligned columns),
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
    `pipeline     ${s.pipeline.cycles} cycles, last ${s.pipeline.lastCycleMs?.toFixed(1) ?? '-'} ms; ${s.pipeline.recentFlows} recent flows, ${s.pipeline.recentEvents} recent events`,
  ];
  return lines.join('\n');
}
