/**
 * What a short TCP connection costs the kernel programs: the ten frames of a
 * connection (SYN, SYN-ACK, ACK, a byte each way with their ACKs, FIN-ACK
 * each way, the last ACK), each run once through tc_ingress (the sender's
 * veth) and once through tc_egress (the receiver's, as a frame forwarded
 * from the sender's watched veth: ingress_ifindex set, and flagged), with
 * BPF_PROG_TEST_RUN, for N connections with distinct client ports: the path
 * a connection-churn load between two pods of a node takes (a new flow for
 * each direction, the SYN-flood and port-scan state, the first ACK). The baseline, in the same round: the same frames
 * again once their flows exist (the established path). A round loads the
 * object afresh, so the table starts empty each time. What test_run itself
 * adds to one run (its timer, the skb) is measured in every round with an
 * empty TC program over the same frames and taken off.
 *
 *   node dist/bench/connection-cost.js [OBJECT ...]
 *
 * Without arguments: build/bpf/monitor.bpf.o and, where scripts/bench.sh
 * built it, the same program without detectors (what they add). With more
 * than one object (e.g. a build before a change and after it), each round
 * measures every object in rotated order, and the rows compare them against
 * the first.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TestRunner } from '../src/loader/test-run.js';
import { ethernet, ipv4, mac, tcp, TCP } from '../tools/frames.js';
import { benchDir, envInt, fmt, fmtSummary, loadCollection, log, pairedRatios, rotate, summarize, writeResult, type ResultRow } from './common.js';
import { packageRoot } from '../src/paths.js';
import { IFACE_FLAG } from '../src/abi/layouts.js';
import { u32 } from '../src/loader/map.js';

const CONNECTIONS = envInt('BENCH_CONNECTIONS', 15_000); // 4 flows each: within the default 65 536
const ROUNDS = envInt('BENCH_ROUNDS', 7);
const { SYN, ACK, PSH, FIN } = TCP;

interface Step {
  fromClient: boolean;
  flags: number;
  payload: number;
}

/** One connection's frames, in order. */
const STEPS: Step[] = [
  { fromClient: true, flags: SYN, payload: 0 },
  { fromClient: false, flags: SYN | ACK, payload: 0 },
  { fromClient: true, flags: ACK, payload: 0 },
  { fromClient: true, flags: PSH | ACK, payload: 1 },
  { fromClient: false, flags: ACK, payload: 0 },
  { fromClient: false, flags: PSH | ACK, payload: 1 },
  { fromClient: true, flags: ACK, payload: 0 },
  { fromClient: true, flags: FIN | ACK, payload: 0 },
  { fromClient: false, flags: FIN | ACK, payload: 0 },
  { fromClient: true, flags: ACK, payload: 0 },
];

function frames(conn: number): Uint8Array[] {
  const cport = 10_000 + (conn % 50_000);
  const client = `198.18.${10 + Math.floor(conn / 50_000)}.1`;
  const server = '198.18.0.2';
  return STEPS.map((s) => {
    const l4 = s.fromClient ? tcp(cport, 7001, s.flags, Buffer.alloc(s.payload)) : tcp(7001, cport, s.flags, Buffer.alloc(s.payload));
    const l3 = s.fromClient ? ipv4(client, server, l4) : ipv4(server, client, l4);
    return new Uint8Array(ethernet(mac('02:00:00:00:00:02'), mac('02:00:00:00:00:01'), l3));
  });
}

/** test_run's skb arrives on lo: the "sender's veth" whose TC ingress is watched. */
const SENDER_IFINDEX = 1;
const FORWARDED = { ingressIfindex: SENDER_IFINDEX };

/** ns per program run over every frame of every connection, once through each hook; per step and hook in `bySlot` (step * 2 + hook). */
function pass(ingress: TestRunner, egress: TestRunner, all: Uint8Array[][], bySlot?: number[]): number {
  let ns = 0;
  let runs = 0;
  for (const conn of all) {
    conn.forEach((f, step) => {
      const a = ingress.runOrThrow(f, 1).durationNs;
      const b = egress.runOrThrow(f, 1, FORWARDED).durationNs;
      if (bySlot) {
        bySlot[step * 2] = (bySlot[step * 2] ?? 0) + a / all.length;
        bySlot[step * 2 + 1] = (bySlot[step * 2 + 1] ?? 0) + b / all.length;
      }
      ns += a + b;
      runs += 2;
    });
  }
  return ns / runs;
}

/** The harness alone: an empty TC program over the same frames (what test_run's timer and setup add to one run). */
function emptyPass(all: Uint8Array[][], bySlot: number[]): number {
  const coll = loadCollection(join(benchDir(), 'empty.bpf.o'));
  const run = new TestRunner(coll.program('empty_tc').fd);
  try {
    return pass(run, run, all, bySlot);
  } finally {
    run.close();
    coll.close();
  }
}

