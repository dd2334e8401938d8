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
 * Per-flow state lives in typed arrays, found through an open-addressing
 * table keyed by the flow key's bytes: a cycle over a million flows creates
 * no object per flow, and a flow is decoded only when a record is due.
 */
import type { FlowStats } from '../types.js';
import { FLOW_KEY_WORDS, FlowKeyIndex } from '../monitor/flow-key-index.js';
import type { EvictedFlow, MirrorRead } from '../monitor/flow-snapshot.js';
import { resized } from '../monitor/resized.js';

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

/** The bytes that identify a flow (the kernel key). */
export { FLOW_KEY_BYTES } from '../monitor/flow-key-index.js';
const W = FLOW_KEY_WORDS;

/** What the accounter needs of one read of the table (FlowSnapshot has it). */
export interface FlowTableView {
  readonly count: number;
  /** Flows evicted after the read: skipped here, they come as `evicted`. */
  readonly removed: Uint8Array;
  /** Every flow's key back to back, as 32-bit words (flow i at i * 11). */
  readonly keyWords: Uint32Array;
  packetsAt(i: number): number;
  bytesAt(i: number): number;
  flow(i: number): FlowStats;
}

/** Each flow's counters, summed over CPUs. */
export interface FlowCounts {
  packetsAt(i: number): number;
  bytesAt(i: number): number;
}

/** One read being accounted a batch at a time (FlowAccounter.begin()). */
export interface AccounterRead {
  /** Flows start .. start + count: keys as words (flow i at i * 11) and counters; skips those `removed`. */
  add(words: Uint32Array, counts: FlowCounts, start: number, count: number, removed?: Uint8Array, mirror?: MirrorRead): void;
  /** The whole read, and the flows evicted after it; returns the records due. */
  end(view: FlowTableView, evicted: readonly EvictedFlow[]): FlowRecord[];
}

export type { EvictedFlow } from '../monitor/flow-snapshot.js';

/**
 * The final record of an evicted flow: the flow is decoded when a consumer
 * first reads it (most final records are counted and kept, never shown), and
 * the evicted flow's raw key and totals stay at hand for those that need no
 * decoding. A class, so a record costs no closure; toJSON() gives the plain
 * record.
 */
class EvictedRecord implements FlowRecord {
  readonly reason = 'final';
  constructor(
    readonly evicted: EvictedFlow,
    readonly deltaPackets: number,
    readonly deltaBytes: number,
    readonly packetsPerSec: number,
    readonly bytesPerSec: number,
  ) {}

  get flow(): FlowStats {
    return this.evicted.flow;
  }

  toJSON(): FlowRecord {
    const { reason, flow, deltaPackets, deltaBytes, packetsPerSec, bytesPerSec } = this;
    return { reason, flow, deltaPackets, deltaBytes, packetsPerSec, bytesPerSec };
  }
}

/** The evicted flow behind a final record, where it came from evictIdle(). */
export function evictedFlowOf(r: FlowRecord): EvictedFlow | undefined {
  return r instanceof EvictedRecord ? r.evicted : undefined;
}

export interface AccounterOptions {
  /** Report long flows at least this often, in ms. */
  activeTimeoutMs: number;
  /**
   * Flows to make room for up front (the kernel table's capacity, as far as
   * is reasonable): a table that fills in a second then costs no rounds of
   * growing, rehashing and collecting the old arrays, each a stall of its own.
   */
  initialFlows?: number;
}

export class FlowAccounter {
  /** Flow key -> state number; the arrays below are indexed by state. */
  private readonly ix: FlowKeyIndex;
  private gen = new Uint32Array(0);
  private index = new Int32Array(0);
  private packets = new Float64Array(0);
  private bytes = new Float64Array(0);
  private readAt = new Float64Array(0);
  private reportedPackets = new Float64Array(0);
  private reportedBytes = new Float64Array(0);
  private reportedAt = new Float64Array(0);
  private pps = new Float64Array(0);
  private bps = new Float64Array(0);
  private cycle = 0;
  /** The last read ended; states not seen in the read under way point into it. */
  private current: FlowTableView | undefined;
  /** State number of each flow of the current view (-1: removed). */
  private stateOf = new Int32Array(0);
  /** The mirror read the current view came from (-1: not a mirror's). */
  private mirrorRead = -1;

