/**
 * Per-packet cost of tc_ingress and xdp_ingress, measured with
 * BPF_PROG_TEST_RUN against empty programs of the same types
 * (bench/bpf/empty.bpf.c), for IPv4/IPv6 x UDP/TCP frames of 64-80 bytes.
 *
 * The kernel runs a program `repeat` times on one frame and reports the
 * average ns per run (an integer; time spent rescheduled is excluded). The
 * frame's flow exists after the first run, so this is the steady state of an
 * established flow. Each round runs every variant once, order rotated, and the
 * cost above empty is taken per round against that round's empty run.
 *
 * Events are off (packetSampleRate 0) for the main figures; "events on" is
 * the default sample rate (1 in 100), with the ring drained between runs so
 * that reserves never fail (a full ring would take a cheaper path).
 *
 * A breakdown follows: the monitor's own code cut off after each stage
 * (bench/bpf/stages.bpf.c), measured the same way.
 */
import { join } from 'node:path';
import type { Collection } from '../src/loader/object.js';
import { TestRunner } from '../src/loader/test-run.js';
import { RingBufferReader } from '../src/loader/ringbuf.js';
import { NetworkMonitor } from '../src/monitor/network-monitor.js';
import {
  benchDir,
  loadCollection,
  envInt,
  fmt,
  fmtSummary,
  log,
  nowNs,
  pairedRatios,
  rotate,
  standardFrames,
  summarize,
  newResult, writeResult,
  type Frame,
  type ResultRow,
} from './common.js';

const REPEAT = envInt('BENCH_REPEAT', 1_000_000);
const ROUNDS = envInt('BENCH_ROUNDS', 15);
const SAMPLE_RATE = 100; // NetworkMonitor's default
const GOAL_NS = 30;
const TC_ACT_UNSPEC = 0xffffffff; // -1 as the u32 retval
const XDP_PASS = 2;

const STAGES = [
  { prog: 'stage_parse', label: 'parse' },
  { prog: 'stage_iface', label: '+ interface counters' },
  { prog: 'stage_clock', label: '+ timestamp (jiffies)' },
  { prog: 'stage_lookup', label: '+ flow lookup' },
  { prog: 'stage_flow', label: '+ flow update' },
  { prog: 'tc_ingress', label: '+ events/detection (off) = tc_ingress' },
] as const;

interface Variant {
  id: string;
  fd: number;
  retval: number;
  after?: () => void;
}

