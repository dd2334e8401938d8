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

/** The bytes that identify a flow (the kernel key), and as 32-bit words. */
export const FLOW_KEY_BYTES = 44;
const W = FLOW_KEY_BYTES / 4;

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
  add(words: Uint32Array, counts: FlowCounts, start: number, count: number, removed?: Uint8Array): void;
  /** The whole read, and the flows evicted after it; returns the records due. */
  end(view: FlowTableView, evicted: readonly EvictedFlow[]): FlowRecord[];
}

export interface EvictedFlow {
  /** The kernel key, FLOW_KEY_BYTES long. */
  key: Uint8Array;
  flow: FlowStats;
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

/** A multiply-xorshift hash over the key's 11 words, from `at` in `w`. */
function hashKey(w: Uint32Array, at: number): number {
  let h = 0x9e3779b9;
  for (let i = 0; i < W; i++) {
    h = Math.imul(h ^ w[at + i]!, 0x85ebca6b);
    h ^= h >>> 13;
  }
  return h >>> 0;
}

/** The 11 words of a key given as bytes. */
function wordsOf(k: Uint8Array): Uint32Array {
  const w = new Uint32Array(W);
  new Uint8Array(w.buffer).set(k.subarray(0, FLOW_KEY_BYTES));
  return w;
}

export class FlowAccounter {
  // Slots of the open-addressing table hold a state number + 1 (0 = empty).
  private slots = new Int32Array(1024);
  private mask = 1023;
  private used = 0;
  // Per state (dense, reused through `free`).
  private cap = 0;
  private keys = new Uint32Array(0);
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
  private alive = new Uint8Array(0);
  private readonly free: number[] = [];
  private next = 0;
  private live = 0;
  private cycle = 0;
  /** The last read ended; states not seen in the read under way point into it. */
  private current: FlowTableView | undefined;
  /** State number of each flow of the current view (-1: removed). */
  private stateOf = new Int32Array(0);

  constructor(private readonly opts: AccounterOptions) {
    const n = Math.max(0, Math.floor(opts.initialFlows ?? 0));
    if (n > 0) {
      if (n > this.cap) this.grow(n);
      // The open-addressing table stays at most half full.
      let size = this.slots.length;
      while (size < n * 2) size *= 2;
      if (size > this.slots.length) this.rehash(size);
    }
  }

