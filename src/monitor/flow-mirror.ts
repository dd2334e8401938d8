/**
 * User space's copy of the kernel flow table, kept current by delta reads:
 * the knp_flow_read iterator (bpf/flow-read.bpf.h) writes only the flows
 * with a packet since the last read, each summed over CPUs, and the mirror
 * folds them into what it already has. Every read still yields the whole
 * table (a FlowSnapshot), so nothing downstream knows reads are deltas; a
 * flow that has not moved costs the kernel a visit and user space nothing.
 *
 * Flows leave the mirror when user space evicts them (remove()), and in a
 * full read (every flow written): those it lacks are gone from the kernel.
 */
import { FLOW_READ_HEADER, FLOW_RECORD, FLOW_VALUE } from '../abi/layouts.js';
import { KubeNetProbeError } from '../errors.js';
import { FLOW_KEY_BYTES, FlowKeyIndex } from './flow-key-index.js';
import { FlowCounterSums, FlowSnapshot, type FlowDecoder } from './flow-snapshot.js';
import { resized } from './resized.js';

const TWO32 = 4294967296;
const VALUE = FLOW_VALUE.size;
const VALUE_WORDS = VALUE / 4;
const REC = FLOW_RECORD.size;
const REC_WORDS = REC / 4;

export class FlowMirror {
  private readonly ix: FlowKeyIndex;
  /** Slot s's summed value (struct knp_flow_value, whole 32-bit words) at s * 12. */
  private values = new Uint32Array(0);
  private packets = new Float64Array(0);
  private bytes = new Float64Array(0);
  private lastSeen = new Float64Array(0);
  private flags = new Uint32Array(0);
  /** The read that last wrote slot s (a full read drops slots it did not write). */
  private seenIn = new Uint32Array(0);
  /** The read in which each slot got its key. */
  private born = new Uint32Array(0);
  private reads = 0;

  constructor(initialFlows = 0) {
    this.ix = new FlowKeyIndex((cap) => this.grow(cap), initialFlows);
  }

  private grow(cap: number): void {
    this.values = resized(this.values, cap * VALUE_WORDS);
    this.packets = resized(this.packets, cap);
    this.bytes = resized(this.bytes, cap);
    this.lastSeen = resized(this.lastSeen, cap);
    this.flags = resized(this.flags, cap);
    this.seenIn = resized(this.seenIn, cap);
    this.born = resized(this.born, cap);
  }

  /** Flows held. */
  get size(): number {
    return this.ix.size;
  }

  /**
   * Folds in one read's output (`length` bytes of `buf`: the header, then
   * records). `full`: the read wrote every flow, so flows it lacks are gone.
   * Returns the jiffies at which the read began, and how many records it had.
   */
  apply(buf: Buffer, length: number, full: boolean): { startJiffies: number; records: number } {
    if (length < FLOW_READ_HEADER.size) throw new KubeNetProbeError('SYSTEM', `flow table read: ${length} bytes, less than its header`);
    const h = FLOW_READ_HEADER.offsets;
    const startJiffies = Number(buf.readBigUInt64LE(h.now_jiffies));
    const recordSize = buf.readUInt32LE(h.record_size);
    const body = length - FLOW_READ_HEADER.size;
    if (recordSize !== REC || body % REC !== 0) {
      throw new KubeNetProbeError('SYSTEM', `flow table read: records of ${recordSize} bytes (${body} in all), expected ${REC}: the object and this build disagree`);
    }
    const records = body / REC;
    // Records are 4-byte aligned where the read buffer is (a buffer of its own is).
    const base = buf.byteOffset + FLOW_READ_HEADER.size;
    const words = base % 4 === 0 ? new Uint32Array(buf.buffer, base, records * REC_WORDS) : new Uint32Array(new Uint8Array(buf.buffer, base, records * REC).slice().buffer);
    const read = ++this.reads;
    const o = FLOW_VALUE.offsets;
    for (let r = 0; r < records; r++) {
      const at = r * REC_WORDS;
      let s = this.ix.find(words, at);
      if (s < 0) {
        s = this.ix.insert(words, at);
        this.born[s] = read;
      }
      const v = at + FLOW_RECORD.offsets.value / 4;
      this.packets[s] = words[v + o.packets / 4]! + words[v + o.packets / 4 + 1]! * TWO32;
      this.bytes[s] = words[v + o.bytes / 4]! + words[v + o.bytes / 4 + 1]! * TWO32;
      this.lastSeen[s] = words[v + o.last_seen_jiffies / 4]! + words[v + o.last_seen_jiffies / 4 + 1]! * TWO32;
      this.flags[s] = words[v + o.tcp_flags / 4]!;
      for (let k = 0, to = s * VALUE_WORDS; k < VALUE_WORDS; k++) this.values[to + k] = words[v + k]!;
      this.seenIn[s] = read;
    }
    if (full) {
      for (let s = 0, n = this.ix.highWater; s < n; s++) if (this.ix.isLive(s) && this.seenIn[s] !== read) this.ix.remove(s);
    }
    return { startJiffies, records };
  }

  /** Drops a flow (evicted from the kernel table); false if it was not held. */
  remove(keyWords: Uint32Array, at: number): boolean {
    const s = this.ix.find(keyWords, at);
    if (s < 0) return false;
    this.ix.remove(s);
    return true;
  }

  /**
   * The table as a snapshot of its own (copies: the next read changes the
   * mirror, not the snapshot). Flow i is slot i; free slots read as removed.
   * `decode` gets values already summed (one CPU's worth each).
   */
  snapshot(decode: FlowDecoder, jiffiesToMs: (jiffies: number) => number): FlowSnapshot {
    const n = this.ix.highWater;
    const keys = Buffer.from(this.ix.keys.buffer.slice(0, n * FLOW_KEY_BYTES));
    const values = Buffer.from(this.values.slice(0, n * VALUE_WORDS).buffer);
    const sums = FlowCounterSums.of(this.packets.slice(0, n), this.bytes.slice(0, n), this.lastSeen.slice(0, n), this.flags.slice(0, n));
    const removed = new Uint8Array(n);
    for (let s = 0; s < n; s++) if (!this.ix.isLive(s)) removed[s] = 1;
    return new FlowSnapshot(n, keys, values, VALUE, sums, decode, jiffiesToMs, removed, { read: this.reads, writtenIn: this.seenIn.slice(0, n), bornIn: this.born.slice(0, n) });
  }
}
