/**
 * Ring buffer read rate: the mmap RingBufferReader against libbpf's own
 * ring_buffer__new + ring_buffer__consume with a koffi callback that only
 * counts.
 *
 * Producer: BPF_PROG_TEST_RUN on tc_ingress with packetSampleRate 1 (every
 * run emits one 64-byte packet event), called through koffi's .async variant
 * so it runs on a worker thread while the main thread reads. Each trial
 * produces exactly N events; the kernel's drop counter (knp_global) says how
 * many found the ring full. The check is exact: received + dropped == N.
 *
 * Readers (one trial each per round, order rotated):
 *   ours-poll    RingBufferReader.start(): epoll on the map fd, drain per turn
 *   ours-spin    RingBufferReader.drain() in a setImmediate loop
 *   libbpf       ring_buffer__consume() in a setImmediate loop (the baseline)
 *   libbpf-poll  ring_buffer__poll() with a short timeout, informational
 *   monitor      NetworkMonitor 'packet' events (ours-poll + decoding into
 *                PacketInfo objects), informational
 * The producer's speed depends on the reader: a reader that is always caught
 * up makes every submit wake it (irq_work), so the kernel's ns/event for the
 * producer is reported with each row.
 * Then the drain rate alone: the ring pre-filled with events, read to empty.
 */
import koffi from 'koffi';
import { NetworkMonitor } from '../src/monitor/network-monitor.js';
import { RingBufferReader } from '../src/loader/ringbuf.js';
import { libbpf } from '../src/ffi/native.js';
import { possibleCpus } from '../src/loader/map.js';
import { COUNTER, GLOBAL_COUNTERS } from '../src/abi/layouts.js';
import {
  buildFrame,
  envInt,
  fmt,
  fmtSummary,
  log,
  nowNs,
  pairedRatios,
  rotate,
  summarize,
  newResult, writeResult,
  type ResultRow,
} from './common.js';

const EVENTS = envInt('BENCH_EVENTS', 3_000_000);
const ROUNDS = envInt('BENCH_ROUNDS', 7);
const DRAIN_EVENTS = 50_000; // 72 bytes each with the header: fits the 4 MiB ring
const BUDGET = 65536;
const GOAL_RATE = 2e6;
const TRIAL_TIMEOUT_MS = 30_000;
const POLL_TIMEOUT_MS = 5; // ring_buffer__poll blocks the event loop for at most this

// ---- libbpf's ring buffer API, bound here for the baseline.
const lib = koffi.load('libbpf.so.1');
const SampleFn = koffi.proto('int knp_bench_ring_sample_fn(void *ctx, void *data, size_t size)');
const ring_buffer__new = lib.func('void *ring_buffer__new(int map_fd, knp_bench_ring_sample_fn *sample_cb, void *ctx, void *opts)');
const ring_buffer__consume = lib.func('int ring_buffer__consume(void *rb)');
const ring_buffer__poll = lib.func('int ring_buffer__poll(void *rb, int timeout_ms)');
const ring_buffer__free = lib.func('void ring_buffer__free(void *rb)');

/** bpf_test_run_opts in native memory (the async call reads it on a worker thread). */
class AsyncTestRun {
  private mem: unknown;
  private view: DataView;
  private busy = false;

  constructor(
    private readonly progFd: number,
    frame: Uint8Array,
  ) {
    this.mem = koffi.alloc('uint8_t', 256);
    this.view = new DataView(koffi.view(this.mem, 256));
    const base = koffi.address(this.mem);
    this.view.setBigUint64(0, 80n, true); // sz
    this.view.setBigUint64(8, base + 128n, true); // data_in
    this.view.setUint32(24, frame.length, true); // data_size_in
    new Uint8Array(this.view.buffer, 128, frame.length).set(frame);
  }

  private prepare(repeat: number): void {
    this.view.setUint32(28, 0, true); // data_size_out (libbpf writes it back)
    this.view.setUint32(56, 0, true); // retval
    this.view.setUint32(60, repeat, true);
    this.view.setUint32(64, 0, true); // duration
  }

