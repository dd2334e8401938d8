/**
 * What the security detectors add per packet: tc_ingress as shipped
 * (detectors on, audit mode) against the same program built without them
 * (bench/bpf/no-detectors.bpf.c), both through BPF_PROG_TEST_RUN, interleaved
 * round by round. Also enforce mode (every source looked up in the block
 * table). Goal (issue 4): <= 15 ns added per packet on ordinary traffic.
 *
 * Frames: the four of bench/prog-cost (established UDP and TCP ACK flows,
 * which is what a node mostly carries), and two that take the detectors'
 * state paths on every packet: a repeated SYN (the SYN-flood counter, then,
 * past the threshold, the rate limit that holds the events back) and an ICMP
 * echo request (the ICMP-flood counter). Those are the cost under attack.
 */
import { join } from 'node:path';
import type { Collection } from '../src/loader/object.js';
import { TestRunner } from '../src/loader/test-run.js';
import { NetworkMonitor } from '../src/monitor/network-monitor.js';
import { TCP, ethernet, ipv4, mac, tcp, type L4 } from '../tools/frames.js';
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
} from './common.js';

const REPEAT = envInt('BENCH_REPEAT', 1_000_000);
const ROUNDS = envInt('BENCH_ROUNDS', 11);
const GOAL_NS = 15;
const TC_ACT_UNSPEC = 0xffffffff;

interface BenchFrame {
  label: string;
  bytes: Uint8Array;
  /** Ordinary traffic (the goal applies) or an attack path (reported). */
  ordinary: boolean;
}

/** ICMP echo request (the parser checks no checksums). */
function echoRequest(): L4 {
  return {
    proto: 1,
    build() {
      const h = Buffer.alloc(8 + 22);
      h[0] = 8;
      h.writeUInt16BE(0x1234, 4);
      h.writeUInt16BE(1, 6);
      return h;
    },
  };
}

function frames(): BenchFrame[] {
  const src = mac('02:00:00:00:00:01');
  const dst = mac('02:00:00:00:00:02');
  return [
    ...standardFrames().map((f) => ({ label: f.label, bytes: f.bytes, ordinary: true })),
    { label: 'IPv4 TCP SYN, repeated (SYN flood path)', bytes: new Uint8Array(ethernet(dst, src, ipv4('198.18.0.1', '198.18.0.2', tcp(40001, 80, TCP.SYN, Buffer.alloc(10))))), ordinary: false },
    { label: 'IPv4 ICMP echo request (ICMP flood path)', bytes: new Uint8Array(ethernet(dst, src, ipv4('198.18.0.1', '198.18.0.2', echoRequest()))), ordinary: false },
  ];
}

async function main(): Promise<void> {
  const started = nowNs();
  const result = newResult('detector-cost', { repeat: REPEAT, rounds: ROUNDS, timer: 'kernel test_run duration (integer ns per run)' });
  let base: Collection | undefined;
  let audit: NetworkMonitor | undefined;
  let enforce: NetworkMonitor | undefined;
  const runners: TestRunner[] = [];
  try {
    base = loadCollection(join(benchDir(), 'no-detectors.bpf.o'));
    audit = await NetworkMonitor.create({ packetSampleRate: 0 });
    // Enforce mode looks every source up in the block table; the bench's
    // source is allowlisted so its SYN flood never actually blocks it.
    enforce = await NetworkMonitor.create({ packetSampleRate: 0, detectors: { mode: 'enforce' }, allowlist: ['198.18.0.0/24'] });
    const variants = [
      { id: 'without', fd: base.program('tc_ingress').fd },
      { id: 'audit', fd: audit.programFd('tc_ingress') },
      { id: 'enforce', fd: enforce.programFd('tc_ingress') },
    ];
    const fs = frames();
    const runnerFor = new Map<string, TestRunner>();
    for (const v of variants) {
      for (const f of fs) {
        const r = new TestRunner(v.fd, 256);
        runners.push(r);
        runnerFor.set(`${v.id}/${f.label}`, r);
      }
    }
    const ns = new Map<string, number[]>();
    const run = (v: (typeof variants)[number], f: BenchFrame, repeat: number): number => {
      const r = runnerFor.get(`${v.id}/${f.label}`)!.runOrThrow(f.bytes, repeat);
      if (r.retval !== TC_ACT_UNSPEC) throw new Error(`${v.id} on ${f.label}: retval ${r.retval}`);
      return r.durationNs;
    };
    for (const f of fs) for (const v of variants) run(v, f, Math.max(1, Math.floor(REPEAT / 10)));
    for (let round = 0; round < ROUNDS; round++) {
      for (const f of rotate(fs, round)) {
        for (const v of rotate(variants, round)) {
          const key = `${v.id}/${f.label}`;
          ns.set(key, [...(ns.get(key) ?? []), run(v, f, REPEAT)]);
        }
      }
      log(`detector-cost: round ${round + 1}/${ROUNDS}`);
    }

    // The detectors did see the attack frames: counted and held back, not sent past the limits.
    const st = audit.getPacketStats();
    result.checks.push({
      what: 'audit: the repeated SYN and echo request crossed their thresholds, one event each, the rest held back',
      ok: st.events.security.sent === 2 && st.events.security.suppressed > 0,
      detail: `sent ${st.events.security.sent}, suppressed ${st.events.security.suppressed}`,
    });
    result.checks.push({ what: 'nothing blocked in audit mode', ok: st.blocks.packetsDropped === 0, detail: `dropped ${st.blocks.packetsDropped}` });

    for (const f of fs) {
      const b = ns.get(`without/${f.label}`)!;
      for (const id of ['audit', 'enforce'] as const) {
        const ours = ns.get(`${id}/${f.label}`)!;
        const added = summarize(ours.map((x, i) => x - b[i]!));
        result.rows.push({
          case: `tc_ingress, ${f.label}, detectors ${id === 'audit' ? 'on (audit)' : 'on, enforce mode'}`,
          metric: 'ns/packet added by the detectors',
          unit: 'ns',
          value: added,
          baseline: { name: 'tc_ingress built without detectors', metric: 'ns/packet', value: summarize(b) },
          ratio: summarize(pairedRatios(ours, b)),
          ratioMeaning: 'ns/packet, with / without detectors (lower is better)',
          ...(f.ordinary ? { goal: { text: `<= ${GOAL_NS} ns/packet added`, pass: added.median <= GOAL_NS } } : {}),
          note: `total ${fmtSummary(summarize(ours))} ns/packet${f.ordinary ? '' : '; an attack path, every packet updates detector state'}`,
        });
        log(`  ${id.padEnd(7)} ${f.label}: +${fmtSummary(added)} ns (${fmt(summarize(pairedRatios(ours, b)).median, 2)}x)`);
      }
    }
  } finally {
    for (const r of runners) r.close();
    await audit?.close();
    await enforce?.close();
    base?.close();
  }
  result.durationMs = (nowNs() - started) / 1e6;
  log(`detector-cost: wrote ${writeResult(result)}`);
}

await main();