  constructor(private readonly opts: AccounterOptions) {
    this.ix = new FlowKeyIndex((cap) => this.grow(cap), Math.max(0, Math.floor(opts.initialFlows ?? 0)));
  }

  /** Room for `cap` states in the per-state arrays (the index grew). */
  private grow(cap: number): void {
    this.gen = resized(this.gen, cap);
    this.index = resized(this.index, cap);
    this.packets = resized(this.packets, cap);
    this.bytes = resized(this.bytes, cap);
    this.readAt = resized(this.readAt, cap);
    this.reportedPackets = resized(this.reportedPackets, cap);
    this.reportedBytes = resized(this.reportedBytes, cap);
    this.reportedAt = resized(this.reportedAt, cap);
    this.pps = resized(this.pps, cap);
    this.bps = resized(this.bps, cap);
  }

  private report(reason: FlowRecordReason, flow: FlowStats, s: number, atMs: number): FlowRecord {
    return this.record(reason, flow.packets, flow.bytes, s, atMs, flow);
  }

  /** A record with the totals given; `flow` as decoded, or an evicted flow decoded when a consumer reads it. */
  private record(reason: FlowRecordReason, packets: number, bytes: number, s: number, atMs: number, flow: FlowStats | EvictedFlow): FlowRecord {
    const known = s >= 0;
    const deltaPackets = packets - (known ? this.reportedPackets[s]! : 0);
    const deltaBytes = bytes - (known ? this.reportedBytes[s]! : 0);
    const packetsPerSec = known ? this.pps[s]! : 0;
    const bytesPerSec = known ? this.bps[s]! : 0;
    if (known) {
      this.reportedPackets[s] = packets;
      this.reportedBytes[s] = bytes;
      this.reportedAt[s] = atMs;
    }
    if ('keyWords' in flow) return new EvictedRecord(flow, deltaPackets, deltaBytes, packetsPerSec, bytesPerSec);
    return { reason, flow, deltaPackets, deltaBytes, packetsPerSec, bytesPerSec };
  }

  /**
   * One read of the table at `atMs` (any monotonic ms), plus the flows
   * evicted in the same cycle with their final figures. Returns the records
   * due now; rateAt() has each flow's rates for this read.
   */
  ingest(view: FlowTableView, evicted: readonly EvictedFlow[], atMs: number): FlowRecord[] {
    const read = this.begin(atMs);
    read.add(view.keyWords, view, 0, view.count, view.removed);
    return read.end(view, evicted);
  }

