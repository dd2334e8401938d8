/**
 * One read of the kernel flow table, kept as bytes: keys and per-CPU values
 * copied out of the batch-read buffers. Counters are read straight from the
 * bytes; a flow is decoded into a FlowStats object only when asked for, so a
 * cycle over a large table allocates next to nothing.
 */
import { FLOW_KEY, FLOW_VALUE } from '../abi/layouts.js';
import type { FlowStats } from '../types.js';
import { resized } from './resized.js';

const TWO32 = 4294967296;

export type FlowDecoder = (kv: DataView, keyAt: number, vv: DataView, valueAt: number) => FlowStats;

/**
 * A flow taken out of the kernel table (evictIdle) with its final figures.
 * The totals are numbers; the rest (addresses as strings, dates) is decoded
 * only when `flow` is first read, since most final records are counted and
 * kept, not shown.
 */
export interface EvictedFlow {
  /** The kernel key as 32-bit words, at keyAt .. keyAt + 11 (a buffer shared by the flows evicted together). */
  readonly keyWords: Uint32Array;
  readonly keyAt: number;
  readonly packets: number;
  readonly bytes: number;
  /** The flow decoded (on first use). */
  readonly flow: FlowStats;
}

/**
 * For reads from a mirror of the table (FlowMirror: flow i is slot i, which
 * a flow keeps while it lives): which flows the mirror wrote in which read.
 * A flow not written since a consumer's last read is the same flow with the
 * same counters (the accounter then passes it over without a lookup); a
 * flow whose slot got its key before that read is the same flow as then
 * (the accounter finds its state by the slot, without hashing the key).
 */
export interface MirrorRead {
  /** This read's number. */
  read: number;
  /** The read that last wrote flow i. */
  writtenIn: Uint32Array;
  /** The read in which flow i's slot got its key. */
  bornIn: Uint32Array;
}

/** Each flow's packets and bytes, summed over CPUs, by index. */
export interface FlowCounterView {
  packetsAt(i: number): number;
  bytesAt(i: number): number;
}

/**
 * Each flow's packets, bytes and last-seen jiffies summed over CPUs. Filled
 * a chunk at a time as the batch read goes (so the summing overlaps the
 * kernel's copying), growing as it must.
 */
export class FlowCounterSums {
  packets: Float64Array;
  bytes: Float64Array;
  lastSeen: Float64Array;
  /** The OR of every CPU's tcp_flags (TCP flag bits and KNP_TCP_*). */
  flags: Uint32Array;

  constructor(
    expected: number,
    private readonly stride: number,
    private readonly cpus: number,
  ) {
    this.packets = new Float64Array(expected);
    this.bytes = new Float64Array(expected);
    this.lastSeen = new Float64Array(expected);
    this.flags = new Uint32Array(expected);
  }

  /** Counters summed already (by the kernel's flow read). */
  static of(packets: Float64Array, bytes: Float64Array, lastSeen: Float64Array, flags: Uint32Array): FlowCounterSums {
    const sums = new FlowCounterSums(0, 0, 1);
    sums.packets = packets;
    sums.bytes = bytes;
    sums.lastSeen = lastSeen;
    sums.flags = flags;
    return sums;
  }

  private ensure(n: number): void {
    if (n <= this.packets.length) return;
    const size = Math.max(n, this.packets.length * 2);
    this.packets = resized(this.packets, size);
    this.bytes = resized(this.bytes, size);
    this.lastSeen = resized(this.lastSeen, size);
    this.flags = resized(this.flags, size);
  }

  packetsAt(i: number): number {
    return this.packets[i]!;
  }

  bytesAt(i: number): number {
    return this.bytes[i]!;
  }

