/**
 * Kernel timestamps are CLOCK_MONOTONIC nanoseconds; so is process.hrtime
 * (libuv reads the same clock). One offset, taken at start, turns them into
 * wall-clock dates.
 */
import { libc } from '../ffi/native.js';

const CLOCK_MONOTONIC_COARSE = 6;

/** The kernel tick (one jiffy) in ns: the resolution of CLOCK_MONOTONIC_COARSE. */
export function tickNs(): number {
  const ts = Buffer.alloc(16);
  if ((libc.clock_getres(CLOCK_MONOTONIC_COARSE, ts) as number) !== 0) return 4_000_000; // HZ=250, the common default
  return Number(ts.readBigInt64LE(0)) * 1e9 + Number(ts.readBigInt64LE(8));
}

/** A pair of readings of coarse CLOCK_MONOTONIC (ns) and jiffies taken together. */
export interface JiffiesAnchor {
  ns: number;
  jiffies: number;
}

export class MonotonicClock {
  readonly tickNs = tickNs();

  private readonly offsetMs: number;

  constructor() {
    this.offsetMs = Date.now() - Number(process.hrtime.bigint()) / 1e6;
  }

  toDate(monoNs: bigint): Date {
    return new Date(this.offsetMs + Number(monoNs) / 1e6);
  }

  /** The same from milliseconds of CLOCK_MONOTONIC (no BigInt on the hot path). */
  toDateMs(monoMs: number): Date {
    return new Date(this.offsetMs + monoMs);
  }

  /** CLOCK_MONOTONIC ms of a jiffies value, through an anchor pair. */
  jiffiesToMonoMs(jiffies: number, anchor: JiffiesAnchor): number {
    return (anchor.ns + (jiffies - anchor.jiffies) * this.tickNs) / 1e6;
  }

  nowNs(): bigint {
    return process.hrtime.bigint();
  }
}