  /** Runs the program `repeat` times on a worker thread. */
  start(repeat: number, done: (err: Error | null, rc: number, nsPerRun: number) => void): void {
    if (this.busy) throw new Error('test run already in flight');
    this.busy = true;
    this.prepare(repeat);
    libbpf.bpf_prog_test_run_opts.async(this.progFd, this.mem, (err: unknown, rc: number) => {
      this.busy = false;
      done(err ? (err as Error) : null, rc, this.view.getUint32(64, true));
    });
  }

  runSync(repeat: number): number {
    this.prepare(repeat);
    return libbpf.bpf_prog_test_run_opts(this.progFd, this.mem) as number;
  }

  close(): void {
    // A run still in flight (a trial that timed out) reads this memory on a
    // worker thread: leave it allocated rather than free it under the kernel.
    if (this.busy) return;
    if (this.mem !== null) {
      this.view = new DataView(new ArrayBuffer(8));
      koffi.free(this.mem);
      this.mem = null;
    }
  }
}

/** Packet events sent and dropped, summed over CPUs (one map lookup). */
function eventCounters(mon: NetworkMonitor): { sent: number; dropped: number } {
  const v = mon.map('knp_global').lookup(new Uint8Array(4));
  let sent = 0;
  let dropped = 0;
  if (v) {
    const stride = Math.ceil(GLOBAL_COUNTERS.size / 8) * 8;
    for (let cpu = 0, n = possibleCpus(); cpu < n; cpu++) {
      sent += Number(v.readBigUInt64LE(cpu * stride + GLOBAL_COUNTERS.offsets.c + COUNTER.packetEventsSent * 8));
      dropped += Number(v.readBigUInt64LE(cpu * stride + GLOBAL_COUNTERS.offsets.c + COUNTER.packetEventsDropped * 8));
    }
  }
  return { sent, dropped };
}

type Mode = 'ours-poll' | 'ours-spin' | 'libbpf' | 'libbpf-poll' | 'monitor';

interface Trial {
  received: number;
  sent: number;
  dropped: number;
  elapsedNs: number;
  producerNsPerEvent: number;
}

/** A reader under test: start() begins reading on the main thread, stop() tears it down. */
interface Consumer {
  received(): number;
  start(onError: (err: unknown) => void): void;
  stop(): void;
}

async function trial(mon: NetworkMonitor, producer: AsyncTestRun, consumer: Consumer, n: number): Promise<Trial> {
  const before = eventCounters(mon);
  return new Promise<Trial>((resolve, reject) => {
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        consumer.stop();
      } catch {
        /* already failing */
      }
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    const timer = setTimeout(() => fail(new Error(`trial did not finish in ${TRIAL_TIMEOUT_MS} ms`)), TRIAL_TIMEOUT_MS);
    let producerNs = 0;
    const t0 = nowNs();
    try {
      consumer.start(fail);
      producer.start(n, (err, rc, nsPerRun) => {
        if (err || rc < 0) return fail(err ?? new Error(`BPF_PROG_TEST_RUN: ${rc}`));
        producerNs = nsPerRun;
        // Production is over: the trial ends when every event has been
        // received or counted as dropped (the reader keeps running meanwhile).
        const tail = (): void => {
          if (settled) return;
          try {
            const now = eventCounters(mon);
            if (consumer.received() + (now.dropped - before.dropped) < n) {
              setImmediate(tail);
              return;
            }
            const elapsedNs = nowNs() - t0;
            settled = true;
            clearTimeout(timer);
            consumer.stop();
            const after = eventCounters(mon);
            resolve({ received: consumer.received(), sent: after.sent - before.sent, dropped: after.dropped - before.dropped, elapsedNs, producerNsPerEvent: producerNs });
          } catch (e) {
            fail(e);
          }
        };
        setImmediate(tail);
      });
    } catch (e) {
      fail(e);
    }
  });
}

