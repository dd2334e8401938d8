/**
 * The accounter stage: turns successive reads of the kernel flow table into
 * flow records, as NetFlow/IPFIX exporters do. Pure logic (no kernel, no
 * timers): the pipeline feeds it snapshots and the flows it evicted.
 *
 * - every read gives each flow its rates over the last interval;
 * - a flow that has not been reported for `activeTimeoutMs` gets an
 *   'active' record with the counts since its last report;
 * - an evicted (idle) flow gets a 'final' record with the rest.
 * Summed over a flow's 'active' and 'final' records, the deltas are exactly
 * its packets and bytes.
 */
import type { FlowKey, FlowStats } from '../types.js';

export type FlowRecordReason = 'active' | 'final';

export interface FlowRecord {
  reason: FlowRecordReason;
  flow: FlowStats;
  /** Since this flow's previous record (or its start). */
  deltaPackets: number;
  deltaBytes: number;
  /** Over the last read interval; 0 on a flow's first read. */
  packetsPerSec: number;
  bytesPerSec: number;
}

export interface AccounterOptions {
  /** Report long flows at least this often, in ms. */
  activeTimeoutMs: number;
}

interface State {
  /** The ingest() that last saw it. */
  gen: number;
  last: FlowStats;
  packets: number;
  bytes: number;
  readAt: number;
  reportedPackets: number;
  reportedBytes: number;
  reportedAt: number;
  packetsPerSec: number;
  bytesPerSec: number;
}

/** One identity per flow: interface, direction and 5-tuple. */
export function flowId(k: FlowKey): string {
  return `${k.ifindex}/${k.direction}/${k.protocolNumber}/${k.srcIp}/${k.srcPort}/${k.dstIp}/${k.dstPort}`;
}

export class FlowAccounter {
  private readonly state = new Map<string, State>();
  private gen = 0;

  constructor(private readonly opts: AccounterOptions) {}

  /**
   * One read of the table at `atMs` (any monotonic ms), plus the flows
   * evicted in the same cycle with their final figures. Returns the records
   * due now; `rates()` has every live flow's latest rates.
   */
  ingest(snapshot: readonly FlowStats[], evicted: readonly FlowStats[], atMs: number): FlowRecord[] {
    const out: FlowRecord[] = [];
    const gen = ++this.gen;
    for (const flow of snapshot) {
      const id = flowId(flow.key);
      let s = this.state.get(id);
      // Fewer packets than last time: the flow left the table (not through
      // us) and came back. Close the old one with what we last read.
      if (s && flow.packets < s.packets) {
        out.push(this.report('final', s.last, s, atMs));
        s = undefined;
      }
      if (!s) {
        s = { gen, last: flow, packets: flow.packets, bytes: flow.bytes, readAt: atMs, reportedPackets: 0, reportedBytes: 0, reportedAt: atMs, packetsPerSec: 0, bytesPerSec: 0 };
        this.state.set(id, s);
      } else {
        s.gen = gen;
        s.last = flow;
        const dt = (atMs - s.readAt) / 1000;
        if (dt > 0) {
          s.packetsPerSec = (flow.packets - s.packets) / dt;
          s.bytesPerSec = (flow.bytes - s.bytes) / dt;
        }
        s.packets = flow.packets;
        s.bytes = flow.bytes;
        s.readAt = atMs;
      }
      if (atMs - s.reportedAt >= this.opts.activeTimeoutMs && flow.packets > s.reportedPackets) {
        out.push(this.report('active', flow, s, atMs));
      }
    }
    for (const flow of evicted) {
      const id = flowId(flow.key);
      const s = this.state.get(id) ?? { gen, last: flow, packets: 0, bytes: 0, readAt: atMs, reportedPackets: 0, reportedBytes: 0, reportedAt: atMs, packetsPerSec: 0, bytesPerSec: 0 };
      out.push(this.report('final', flow, s, atMs));
      this.state.delete(id);
    }
    // Gone from the table without passing through eviction: close them with
    // what we last read, so state never outlives the flows.
    for (const [id, s] of this.state) {
      if (s.gen === gen) continue;
      out.push(this.report('final', s.last, s, atMs));
      this.state.delete(id);
    }
    return out;
  }

  private report(reason: FlowRecordReason, flow: FlowStats, s: State, atMs: number): FlowRecord {
    const rec: FlowRecord = {
      reason,
      flow,
      deltaPackets: flow.packets - s.reportedPackets,
      deltaBytes: flow.bytes - s.reportedBytes,
      packetsPerSec: s.packetsPerSec,
      bytesPerSec: s.bytesPerSec,
    };
    s.reportedPackets = flow.packets;
    s.reportedBytes = flow.bytes;
    s.reportedAt = atMs;
    return rec;
  }

  /** Every live flow's rates over the last read interval, by flowId(). */
  rates(): Map<string, { packetsPerSec: number; bytesPerSec: number }> {
    const out = new Map<string, { packetsPerSec: number; bytesPerSec: number }>();
    for (const [id, s] of this.state) out.set(id, { packetsPerSec: s.packetsPerSec, bytesPerSec: s.bytesPerSec });
    return out;
  }

  /** Flows being tracked. */
  get size(): number {
    return this.state.size;
  }
}