  /** Sums flows start .. start + count of `values` (every CPU's value of a flow back to back). */
  add(values: Buffer, start: number, count: number): void {
    this.ensure(start + count);
    const o = FLOW_VALUE.offsets;
    const v = new DataView(values.buffer, values.byteOffset, values.byteLength);
    const { packets, bytes, lastSeen, flags, stride, cpus } = this;
    for (let i = start, end = start + count; i < end; i++) {
      let p = 0;
      let b = 0;
      let last = 0;
      let f = 0;
      for (let c = 0, at = i * stride; c < cpus; c++, at += FLOW_VALUE.size) {
        const n = v.getUint32(at + o.packets, true) + v.getUint32(at + o.packets + 4, true) * TWO32;
        if (n === 0) continue;
        p += n;
        b += v.getUint32(at + o.bytes, true) + v.getUint32(at + o.bytes + 4, true) * TWO32;
        const l = v.getUint32(at + o.last_seen_jiffies, true) + v.getUint32(at + o.last_seen_jiffies + 4, true) * TWO32;
        if (l > last) last = l;
        f |= v.getUint32(at + o.tcp_flags, true);
      }
      packets[i] = p;
      bytes[i] = b;
      lastSeen[i] = last;
      flags[i] = f;
    }
  }
}

export class FlowSnapshot {
  readonly count: number;
  /** Set for flows evicted from the kernel table after this read. */
  readonly removed: Uint8Array;
  /** The keys as 32-bit words, flow i at i * 11 (for the accounter's hashing). */
  readonly keyWords: Uint32Array;
  private readonly kv: DataView;
  private readonly vv: DataView;
  private readonly packets: Float64Array;
  private readonly bytes: Float64Array;
  private readonly lastSeen: Float64Array;
  private readonly flags: Uint32Array;

  constructor(
    count: number,
    private readonly keys: Buffer,
    values: Buffer,
    private readonly stride: number,
    /** The counters of flows 0 .. count - 1, already summed (see FlowCounterSums). */
    sums: FlowCounterSums,
    private readonly decode: FlowDecoder,
    /** CLOCK_MONOTONIC ms of a jiffies value. */
    private readonly jiffiesToMs: (jiffies: number) => number,
    /** Flows not in the table (free slots of a mirror); by default none. */
    removed?: Uint8Array,
    /** Set when the snapshot is a mirror's. */
    readonly mirror?: MirrorRead,
  ) {
    this.count = count;
    this.removed = removed ?? new Uint8Array(count);
    // A word view needs 4-byte alignment; a read buffer of its own has it, a copy makes sure.
    const aligned = keys.byteOffset % 4 === 0 ? keys : Buffer.from(keys);
    this.keyWords = new Uint32Array(aligned.buffer, aligned.byteOffset, (count * FLOW_KEY.size) / 4);
    this.kv = new DataView(keys.buffer, keys.byteOffset, keys.byteLength);
    this.vv = new DataView(values.buffer, values.byteOffset, values.byteLength);
    this.packets = sums.packets;
    this.bytes = sums.bytes;
    this.lastSeen = sums.lastSeen;
    this.flags = sums.flags;
  }

  /** Flow i's TCP flags, ORed over its packets (TCP flag bits and KNP_TCP_*). */
  tcpFlagsAt(i: number): number {
    return this.flags[i]!;
  }

  /** The raw key of flow i (a copy). */
  key(i: number): Buffer {
    return Buffer.from(this.keys.subarray(i * FLOW_KEY.size, (i + 1) * FLOW_KEY.size));
  }

  packetsAt(i: number): number {
    return this.packets[i]!;
  }

  bytesAt(i: number): number {
    return this.bytes[i]!;
  }

  /** Flow i's last packet, CLOCK_MONOTONIC ms. */
  lastSeenMsAt(i: number): number {
    return this.jiffiesToMs(this.lastSeen[i]!);
  }

  flow(i: number): FlowStats {
    return this.decode(this.kv, i * FLOW_KEY.size, this.vv, i * this.stride);
  }

  /** Every flow still in the table, decoded. */
  flows(): FlowStats[] {
    const out: FlowStats[] = [];
    for (let i = 0; i < this.count; i++) if (!this.removed[i]) out.push(this.flow(i));
    return out;
  }
}