function oursConsumer(mon: NetworkMonitor, mode: 'poll' | 'spin'): Consumer {
  const map = mon.map('knp_packet_events');
  let count = 0;
  let reader: RingBufferReader | null = null;
  let spinning = false;
  return {
    received: () => count,
    start(onError) {
      count = 0;
      // A fresh reader per trial: it caches the consumer position, which the
      // libbpf trials move.
      reader = new RingBufferReader(map, () => {
        count++;
      });
      if (mode === 'poll') {
        reader.start(BUDGET, onError);
        return;
      }
      spinning = true;
      const r = reader;
      const step = (): void => {
        if (!spinning) return;
        try {
          r.drain(BUDGET);
        } catch (e) {
          onError(e);
          return;
        }
        setImmediate(step);
      };
      setImmediate(step);
    },
    stop() {
      spinning = false;
      reader?.close();
      reader = null;
    },
  };
}

/**
 * libbpf's reader: ring_buffer__consume() (or ring_buffer__poll(), which
 * waits in epoll first) on the main thread, between event-loop turns so that
 * the producer's completion can arrive. Both loop until the ring is empty.
 */
function libbpfConsumer(mon: NetworkMonitor, how: 'consume' | 'poll'): Consumer {
  const fd = mon.map('knp_packet_events').fd;
  let count = 0;
  let cb: bigint | null = null;
  let rb: unknown = null;
  let spinning = false;
  return {
    received: () => count,
    start(onError) {
      count = 0;
      cb = koffi.register((_ctx: unknown, _data: unknown, _size: number) => {
        count++;
        return 0;
      }, koffi.pointer(SampleFn));
      rb = ring_buffer__new(fd, cb, null, null);
      if (rb === null || rb === 0n) throw new Error(`ring_buffer__new failed (errno ${koffi.errno()})`);
      spinning = true;
      const step = (): void => {
        if (!spinning) return;
        const rc = (how === 'consume' ? ring_buffer__consume(rb) : ring_buffer__poll(rb, POLL_TIMEOUT_MS)) as number;
        if (rc < 0) {
          onError(new Error(`ring_buffer__${how}: ${rc}`));
          return;
        }
        setImmediate(step);
      };
      setImmediate(step);
    },
    stop() {
      spinning = false;
      if (rb !== null) ring_buffer__free(rb);
      rb = null;
      if (cb !== null) koffi.unregister(cb);
      cb = null;
    },
  };
}

/**
 * The monitor's event API, on a monitor of its own: event processing, once
 * started, runs until the monitor closes. Its 'lost' events are counted to
 * check that it reports every kernel drop.
 */
function monitorConsumer(mon: NetworkMonitor, lost: { total: number }): Consumer {
  let count = 0;
  let base = 0;
  mon.on('packet', () => {
    count++;
  });
  mon.on('lost', (l) => {
    if (l.ring === 'packet') lost.total += l.count;
  });
  return {
    received: () => count - base,
    start() {
      base = count;
      mon.startEventProcessing({ budget: 8192, lossCheckIntervalMs: 20 });
    },
    stop() {},
  };
}

