/**
 * Kernel timestamps are CLOCK_MONOTONIC nanoseconds; so is process.hrtime
 * (libuv reads the same clock). One offset, taken at start, turns them into
 * wall-clock dates.
 */
export class MonotonicClock {
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

  nowNs(): bigint {
    return process.hrtime.bigint();
  }
}
