/**
 * One read of the kernel flow table, kept as bytes: keys and per-CPU values
 * copied out of the batch-read buffers. Counters are read straight from the
 * bytes; a flow is decoded into a FlowStats object only when asked for, so a
 * cycle over a large table allocates next to nothing.
 */
import { FLOW_KEY, FLOW_VALUE } from '../abi/layouts.js';
import type { FlowStats } from '../types.js';

const TWO32 = 4294967296;

export type FlowDecoder = (kv: DataView, keyAt: number, vv: DataView, valueAt: number) => FlowStats;

export class FlowSnapshot {
  readonly count: number;
  /** Set for flows evicted from the kernel table after this read. */
  readonly removed: Uint8Array;
  /** The keys as 32-bit words, flow i at i * 11 (for the accounter's hashing). */
  readonly keyWords: Uint32Array;
  private readonly kv: DataView;
  private readonly vv: DataView;
  // Counters summed over CPUs, in one pass up front: reading them later
  // allocates nothing.
  private readonly packets: Float64Array;
  private readonly bytes: Float64Array;
  private readonly lastSeen: Float64Array;

  constructor(
    count: number,
    private readonly keys: Buffer,
    values: Buffer,
    private readonly stride: number,
    cpus: number,
    private readonly decode: FlowDecoder,
    /** CLOCK_MONOTONIC ms of a jiffies value. */
    private readonly jiffiesToMs: (jiffies: number) => number,
  ) {
    this.count = count;
    this.removed = new Uint8Array(count);
    // A word view needs 4-byte alignment; a read buffer of its own has it, a copy makes sure.
    const aligned = keys.byteOffset % 4 === 0 ? keys : Buffer.from(keys);
    this.keyWords = new Uint32Array(aligned.buffer, aligned.byteOffset, (count * FLOW_KEY.size) / 4);
    this.kv = new DataView(keys.buffer, keys.byteOffset, keys.byteLength);
    this.vv = new DataView(values.buffer, values.byteOffset, values.byteLength);
    this.packets = new Float64Array(count);
    this.bytes = new Float64Array(count);
    this.lastSeen = new Float64Array(count);
    const o = FLOW_VALUE.offsets;
    const v = this.vv;
    for (let i = 0; i < count; i++) {
      let p = 0;
      let b = 0;
      let last = 0;
      for (let c = 0, at = i * stride; c < cpus; c++, at += FLOW_VALUE.size) {
        const n = v.getUint32(at + o.packets, true) + v.getUint32(at + o.packets + 4, true) * TWO32;
        if (n === 0) continue;
        p += n;
        b += v.getUint32(at + o.bytes, true) + v.getUint32(at + o.bytes + 4, true) * TWO32;
        const l = v.getUint32(at + o.last_seen_jiffies, true) + v.getUint32(at + o.last_seen_jiffies + 4, true) * TWO32;
        if (l > last) last = l;
      }
      this.packets[i] = p;
      this.bytes[i] = b;
      this.lastSeen[i] = last;
    }
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
