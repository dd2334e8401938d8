/**
 * The agent's in-memory records as the stable JSON lines (./lines.ts),
 * without a trip through JSON text: each record becomes the object the API
 * would send for it (dates as ISO strings, bigints as strings, pod identity
 * where the inventory knows it), and the shared builders make the line from
 * that. One definition of each line, so the exported records and the CLI's
 * `-o json` can never drift apart (records.test.ts checks both paths).
 */
import type { BlockChange, FlowStats, SecurityEvent } from '../types.js';
import type { FlowRecord } from '../agent/flow-accounter.js';
import type { LostReport } from '../agent/agent.js';
import type { PodIdentity } from '../agent/inventory.js';
import { blockChangeLine, flowLine, lostLine, securityLine, type BlockChangeLine, type FlowRecordLine, type FlowWire, type LostLine, type SecurityLine } from './lines.js';

/** The pod behind an address, where known (Agent.identity). */
export type Identify = (ip: string) => PodIdentity | undefined;

const iso = (d: Date): string => d.toISOString();

/** A flow as the API's /flows and live stream send it, with each end's pod identity. */
export function flowWire(f: FlowStats, identify: Identify): FlowWire {
  return {
    key: f.key,
    interface: f.interface,
    packets: f.packets,
    bytes: f.bytes,
    firstSeen: iso(f.firstSeen),
    lastSeen: iso(f.lastSeen),
    tcpFlags: f.tcpFlags,
    source: identify(f.key.srcIp) ?? null,
    destination: identify(f.key.dstIp) ?? null,
  };
}

/** A flow record (active or final) as its line: the flow's fields, then the record's. */
export function flowRecordLine(r: FlowRecord, identify: Identify): FlowRecordLine {
  return flowLine(flowWire(r.flow, identify), {
    record: r.reason,
    deltaPackets: r.deltaPackets,
    deltaBytes: r.deltaBytes,
    packetsPerSec: r.packetsPerSec,
    bytesPerSec: r.bytesPerSec,
  });
}

export function securityEventLine(e: SecurityEvent, identify: Identify): SecurityLine {
  return securityLine({
    timestamp: iso(e.timestamp),
    type: e.type,
    severity: e.severity,
    description: e.description,
    key: e.key,
    attacker: e.attacker,
    target: e.target,
    attackerIdentity: identify(e.attacker.ip) ?? null,
    targetIdentity: identify(e.target.ip) ?? null,
    interface: e.interface,
    hook: e.hook,
    count: e.count,
    threshold: e.threshold,
    windowMs: e.windowMs,
    suppressed: e.suppressed,
    tcpFlags: e.tcpFlags,
    cpu: e.cpu,
    seq: e.seq.toString(),
  });
}

export function blockChangeRecordLine(c: BlockChange): BlockChangeLine {
  const b = c.block;
  return blockChangeLine({
    action: c.action,
    cause: c.cause,
    block: { ip: b.ip, reason: b.reason, createdAt: iso(b.createdAt), expiresAt: b.expiresAt && iso(b.expiresAt), packetsDropped: b.packetsDropped },
    at: iso(c.at),
  });
}

export function lostRecordLine(l: LostReport): LostLine {
  return lostLine({ ring: l.ring, count: l.count, total: l.total, at: iso(l.at) });
}
