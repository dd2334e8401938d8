/**
 * Flow keys (the kernel's 44-byte struct knp_flow_key, as 11 32-bit words)
 * mapped to dense slot numbers, for state kept in typed arrays beside it: an
 * open-addressing table over the key words, with freed slots reused. A
 * million flows cost no object each. The owner keeps its per-slot arrays as
 * long as `capacity` (onGrow says when it changes).
 */
import { resized } from './resized.js';

/** The bytes that identify a flow (the kernel key), and as 32-bit words. */
export const FLOW_KEY_BYTES = 44;
export const FLOW_KEY_WORDS = FLOW_KEY_BYTES / 4;
const W = FLOW_KEY_WORDS;

/**
 * Flows to make room for up front, for a kernel table of `capacity`: the
 * default table fills in a second under connection churn, and growing
 * through it (rehashing, collecting the old arrays) costs more than the
 * room; above 65 536 flows (about 8 MB of state) it grows as needed.
 */
export function upFrontRoom(capacity: number): number {
  return Math.min(capacity, 65_536);
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

export class FlowKeyIndex {
  // Slots of the open-addressing table hold a slot number + 1 (0 = empty).
  private table = new Int32Array(1024);
  private mask = 1023;
  private used = 0;
  private cap = 0;
  /** Slot s's key at s * 11. */
  keys = new Uint32Array(0);
  private live = new Uint8Array(0);
  private readonly free: number[] = [];
  private next = 0;

  constructor(
    /** Called with the new capacity before a slot beyond the old one is handed out. */
    private readonly onGrow: (capacity: number) => void = () => {},
    initial = 0,
  ) {
    if (initial > 0) this.reserve(initial);
  }

  /** Room for `n` keys without growing or rehashing. */
  reserve(n: number): void {
    if (n > this.cap) this.grow(n);
    // The table stays at most half full.
    let size = this.table.length;
    while (size < n * 2) size *= 2;
    if (size > this.table.length) this.rehash(size);
  }

  /** Slots handed out so far (live ones are below it). */
  get highWater(): number {
    return this.next;
  }

  get capacity(): number {
    return this.cap;
  }

  get size(): number {
    return this.used;
  }

  isLive(s: number): boolean {
    return this.live[s] === 1;
  }

  private grow(cap = Math.max(1024, this.cap * 2)): void {
    this.keys = resized(this.keys, cap * W);
    this.live = resized(this.live, cap);
    this.cap = cap;
    this.onGrow(cap);
  }

  private sameKey(s: number, w: Uint32Array, at: number): boolean {
    const base = s * W;
    for (let i = 0; i < W; i++) if (this.keys[base + i] !== w[at + i]) return false;
    return true;
  }

  /** The slot of the key at `at` in `w`, or -1. */
  find(w: Uint32Array, at: number): number {
    for (let slot = hashKey(w, at) & this.mask; ; slot = (slot + 1) & this.mask) {
      const v = this.table[slot]!;
      if (v === 0) return -1;
      if (this.sameKey(v - 1, w, at)) return v - 1;
    }
  }

  /** A slot for a key that is not in the index (find() said -1). */
  insert(w: Uint32Array, at: number): number {
    if ((this.used + 1) * 2 > this.table.length) this.rehash(this.table.length * 2);
    const s = this.free.length ? this.free.pop()! : this.next++;
    if (s >= this.cap) this.grow();
    for (let i = 0, to = s * W; i < W; i++) this.keys[to + i] = w[at + i]!;
    this.live[s] = 1;
    let slot = hashKey(w, at) & this.mask;
    while (this.table[slot] !== 0) slot = (slot + 1) & this.mask;
    this.table[slot] = s + 1;
    this.used++;
    return s;
  }

  remove(s: number): void {
    let slot = hashKey(this.keys, s * W) & this.mask;
    while (this.table[slot] !== s + 1) slot = (slot + 1) & this.mask;
    // Backward-shift deletion keeps probe chains whole without tombstones.
    let hole = slot;
    for (let j = (hole + 1) & this.mask; this.table[j] !== 0; j = (j + 1) & this.mask) {
      const v = this.table[j]! - 1;
      const home = hashKey(this.keys, v * W) & this.mask;
      // Move it into the hole unless its home lies cyclically in (hole, j].
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!between) {
        this.table[hole] = this.table[j]!;
        hole = j;
      }
    }
    this.table[hole] = 0;
    this.used--;
    this.live[s] = 0;
    this.free.push(s);
  }

  private rehash(size: number): void {
    const old = this.table;
    this.table = new Int32Array(size);
    this.mask = size - 1;
    for (const v of old) {
      if (v === 0) continue;
      let slot = hashKey(this.keys, (v - 1) * W) & this.mask;
      while (this.table[slot] !== 0) slot = (slot + 1) & this.mask;
      this.table[slot] = v;
    }
  }
}
