/**
 * The accounter stage: turns successive reads of the kernel flow table into
 * flow records, as NetFlow/IPFIX exporters do. Pure logic (no kernel, no
 * timers): the pipeline feeds it each read and the flows it evicted.
 *
 * - every read gives each flow its rates over the last interval;
 * - a flow that has not been reported for `activeTimeoutMs` gets an
 *   'active' record with the counts since its last report;
 * - an evicted (idle) flow gets a 'final' record with the rest.
 * Summed over a flow's 'active' and 'final' records, the deltas are exactly
 * its packets and bytes.
 *
 * It reads counters straight from the table view and decodes a flow only
 * for a record: a cycle over a million flows creates no object per flow.
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

/** What the accounter needs of one read of the table (FlowSnapshot has it). */
export interface FlowTableView {
  readonly count: number;
  /** Flows evicted after the read: skipped here, they come as `evicted`. */
  readonly removed: Uint8Array;
  id(i: number): string;
  packetsAt(i: number): number;
  bytesAt(i: number): number;
  flow(i: number): FlowStats;
}

export interface EvictedFlow {
  id: string;
  flow: FlowStats;
}

export interface AccounterOptions {
  /** Report long flows at least this often, in ms. */
  activeTimeoutMs: number;
}

interface State {
  /** The ingest() that last saw it. */
  gen: number;
  /** Where it was last read, to decode it when a record is due. */
  view: FlowTableView;
  index: number;
  packets: number;
  bytes: number;
  readAt: number;
  reportedPackets: number;
  reportedBytes: number;
  reportedAt: number;
  packetsPerSec: number;
  bytesPerSec: number;
}

/** An identity per flow from its decoded key: interface, direction and 5-tuple. */
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
   * due now; rate() has every live flow's latest rates.
   */
  ingest(view: FlowTableView, evicted: readonly EvictedFlow[], atMs: number): FlowRecord[] {
    const out: FlowRecord[] = [];
    const gen = ++this.gen;
    for (let i = 0; i < view.count; i++) {
      if (view.removed[i]) continue;
      const id = view.id(i);
      const packets = view.packetsAt(i);
      const bytes = view.bytesAt(i);
      let s = this.state.get(id);
      // Fewer packets than last time: the flow left the table (not through
      // us) and came back. Close the old one with what we last read.
      if (s && packets < s.packets) {
        out.push(this.report('final', s.view.flow(s.index), s, atMs));
        s = undefined;
      }
      if (!s) {
        s = { gen, view, index: i, packets, bytes, readAt: atMs, reportedPackets: 0, reportedBytes: 0, reportedAt: atMs, packetsPerSec: 0, bytesPerSec: 0 };
        this.state.set(id, s);
      } else {
        const dt = (atMs - s.readAt) / 1000;
        if (dt > 0) {
          s.packetsPerSec = (packets - s.packets) / dt;
          s.bytesPerSec = (bytes - s.bytes) / dt;
        }
        s.gen = gen;
        s.view = view;
        s.index = i;
        s.packets = packets;
        s.bytes = bytes;
        s.readAt = atMs;
      }
      if (atMs - s.reportedAt >= this.opts.activeTimeoutMs && packets > s.reportedPackets) {
        out.push(this.report('active', view.flow(i), s, atMs));
      }
    }
    for (const e of evicted) {
      const s = this.state.get(e.id);
      out.push(this.report('final', e.flow, s ?? { reportedPackets: 0, reportedBytes: 0, packetsPerSec: 0, bytesPerSec: 0 }, atMs));
      this.state.delete(e.id);
    }
    // Gone from the table without passing through eviction: close them with
    // what we last read, so state never outlives the flows.
    for (const [id, s] of this.state) {
      if (s.gen === gen) continue;
      out.push(this.report('final', s.view.flow(s.index), s, atMs));
      this.state.delete(id);
    }
    return out;
  }

  private report(
    reason: FlowRecordReason,
    flow: FlowStats,
    s: Pick<State, 'reportedPackets' | 'reportedBytes' | 'packetsPerSec' | 'bytesPerSec'> & { reportedAt?: number },
    atMs: number,
  ): FlowRecord {
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

  /** A live flow's rates over the last read interval. */
  rate(id: string): { packetsPerSec: number; bytesPerSec: number } | undefined {
    const s = this.state.get(id);
    return s && { packetsPerSec: s.packetsPerSec, bytesPerSec: s.bytesPerSec };
  }

  /** Flows being tracked. */
  get size(): number {
    return this.state.size;
  }
}