  /**
   * ingest() a batch at a time, while the table is still being read: add()
   * each batch's flows as they arrive, then end() with the whole read (and
   * the flows evicted after it; those marked removed in the view after they
   * were added are closed by their final figures).
   */
  begin(atMs: number): AccounterRead {
    const cycle = ++this.cycle;
    // Sized for as many flows as the last read had (and grown if this one has more).
    let stateOf = new Int32Array(Math.max(1024, this.stateOf.length)).fill(-1);
    const prevStateOf = this.stateOf;
    let mirrorRead = -1;
    // Active records are decided as flows arrive but built at end(), when
    // the read's view exists (and an evicted flow gets only its final one).
    const due: number[] = [];
    const closed: FlowRecord[] = [];
    const add = (words: Uint32Array, counts: FlowCounts, start: number, count: number, removed?: Uint8Array, mirror?: MirrorRead): void => {
      if (start + count > stateOf.length) {
        const grown = new Int32Array(Math.max(start + count, stateOf.length * 2)).fill(-1);
        grown.set(stateOf);
        stateOf = grown;
      }
      mirrorRead = mirror?.read ?? -1;
      // The last view was this mirror's: flows it has not written since are unchanged.
      const since = mirror && this.mirrorRead >= 0 ? this.mirrorRead : -1;
      for (let i = start, end = start + count; i < end; i++) {
        if (removed?.[i]) continue;
        if (since >= 0 && mirror!.writtenIn[i]! <= since) {
          const s = prevStateOf[i] ?? -1;
          if (s >= 0 && this.gen[s] === cycle - 1 && this.index[s] === i) {
            // No packet since the last read: a rate of zero, and an active record if one is due.
            this.gen[s] = cycle;
            this.pps[s] = 0;
            this.bps[s] = 0;
            this.readAt[s] = atMs;
            stateOf[i] = s;
            if (atMs - this.reportedAt[s]! >= this.opts.activeTimeoutMs && this.packets[s]! > this.reportedPackets[s]!) due.push(i);
            continue;
          }
        }
        const at = i * W;
        const packets = counts.packetsAt(i);
        const bytes = counts.bytesAt(i);
        // Its slot had this key at the last read: the same flow, whose state the slot gives.
        const p = since >= 0 && mirror!.bornIn[i]! <= since ? (prevStateOf[i] ?? -1) : -1;
        let s = p >= 0 && this.gen[p] === cycle - 1 && this.index[p] === i ? p : this.ix.find(words, at);
        // The same key twice in one read (deleted and re-added under the
        // read): keep the later one.
        if (s >= 0 && this.gen[s] === cycle) stateOf[this.index[s]!] = -1;
        // Fewer packets than last time: the flow left the table (not through
        // us) and came back. Close the old one with what we last read.
        else if (s >= 0 && packets < this.packets[s]!) {
          closed.push(this.report('final', this.current!.flow(this.index[s]!), s, atMs));
          this.ix.remove(s);
          s = -1;
        }
        if (s < 0) {
          s = this.ix.insert(words, at);
          this.readAt[s] = atMs;
          this.reportedPackets[s] = 0;
          this.reportedBytes[s] = 0;
          this.reportedAt[s] = atMs;
          this.pps[s] = 0;
          this.bps[s] = 0;
        } else if (this.gen[s] !== cycle) {
          const dt = (atMs - this.readAt[s]!) / 1000;
          if (dt > 0) {
            this.pps[s] = (packets - this.packets[s]!) / dt;
            this.bps[s] = (bytes - this.bytes[s]!) / dt;
          }
          this.readAt[s] = atMs;
        }
        this.gen[s] = cycle;
        this.index[s] = i;
        this.packets[s] = packets;
        this.bytes[s] = bytes;
        stateOf[i] = s;
        if (atMs - this.reportedAt[s]! >= this.opts.activeTimeoutMs && packets > this.reportedPackets[s]!) due.push(i);
      }
    };
    const end = (view: FlowTableView, evicted: readonly EvictedFlow[]): FlowRecord[] => {
      const out = closed;
      for (const e of evicted) {
        const s = this.ix.find(e.keyWords, e.keyAt);
        out.push(this.record('final', e.packets, e.bytes, s, atMs, e));
        if (s >= 0) this.ix.remove(s);
      }
      for (let i = 0; i < view.count; i++) if (view.removed[i]) stateOf[i] = -1;
      for (const i of due) {
        const s = stateOf[i]!;
        if (s >= 0 && this.index[s] === i) out.push(this.report('active', view.flow(i), s, atMs));
      }
      // Gone from the table without passing through eviction: close them with
      // what we last read, so state never outlives the flows.
      for (let s = 0, n = this.ix.highWater; s < n; s++) {
        if (!this.ix.isLive(s) || this.gen[s] === cycle) continue;
        out.push(this.report('final', this.current!.flow(this.index[s]!), s, atMs));
        this.ix.remove(s);
      }
      // Every state now belongs to `view`: the previous read can go.
      this.current = view;
      this.stateOf = stateOf;
      this.mirrorRead = mirrorRead;
      return out;
    };
    return { add, end };
  }

  /** Rates of flow i of the last view passed to ingest(). */
  rateAt(i: number): { packetsPerSec: number; bytesPerSec: number } | undefined {
    const s = this.stateOf[i] ?? -1;
    return s < 0 ? undefined : { packetsPerSec: this.pps[s]!, bytesPerSec: this.bps[s]! };
  }

  /** Flows being tracked. */
  get size(): number {
    return this.ix.size;
  }
}