async function main(): Promise<void> {
  const started = nowNs();
  const result = newResult('prog-cost', { repeat: REPEAT, rounds: ROUNDS, sampleRateEventsOn: SAMPLE_RATE, timer: 'kernel test_run duration (integer ns per run)' });
  let empty: Collection | undefined;
  let stages: Collection | undefined;
  let monOff: NetworkMonitor | undefined;
  let monOn: NetworkMonitor | undefined;
  let reader: RingBufferReader | undefined;
  const runners: TestRunner[] = [];
  try {
    empty = loadCollection(join(benchDir(), 'empty.bpf.o'));
    stages = loadCollection(join(benchDir(), 'stages.bpf.o'));
    monOff = await NetworkMonitor.create({ packetSampleRate: 0 });
    monOn = await NetworkMonitor.create({ packetSampleRate: SAMPLE_RATE });
    let eventsRead = 0;
    reader = new RingBufferReader(monOn.map('knp_packet_events'), () => {
      eventsRead++;
    });
    const rd = reader;
    const st = stages;
    const variants: Variant[] = [
      { id: 'tc-empty', fd: empty.program('empty_tc').fd, retval: TC_ACT_UNSPEC },
      { id: 'tc-off', fd: monOff.programFd('tc_ingress'), retval: TC_ACT_UNSPEC },
      { id: 'tc-on', fd: monOn.programFd('tc_ingress'), retval: TC_ACT_UNSPEC, after: () => void rd.drain() },
      { id: 'xdp-empty', fd: empty.program('empty_xdp').fd, retval: XDP_PASS },
      { id: 'xdp-off', fd: monOff.programFd('xdp_ingress'), retval: XDP_PASS },
      // Each stage returns TC_ACT_UNSPEC only when the frame parsed (and, from
      // stage_lookup on, its flow was found).
      ...STAGES.map((s) => ({ id: s.prog, fd: st.program(s.prog).fd, retval: TC_ACT_UNSPEC })),
    ];
    const frames = standardFrames();
    // One TestRunner per program and frame, so that nothing in its options
    // carries over from one frame size to another (TestRunner at ca1fcd7 left
    // data_size_out, which libbpf writes back, in place: a longer frame after
    // a shorter one then failed with ENOSPC).
    const runnerFor = new Map<string, TestRunner>();
    for (const v of variants) {
      for (const f of frames) {
        const r = new TestRunner(v.fd, 256);
        runners.push(r);
        runnerFor.set(`${v.id}/${f.kind}`, r);
      }
    }
    const runs = new Map<string, number>();
    const run = (v: Variant, f: Frame, repeat: number): { kernelNs: number; wallNs: number } => {
      const runner = runnerFor.get(`${v.id}/${f.kind}`)!;
      const t0 = nowNs();
      const r = runner.runOrThrow(f.bytes, repeat);
      const wallNs = (nowNs() - t0) / repeat;
      if (r.retval !== v.retval) throw new Error(`${v.id} on ${f.label}: retval ${r.retval}, expected ${v.retval}`);
      runs.set(v.id, (runs.get(v.id) ?? 0) + repeat);
      v.after?.();
      return { kernelNs: r.durationNs, wallNs };
    };

    // Warm-up. The stages object's tc_ingress goes first: it creates the
    // flows stage_lookup must find.
    const order = [...variants.filter((v) => v.id === 'tc_ingress'), ...variants.filter((v) => v.id !== 'tc_ingress')];
    for (const f of frames) for (const v of order) run(v, f, Math.max(1, Math.floor(REPEAT / 10)));

    // ns per run, one per round, by frame and variant
    const kernel = new Map<string, number[]>();
    const wall = new Map<string, number[]>();
    const k = (f: Frame, id: string): number[] => kernel.get(`${f.kind}/${id}`) ?? [];
    const w = (f: Frame, id: string): number[] => wall.get(`${f.kind}/${id}`) ?? [];
    const push = (m: Map<string, number[]>, key: string, x: number): void => {
      const a = m.get(key);
      if (a) a.push(x);
      else m.set(key, [x]);
    };
    for (let round = 0; round < ROUNDS; round++) {
      for (const f of rotate(frames, round)) {
        for (const v of rotate(variants, round)) {
          const m = run(v, f, REPEAT);
          push(kernel, `${f.kind}/${v.id}`, m.kernelNs);
          push(wall, `${f.kind}/${v.id}`, m.wallNs);
        }
      }
      log(`prog-cost: round ${round + 1}/${ROUNDS}`);
    }

    // ---- Checks: every run took the parsed path; flows were found, not re-created.
    const sOff = monOff.getPacketStats();
    const sOn = monOn.getPacketStats();
    const tcOffRuns = runs.get('tc-off')!;
    const tcOnRuns = runs.get('tc-on')!;
    const xdpRuns = runs.get('xdp-off')!;
    const check = (what: string, ok: boolean, detail: string): void => {
      result.checks.push({ what, ok, detail });
    };
    check('tc_ingress (events off): every run parsed', sOff.ingress.packets.parsed === tcOffRuns && sOff.ingress.packets.total === tcOffRuns,
      `parsed ${sOff.ingress.packets.parsed} of ${tcOffRuns} runs`);
    check('xdp_ingress: every run parsed', sOff.xdp.packets.parsed === xdpRuns, `parsed ${sOff.xdp.packets.parsed} of ${xdpRuns} runs`);
    check('tc_ingress (events on): every run parsed', sOn.ingress.packets.parsed === tcOnRuns, `parsed ${sOn.ingress.packets.parsed} of ${tcOnRuns} runs`);
    check('one flow per frame, created once (steady state measured)',
      sOff.flowTable.entries === frames.length && sOn.flowTable.entries === frames.length && sOff.flowTable.insertFailed === 0,
      `flows inserted: events off ${sOff.flowTable.entries}, events on ${sOn.flowTable.entries}; insert failures ${sOff.flowTable.insertFailed}`);
    // Per-CPU 1-in-N: within one per CPU of runs / N.
    const expectEvents = tcOnRuns / SAMPLE_RATE;
    const ev = sOn.events.packet;
    check('events on: 1 in 100 emitted, none dropped, all read', Math.abs(ev.sent - expectEvents) <= 2 && ev.dropped === 0 && eventsRead === ev.sent,
      `sent ${ev.sent} (expected ~${expectEvents}), dropped ${ev.dropped}, read ${eventsRead}`);

    // ---- Rows
    const row = (prog: string, f: Frame, label: string, id: string, base: string, note?: string): ResultRow => {
      const ours = k(f, id);
      const b = k(f, base);
      const s = summarize(ours.map((x, i) => x - b[i]!));
      return {
        case: `${prog}, ${f.label}, ${label}`,
        metric: `ns/packet above empty ${prog.startsWith('tc') ? 'TC' : 'XDP'} program`,
        unit: 'ns',
        value: s,
        baseline: { name: base === 'tc-empty' ? 'empty TC program' : 'empty XDP program', metric: 'ns/packet', value: summarize(b) },
        ratio: summarize(pairedRatios(ours, b)),
        ratioMeaning: 'ns/packet, ours / empty (lower is better)',
        goal: { text: `<= ${GOAL_NS} ns/packet above empty`, pass: s.median <= GOAL_NS },
        note: `total ${fmtSummary(summarize(ours))} ns/packet; wall clock ${fmt(summarize(w(f, id)).median)} vs ${fmt(summarize(w(f, base)).median)} ns/packet${note ? `; ${note}` : ''}`,
      };
    };
    for (const f of frames) {
      result.rows.push(row('tc_ingress', f, 'events off', 'tc-off', 'tc-empty'));
      result.rows.push(row('tc_ingress', f, `events on (1 in ${SAMPLE_RATE})`, 'tc-on', 'tc-empty'));
      result.rows.push(row('xdp_ingress', f, 'events off', 'xdp-off', 'xdp-empty', 'xdp_ingress emits no events and keeps no flows'));
    }

    // ---- Breakdown: median ns above empty after each stage, and each stage's increment.
    const breakdown = { title: 'tc_ingress cost breakdown (ns/packet above the empty TC program, median over rounds; increment per stage in parentheses)', header: ['stage', ...frames.map((f) => f.label)], rows: [] as string[][] };
    const prev = new Map<string, number[]>();
    for (const s of STAGES) {
      const cells: string[] = [s.label];
      for (const f of frames) {
        const b = k(f, 'tc-empty');
        const above = k(f, s.prog).map((x, i) => x - b[i]!);
        const before = prev.get(f.kind) ?? above.map(() => 0);
        cells.push(`${fmt(summarize(above).median)} (${fmt(summarize(above.map((x, i) => x - before[i]!)).median, 1)})`);
        prev.set(f.kind, above);
      }
      breakdown.rows.push(cells);
    }
    result.tables.push(breakdown);
    result.notes.push(
      'The kernel reports the average per run as an integer (truncated) number of ns, so each figure has ±1 ns of quantisation; the JSON has means too.',
      'Wall-clock figures (in row notes) include the syscall and, for XDP, a fixed setup cost per call; the kernel figure is the result.',
      'Breakdown: bench/bpf/stages.bpf.c includes bpf/monitor.bpf.c and stops after each stage; its maps are separate from the monitors\'.',
    );
  } finally {
    reader?.close();
    for (const r of runners) r.close();
    await monOn?.close();
    await monOff?.close();
    stages?.close();
    empty?.close();
  }
  result.durationMs = (nowNs() - started) / 1e6;
  const path = writeResult(result);
  for (const r of result.rows) {
    log(`${r.case}: ${fmtSummary(r.value)} ns above empty (${fmtSummary(r.baseline!.value)}), ratio ${fmtSummary(r.ratio!, 2)}${r.goal ? (r.goal.pass ? ' PASS' : ' MISS') : ''}`);
  }
  for (const t of result.tables) {
    log(t.title);
    for (const r of [t.header, ...t.rows]) log(`  ${r.join(' | ')}`);
  }
  for (const c of result.checks) log(`check ${c.ok ? 'ok  ' : 'FAIL'} ${c.what}: ${c.detail}`);
  log(`prog-cost: ${fmt(result.durationMs / 1000)} s, wrote ${path}`);
  if (result.checks.some((c) => !c.ok)) process.exitCode = 1;
}

await main();