async function main(): Promise<void> {
  const started = nowNs();
  const result = newResult('ringbuf-read', { eventsPerTrial: EVENTS, rounds: ROUNDS, budget: BUDGET, ringBytes: 4 << 20, eventBytes: 64, drainEvents: DRAIN_EVENTS });
  let mon: NetworkMonitor | undefined;
  let monDec: NetworkMonitor | undefined;
  const producers: AsyncTestRun[] = [];
  try {
    mon = await NetworkMonitor.create({ packetSampleRate: 1 });
    monDec = await NetworkMonitor.create({ packetSampleRate: 1 });
    const frame = buildFrame('ipv4-udp', 64).bytes;
    const prod = new AsyncTestRun(mon.programFd('tc_ingress'), frame);
    producers.push(prod);
    const prodDec = new AsyncTestRun(monDec.programFd('tc_ingress'), frame);
    producers.push(prodDec);
    const lostDec = { total: 0 };
    const consumers: Record<Mode, Consumer> = {
      'ours-poll': oursConsumer(mon, 'poll'),
      'ours-spin': oursConsumer(mon, 'spin'),
      libbpf: libbpfConsumer(mon, 'consume'),
      'libbpf-poll': libbpfConsumer(mon, 'poll'),
      monitor: monitorConsumer(monDec, lostDec),
    };
    const modes: Mode[] = ['ours-poll', 'ours-spin', 'libbpf', 'libbpf-poll', 'monitor'];

    // Warm-up: creates the flow, JITs the readers.
    for (const m of modes) await trial(m === 'monitor' ? monDec : mon, m === 'monitor' ? prodDec : prod, consumers[m], Math.min(EVENTS, 200_000));

    const trials = new Map<Mode, Trial[]>(modes.map((m) => [m, []]));
    const drain = { ours: [] as number[], libbpf: [] as number[] };
    let unreported = 0;
    let sentMismatch = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const m of rotate(modes, round)) {
        const t = await trial(m === 'monitor' ? monDec : mon, m === 'monitor' ? prodDec : prod, consumers[m], EVENTS);
        trials.get(m)!.push(t);
        unreported += EVENTS - t.received - t.dropped;
        if (t.sent + t.dropped !== EVENTS) sentMismatch++;
      }
      // Drain rate alone: fill the ring with no reader, then read it to empty.
      for (const which of rotate(['ours', 'libbpf'] as const, round)) {
        const before = eventCounters(mon);
        const rc = prod.runSync(DRAIN_EVENTS);
        if (rc < 0) throw new Error(`BPF_PROG_TEST_RUN: ${rc}`);
        const after = eventCounters(mon);
        if (after.dropped !== before.dropped) throw new Error('the drain test overflowed the ring');
        let got = 0;
        if (which === 'ours') {
          const reader = new RingBufferReader(mon.map('knp_packet_events'), () => {
            got++;
          });
          try {
            const t0 = nowNs();
            reader.drain();
            drain.ours.push(DRAIN_EVENTS / ((nowNs() - t0) / 1e9));
          } finally {
            reader.close();
          }
        } else {
          const cb = koffi.register((_c: unknown, _d: unknown, _s: number) => {
            got++;
            return 0;
          }, koffi.pointer(SampleFn));
          const rb = ring_buffer__new(mon.map('knp_packet_events').fd, cb, null, null);
          try {
            const t0 = nowNs();
            ring_buffer__consume(rb);
            drain.libbpf.push(DRAIN_EVENTS / ((nowNs() - t0) / 1e9));
          } finally {
            ring_buffer__free(rb);
            koffi.unregister(cb);
          }
        }
        if (got !== DRAIN_EVENTS) throw new Error(`drain (${which}): read ${got} of ${DRAIN_EVENTS}`);
      }
      log(`ringbuf-read: round ${round + 1}/${ROUNDS}`);
    }
    // The monitor reports kernel drops from a timer (20 ms here): give it time.
    await new Promise((r) => setTimeout(r, 200));

    const rate = (t: Trial): number => t.received / (t.elapsedNs / 1e9);
    const rates = (m: Mode): number[] => trials.get(m)!.map(rate);
    const base = rates('libbpf');
    const detail = (m: Mode): string => {
      const ts = trials.get(m)!;
      const dropped = ts.reduce((a, t) => a + t.dropped, 0);
      const producerNs = summarize(ts.map((t) => t.producerNsPerEvent)).median;
      return `dropped (reported by kernel counter) ${dropped} of ${ts.length * EVENTS}; producer ${fmt(producerNs)} ns/event in kernel (${fmt(1e3 / producerNs, 2)} M/s max)`;
    };
    const streamRow = (m: Mode, label: string, goal: boolean): ResultRow => {
      const ours = rates(m);
      const s = summarize(ours.map((x) => x / 1e6));
      const ts = trials.get(m)!;
      const noUnreported = ts.every((t) => t.received + t.dropped === EVENTS);
      const row: ResultRow = {
        case: `streaming, ${label}`,
        metric: 'M events/s consumed',
        unit: 'M/s',
        value: s,
        baseline: { name: 'libbpf ring_buffer__consume + counting koffi callback', metric: 'M events/s', value: summarize(base.map((x) => x / 1e6)) },
        ratio: summarize(pairedRatios(ours, base)),
        ratioMeaning: 'events/s, ours / libbpf (higher is better)',
        note: detail(m),
      };
      if (goal) row.goal = { text: '>= 2 M events/s, 0 unreported loss', pass: s.median * 1e6 >= GOAL_RATE && noUnreported };
      return row;
    };
    result.rows.push(streamRow('ours-poll', 'RingBufferReader.start() (epoll)', true));
    result.rows.push(streamRow('ours-spin', 'RingBufferReader.drain() in a setImmediate loop', true));
    result.rows.push(streamRow('monitor', "NetworkMonitor 'packet' events (decoded PacketInfo)", false));
    result.rows.push(streamRow('libbpf-poll', `libbpf ring_buffer__poll(${POLL_TIMEOUT_MS} ms) + counting callback`, false));
    const libbpfRow: ResultRow = {
      case: 'streaming, libbpf ring_buffer__consume (baseline itself)',
      metric: 'M events/s consumed',
      unit: 'M/s',
      value: summarize(base.map((x) => x / 1e6)),
      note: detail('libbpf'),
    };
    result.rows.push(libbpfRow);
    result.rows.push({
      case: `drain only: ${DRAIN_EVENTS} events pre-filled, RingBufferReader.drain()`,
      metric: 'M events/s',
      unit: 'M/s',
      value: summarize(drain.ours.map((x) => x / 1e6)),
      baseline: { name: 'libbpf ring_buffer__consume', metric: 'M events/s', value: summarize(drain.libbpf.map((x) => x / 1e6)) },
      ratio: summarize(pairedRatios(drain.ours, drain.libbpf)),
      ratioMeaning: 'events/s, ours / libbpf (higher is better)',
      note: 'reader capacity without a concurrent producer',
    });

    const all = [...trials.values()].flat();
    result.checks.push({
      what: 'every produced event was received or counted as dropped by the kernel (received + dropped == produced)',
      ok: unreported === 0,
      detail: `${all.length} trials of ${EVENTS} events; unreported ${unreported}`,
    });
    result.checks.push({
      what: 'the kernel accounted every run (sent + dropped == produced)',
      ok: sentMismatch === 0,
      detail: `${sentMismatch} trials off`,
    });
    const decDropped = eventCounters(monDec).dropped;
    result.checks.push({
      what: "NetworkMonitor reported every kernel drop through 'lost' events",
      ok: lostDec.total === decDropped,
      detail: `kernel dropped ${decDropped}, monitor reported ${lostDec.total} (warm-up included)`,
    });
    result.notes.push(
      'Streaming rates are bounded by the producer (test_run on a worker thread) when the reader keeps up; the drain-only row is reader capacity.',
      'Producer and reader share the 2 vCPUs; a trial ends when the producer has finished and the reader has caught up.',
    );
  } finally {
    await monDec?.close();
    for (const p of producers) p.close();
    await mon?.close();
  }
  result.durationMs = (nowNs() - started) / 1e6;
  const path = writeResult(result);
  for (const r of result.rows) {
    log(`${r.case}: ${fmtSummary(r.value, 2)} ${r.unit}${r.baseline ? ` vs ${fmtSummary(r.baseline.value, 2)}, ratio ${fmtSummary(r.ratio!, 2)}` : ''}${r.goal ? (r.goal.pass ? ' PASS' : ' MISS') : ''} (${r.note ?? ''})`);
  }
  for (const c of result.checks) log(`check ${c.ok ? 'ok  ' : 'FAIL'} ${c.what}: ${c.detail}`);
  log(`ringbuf-read: ${fmt(result.durationMs / 1000)} s, wrote ${path}`);
  if (result.checks.some((c) => !c.ok)) process.exitCode = 1;
}

await main();
