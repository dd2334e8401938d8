/**
 * A flow's FlowStats from its raw key and summed value: at once for reads,
 * or on first use for evicted flows (most final records are counted and
 * kept, never shown, and decoding addresses into text is most of the cost).
 */
import { TCP_OPENED } from '../abi/layouts.js';
import { decodeFlowKey, tcpFlagNamesCached, type RawFlowValue } from '../abi/decode.js';
import type { FlowKey, FlowStats } from '../types.js';
import type { JiffiesAnchor, MonotonicClock } from './clock.js';
import type { EvictedFlow } from './flow-snapshot.js';

/** What decoding a flow's value needs: CPUs, the jiffies anchor, the wall clock (ms) for interface names. */
export interface FlowDecodeContext {
  cpus: number;
  anchor: JiffiesAnchor;
  now: number;
}

/** A flow's FlowStats from its decoded key and summed value. */
export function flowStatsOf(key: FlowKey, ifname: string | undefined, v: RawFlowValue, ctx: FlowDecodeContext, clock: MonotonicClock): FlowStats {
  return {
    key,
    interface: ifname,
    packets: v.packets,
    bytes: v.bytes,
    firstSeen: clock.toDateMs(v.firstSeenMs),
    lastSeen: clock.toDateMs(clock.jiffiesToMonoMs(v.lastSeenJiffies, ctx.anchor)),
    tcpFlags: tcpFlagNamesCached(v.tcpFlags),
    synCount: v.synCount,
    finCount: v.finCount,
    rstCount: v.rstCount,
    opened: (v.tcpFlags & TCP_OPENED) !== 0,
  };
}

/** An evicted flow whose key is decoded (addresses as strings, dates) only when `flow` is first read. */
export class LazyEvictedFlow implements EvictedFlow {
  private decoded: FlowStats | undefined;
  readonly packets: number;
  readonly bytes: number;
  constructor(
    readonly keyWords: Uint32Array,
    readonly keyAt: number,
    private readonly kv: DataView,
    private readonly value: RawFlowValue,
    private readonly ifname: string | undefined,
    private readonly ctx: FlowDecodeContext,
    private readonly clock: MonotonicClock,
  ) {
    this.packets = value.packets;
    this.bytes = value.bytes;
  }

  get flow(): FlowStats {
    return (this.decoded ??= flowStatsOf(decodeFlowKey(this.kv, this.keyAt * 4), this.ifname, this.value, this.ctx, this.clock));
  }
}
