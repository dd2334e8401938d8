/**
 * The flow pipeline, wired in one place: tracer (read and evict the kernel
 * table on a period) -> accounter (rates, active and final records) ->
 * conversations -> the consumer (exporter). The agent plugs its API, CLI
 * feed and exporters in as the consumer.
 */
import type { NetworkMonitor } from '../monitor/network-monitor.js';
import type { FlowSnapshot } from '../monitor/flow-snapshot.js';
import type { FlowStats } from '../types.js';
import { FlowAccounter, type FlowRecord } from './flow-accounter.js';
import { toConversations, type Conversation } from './conversations.js';
import { InvalidArgumentError } from '../errors.js';
import { upFrontRoom } from '../monitor/flow-key-index.js';

export interface FlowPipelineOptions {
  /** How often the kernel table is read, ms. Default 1000. */
  intervalMs?: number;
  /** A flow with no packet for this long leaves the kernel table with a final record, ms. Default 15000. */
  idleTimeoutMs?: number;
  /**
   * A TCP flow that has seen a FIN or RST leaves once idle this long, ms.
   * Default 2000: a closed connection's flow does not hold its place in the
   * table for the whole idle timeout (with 15 s, the default table holds
   * only about 2 000 new connections a second).
   */
  endedTimeoutMs?: number;
  /** A long flow gets a record at least this often, ms. Default 60000. */
  activeTimeoutMs?: number;
  /** Where a failed cycle goes; default: the monitor's 'error' event. */
  onError?: (err: Error) => void;
}

export interface PipelineCycle {
  at: Date;
  /** Active and final records due this cycle. */
  records: FlowRecord[];
  /** The table as read this cycle, as bytes (evicted flows marked removed). */
  snapshot: FlowSnapshot;
  /** The live flows, decoded on first use. */
  readonly flows: FlowStats[];
  /** Conversations of `flows`, computed on first use (most cycles never need them). */
  readonly conversations: Conversation[];
  /** Rates over the last interval of flow i of `snapshot`. */
  rate(i: number): { packetsPerSec: number; bytesPerSec: number } | undefined;
  /** How long the cycle took, ms. */
  durationMs: number;
}

export interface FlowPipeline {
  /** Runs one cycle now (also what the timer runs); cycles never overlap. */
  runOnce(): Promise<PipelineCycle>;
  /** Stops the timer; resolves once a cycle in progress has ended. */
  close(): Promise<void>;
}

export function startFlowPipeline(monitor: NetworkMonitor, options: FlowPipelineOptions, consume: (cycle: PipelineCycle) => void): FlowPipeline {
  const intervalMs = options.intervalMs ?? 1000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 15000;
  const endedTimeoutMs = Math.min(options.endedTimeoutMs ?? 2000, idleTimeoutMs);
  const activeTimeoutMs = options.activeTimeoutMs ?? 60000;
  for (const [name, v] of Object.entries({ intervalMs, idleTimeoutMs, endedTimeoutMs, activeTimeoutMs })) {
    if (!Number.isFinite(v) || v <= 0) throw new InvalidArgumentError(`${name} must be a positive number of milliseconds, got ${v}`);
  }
  const accounter = new FlowAccounter({ activeTimeoutMs, initialFlows: upFrontRoom(monitor.flowTableCapacity) });

  const cycleOnce = async (): Promise<PipelineCycle> => {
    const t0 = performance.now();
    // Tracer: one read, off the event loop; idle flows leave the kernel
    // table with their final figures.
    // The accounter takes each batch while the kernel copies out the next.
    const read = accounter.begin(t0);
    const snapshot = await monitor.readFlowSnapshotAsync((words, counts, start, count, removed, mirror) => read.add(words, counts, start, count, removed, mirror));
    const evicted = monitor.evictIdle(snapshot, idleTimeoutMs, endedTimeoutMs);
    const records = read.end(snapshot, evicted);
    let flows: FlowStats[] | undefined;
    let conversations: Conversation[] | undefined;
    const cycle: PipelineCycle = {
      at: new Date(),
      records,
      snapshot,
      get flows() {
        return (flows ??= snapshot.flows());
      },
      get conversations() {
        return (conversations ??= toConversations(this.flows));
      },
      rate: (i) => accounter.rateAt(i),
      durationMs: performance.now() - t0,
    };
    // Exporter.
    consume(cycle);
    return cycle;
  };

  // One cycle at a time: a caller's runOnce() and the timer's wait their turn.
  let running: Promise<PipelineCycle> | undefined;
  const runOnce = async (): Promise<PipelineCycle> => {
    while (running) await running.catch(() => {});
    const run = cycleOnce();
    running = run;
    try {
      return await run;
    } finally {
      if (running === run) running = undefined;
    }
  };

  let closed = false;
  let timer: NodeJS.Timeout | null = null;
  // The next cycle is timed from the start of the last, never overlapping a
  // slow one: a cycle that takes longer than the interval delays the next.
  const schedule = (lastStart: number): void => {
    if (closed) return;
    timer = setTimeout(() => void tick(), Math.max(0, lastStart + intervalMs - performance.now()));
  };
  const tick = async (): Promise<void> => {
    const start = performance.now();
    try {
      await runOnce();
    } catch (err) {
      if (closed) return;
      const e = err instanceof Error ? err : new Error(String(err));
      if (options.onError) options.onError(e);
      else monitor.emit('error', e);
    }
    schedule(start);
  };
  schedule(performance.now());
  return {
    runOnce,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running?.catch(() => {});
    },
  };
}