function measure(object: string, all: Uint8Array[][], bySlot: number[]): { fresh: number; established: number } {
  const coll = loadCollection(object);
  // As the monitor flags an interface whose TC ingress it attached: in its array slot
  // (knp_iface_flag_slots), or in the hash in builds from before the slots.
  let flags;
  try {
    flags = coll.map('knp_iface_flag_slots');
  } catch {
    flags = coll.map('knp_iface_flags');
  }
  flags.update(u32(SENDER_IFINDEX), u32(IFACE_FLAG.tcIngress));
  const ingress = new TestRunner(coll.program('tc_ingress').fd);
  const egress = new TestRunner(coll.program('tc_egress').fd);
  try {
    const fresh = pass(ingress, egress, all, bySlot);
    const established = pass(ingress, egress, all);
    return { fresh, established };
  } finally {
    ingress.close();
    egress.close();
    coll.close();
  }
}

function flagText(f: number): string {
  return (['SYN', 'ACK', 'PSH', 'FIN'] as const).filter((n) => f & TCP[n]).join('+');
}

async function main(): Promise<void> {
  const objects = process.argv.slice(2);
  if (objects.length === 0) {
    // The monitor, and the same built without detectors (scripts/bench.sh builds it): what the detectors add to a connection.
    objects.push(join(packageRoot(), 'build', 'bpf', 'monitor.bpf.o'));
    const bare = join(benchDir(), 'no-detectors.bpf.o');
    if (existsSync(bare)) objects.push(bare);
  }
  const all = Array.from({ length: CONNECTIONS }, (_, i) => frames(i));
  const started = Date.now();
  const fresh = objects.map(() => [] as number[]);
  const established = objects.map(() => [] as number[]);
  const empty: number[] = [];
  /** Per object, per round: ns per step and hook, new flows, harness included. */
  const slots = objects.map(() => [] as number[][]);
  const emptySlots: number[][] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // The harness's own share is taken off every figure, per round.
    const es: number[] = [];
    const e = emptyPass(all, es);
    emptySlots.push(es);
    empty.push(e);
    for (const i of rotate(objects.map((_, j) => j), r)) {
      const bySlot: number[] = [];
      const m = measure(objects[i]!, all, bySlot);
      slots[i]!.push(bySlot);
      fresh[i]!.push(m.fresh - e);
      established[i]!.push(m.established - e);
    }
    log(`round ${r + 1}/${ROUNDS}: empty program ${fmt(e)} ns; above it: ${objects.map((o, i) => `${o.split('/').pop()} new ${fmt(fresh[i]!.at(-1)!)} ns, established ${fmt(established[i]!.at(-1)!)} ns`).join('; ')}`);
  }
  const rows: ResultRow[] = [];
  objects.forEach((o, i) => {
    const name = o.split('/').pop()!;
    rows.push({
      case: `${name}: a TCP connection's 10 frames through tc_ingress and tc_egress, ${CONNECTIONS} connections, new flows`,
      metric: 'ns per program run above an empty program',
      unit: 'ns',
      value: summarize(fresh[i]!),
      baseline: { name: 'the same frames again, flows established', metric: 'ns per program run above an empty program', value: summarize(established[i]!) },
      ratio: summarize(pairedRatios(fresh[i]!, established[i]!)),
      ratioMeaning: 'time, lower is better',
    });
    if (i > 0) {
      rows.push({
        case: `${name} against ${objects[0]!.split('/').pop()}: new flows`,
        metric: 'ns per program run',
        unit: 'ns',
        value: summarize(fresh[i]!),
        baseline: { name: objects[0]!.split('/').pop()!, metric: 'ns per program run', value: summarize(fresh[0]!) },
        ratio: summarize(pairedRatios(fresh[i]!, fresh[0]!)),
        ratioMeaning: 'time, lower is better',
      });
    }
  });
  for (const r of rows) log(`${r.case}: ${fmtSummary(r.value)} ns; ${r.baseline!.name} ${fmtSummary(r.baseline!.value)} ns; ratio ${fmtSummary(r.ratio!, 3)}`);
  writeResult({
    bench: 'connection-cost',
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    config: { connections: CONNECTIONS, rounds: ROUNDS, objects, timer: 'kernel test_run duration, one run per frame' },
    rows,
    checks: [],
    tables: [
      {
        title: 'Where a new connection goes: ns above the empty program per frame and hook, median over rounds',
        header: ['frame', ...objects.flatMap((o) => [`${o.split('/').pop()} tc_ingress`, `${o.split('/').pop()} tc_egress`])],
        rows: STEPS.map((st, step) => [
          `${st.fromClient ? 'client → server' : 'server → client'} ${flagText(st.flags)}${st.payload ? ' + 1 B' : ''}`,
          ...objects.flatMap((_, i) =>
            [0, 1].map((hook) => fmt(summarize(slots[i]!.map((r, round) => r[step * 2 + hook]! - emptySlots[round]![step * 2 + hook]!)).median)),
          ),
        ]),
      },
    ],
    notes: [`empty TC program over the same frames (subtracted): ${fmtSummary(summarize(empty))} ns per run`],
  });
}

await main();