  /** Room for `cap` states (by default twice as many as now). */
  private grow(cap = Math.max(1024, this.cap * 2)): void {
    const f64 = (a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    const keys = new Uint32Array(cap * W);
    keys.set(this.keys);
    this.keys = keys;
    const gen = new Uint32Array(cap);
    gen.set(this.gen);
    this.gen = gen;
    const index = new Int32Array(cap);
    index.set(this.index);
    this.index = index;
    const alive = new Uint8Array(cap);
    alive.set(this.alive);
    this.alive = alive;
    this.packets = f64(this.packets);
    this.bytes = f64(this.bytes);
    this.readAt = f64(this.readAt);
    this.reportedPackets = f64(this.reportedPackets);
    this.reportedBytes = f64(this.reportedBytes);
    this.reportedAt = f64(this.reportedAt);
    this.pps = f64(this.pps);
    this.bps = f64(this.bps);
    this.cap = cap;
  }

  private sameKey(s: number, w: Uint32Array, at: number): boolean {
    const base = s * W;
    for (let i = 0; i < W; i++) if (this.keys[base + i] !== w[at + i]) return false;
    return true;
  }

  /** The state of the key at `at` in `w`, or -1. */
  private find(w: Uint32Array, at: number): number {
    for (let slot = hashKey(w, at) & this.mask; ; slot = (slot + 1) & this.mask) {
      const v = this.slots[slot]!;
      if (v === 0) return -1;
      if (this.sameKey(v - 1, w, at)) return v - 1;
    }
  }

  private insert(w: Uint32Array, at: number): number {
    if ((this.used + 1) * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    const s = this.free.length ? this.free.pop()! : this.next++;
    if (s >= this.cap) this.grow();
    this.keys.set(w.subarray(at, at + W), s * W);
    this.alive[s] = 1;
    let slot = hashKey(w, at) & this.mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & this.mask;
    this.slots[slot] = s + 1;
    this.used++;
    this.live++;
    return s;
  }

  private remove(s: number): void {
    let slot = hashKey(this.keys, s * W) & this.mask;
    while (this.slots[slot] !== s + 1) slot = (slot + 1) & this.mask;
    // Backward-shift deletion keeps probe chains whole without tombstones.
    let hole = slot;
    for (let j = (hole + 1) & this.mask; this.slots[j] !== 0; j = (j + 1) & this.mask) {
      const v = this.slots[j]! - 1;
      const home = hashKey(this.keys, v * W) & this.mask;
      // Move it into the hole unless its home lies cyclically in (hole, j].
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!between) {
        this.slots[hole] = this.slots[j]!;
        hole = j;
      }
    }
    this.slots[hole] = 0;
    this.used--;
    this.live--;
    this.alive[s] = 0;
    this.free.push(s);
  }

  private rehash(size: number): void {
    const old = this.slots;
    this.slots = new Int32Array(size);
    this.mask = size - 1;
    for (const v of old) {
      if (v === 0) continue;
      let slot = hashKey(this.keys, (v - 1) * W) & this.mask;
      while (this.slots[slot] !== 0) slot = (slot + 1) & this.mask;
      this.slots[slot] = v;
    }
  }

  private report(reason: FlowRecordReason, flow: FlowStats, s: number, atMs: number): FlowRecord {
    const known = s >= 0;
    const rec: FlowRecord = {
      reason,
      flow,
      deltaPackets: flow.packets - (known ? this.reportedPackets[s]! : 0),
      deltaBytes: flow.bytes - (known ? this.reportedBytes[s]! : 0),
      packetsPerSec: known ? this.pps[s]! : 0,
      bytesPerSec: known ? this.bps[s]! : 0,
    };
    if (known) {
      this.reportedPackets[s] = flow.packets;
      this.reportedBytes[s] = flow.bytes;
      this.reportedAt[s] = atMs;
    }
    return rec;
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
    // Active records are decided as flows arrive but built at end(), when
    // the read's view exists (and an evicted flow gets only its final one).
    const due: number[] = [];
    const closed: FlowRecord[] = [];
    const add = (words: Uint32Array, counts: FlowCounts, start: number, count: number, removed?: Uint8Array): void => {
      if (start + count > stateOf.length) {
        const grown = new Int32Array(Math.max(start + count, stateOf.length * 2)).fill(-1);
        grown.set(stateOf);
        stateOf = grown;
      }
      for (let i = start, end = start + count; i < end; i++) {
        if (removed?.[i]) continue;
        const at = i * W;
        const packets = counts.packetsAt(i);
        const bytes = counts.bytesAt(i);
        let s = this.find(words, at);
        // The same key twice in one read (deleted and re-added under the
        // read): keep the later one.
        if (s >= 0 && this.gen[s] === cycle) stateOf[this.index[s]!] = -1;
        // Fewer packets than last time: the flow left the table (not through
        // us) and came back. Close the old one with what we last read.
        else if (s >= 0 && packets < this.packets[s]!) {
          closed.push(this.report('final', this.current!.flow(this.index[s]!), s, atMs));
          this.remove(s);
          s = -1;
        }
        if (s < 0) {
          s = this.insert(words, at);
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
        const s = this.find(wordsOf(e.key), 0);
        out.push(this.report('final', e.flow, s, atMs));
        if (s >= 0) this.remove(s);
      }
      for (let i = 0; i < view.count; i++) if (view.removed[i]) stateOf[i] = -1;
      for (const i of due) {
        const s = stateOf[i]!;
        if (s >= 0 && this.index[s] === i) out.push(this.report('active', view.flow(i), s, atMs));
      }
      // Gone from the table without passing through eviction: close them with
      // what we last read, so state never outlives the flows.
      for (let s = 0; s < this.next; s++) {
        if (!this.alive[s] || this.gen[s] === cycle) continue;
        out.push(this.report('final', this.current!.flow(this.index[s]!), s, atMs));
        this.remove(s);
      }
      // Every state now belongs to `view`: the previous read can go.
      this.current = view;
      this.stateOf = stateOf;
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
    return this.live;
  }
}
