/**
 * What KubeNetProbe costs a node, end to end (issue 8): a node built from
 * namespaces (a client pod, a server pod and N idle pods, each on a veth whose
 * host end is a bridge port, as test/helpers/testnet.ts and the demo lay them
 * out), six workloads between client and server, each run alternately
 * without the agent (A, baseline) and with the full agent attached (B), as
 * `kubenetprobe agent -i GLOB` started through the CLI like a user would, a
 * fresh agent for every B run. A and B alternate in pairs whose order rotates
 * (A B, B A, ...); ratios are taken per pair and summarised as median [min–max].
 *
 * Warm-up: before each measured run, A and B alike, the workload runs --warmup seconds (default 1;
 * churn: 8000 connections to a port of their own) unmeasured, then two pipeline cycles (2.2 s) pass.
 * A node runs its agent for days, so B measures a running agent, not its start: V8 compiles the
 * pipeline on its first large table, a one-off cost that a fresh agent would otherwise put into the
 * first second of every B run. That cost is kept apart (the agent's CPU over the warm-up, and its
 * start time). --warmup 0 measures a fresh agent, as before.
 *
 *   node dist/bench/overhead.js [--quick] [--pairs N] [--seconds S] [--pods N]
 *        [--workloads tcp,udp,rr,churn,churn-cost,flood] [--xdp auto|off|generic|native]
 *        [--sample-rate N] [--bpf-stats] [--agent-arg ARG ...] [--baseline none|empty-tc]
 *        [--compare agent|empty-tc] [--warmup S] [--tag NAME]
 *
 * Defaults: 10 pairs of 3 s per workload, 4 idle pods (about 18 minutes); --quick: 2 pairs of 1 s (about a minute).
 * (bench/overhead.sh builds first, installs iperf3 if missing, then runs this.)
 *
 * Workloads, each bounded by --seconds:
 *   tcp    iperf3, one TCP stream: throughput
 *   udp    64-byte UDP datagrams from two senders (one per CPU; tools/loadgen.c, sendmmsg): datagrams/s the server's socket received
 *   rr     TCP request/response, 64 bytes each way, one connection: latency p50 and p99
 *   churn  short TCP connections (16 at a time: connect, 1 byte each way, close): connections/s
 *   churn-cost  the same connections paced at a steady 7 000/s, after 8 s unmeasured (--quick: 3 s) in
 *          which the agent reaches its steady state (reading, ending and evicting flows as fast as
 *          they come): the CPU time of the whole machine (steal excluded) per connection, and the
 *          agent's part of it. Less noisy than churn's rate, and it splits the cost: what a saturated
 *          run would lose is about 1 − 1/ratio.
 *   flood  raw UDP frames, each with its own 5-tuple: first fills the agent's flow table to just below
 *          its capacity (coverage must stay 100 %), then floods on past it for --seconds (frames/s, and
 *          every failed insert must be counted)
 * Alongside, for every B run: the agent's CPU (utime + stime of the agent process, /proc/PID/stat,
 * over the workload), its peak RSS (VmHWM), events lost, failed flow-table inserts and coverage
 * (its /api/v1/stats).
 *
 * Output: a markdown table on stdout and in build/bench/overhead.md; JSON in build/bench/overhead.json
 * (the BenchResult shape of bench/common.ts, plus every run's raw figures).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TestNet, type Pod } from '../test/helpers/testnet.js';
import { tryAttachTcx } from '../src/attach/tcx.js';
import type { Attachment } from '../src/attach/attachment.js';
import type { Collection } from '../src/loader/object.js';
import { benchDir, fmt, fmtSummary, loadCollection, loadgenPath, log, nowNs, pairedRatios, rotate, summarize, writeResult, type BenchResult, type ResultRow, type Summary } from './common.js';
import { freePort } from '../test/helpers/free-port.js';
import { sleep } from '../test/helpers/attached.js';

// ---- Options ------------------------------------------------------------------

const WORKLOADS = ['tcp', 'udp', 'rr', 'churn', 'churn-cost', 'flood'] as const;
type Workload = (typeof WORKLOADS)[number];

interface Options {
  quick: boolean;
  pairs: number;
  seconds: number;
  pods: number;
  workloads: Workload[];
  xdp: string | undefined;
  sampleRate: number | undefined;
  bpfStats: boolean;
  /** More flags for every B run's agent, e.g. --agent-arg=--detectors=land (experiments: what a part costs). */
  agentArgs: string[];
  /** What the A runs have attached: nothing (the node without KubeNetProbe), or an empty TC program on every veth. */
  baseline: 'none' | 'empty-tc';
  /** What the B runs have: the agent, or (to measure what a TC hook costs by itself) only an empty TC program on every veth. */
  compare: 'agent' | 'empty-tc';
  /** Seconds of the workload run unmeasured before each measured run, A and B alike (0: none). */
  warmup: number;
  tag: string;
}

function usage(msg: string): never {
  process.stderr.write(
    `overhead: ${msg}\nusage: node dist/bench/overhead.js [--quick] [--pairs N] [--seconds S] [--pods N] [--workloads ${WORKLOADS.join(',')}] [--xdp auto|off|generic|native] [--sample-rate N] [--bpf-stats] [--agent-arg ARG ...] [--baseline none|empty-tc] [--compare agent|empty-tc] [--warmup S] [--tag NAME]\n`,
  );
  process.exit(2);
}

function parseFlags(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      quick: { type: 'boolean' },
      pairs: { type: 'string' },
      seconds: { type: 'string' },
      pods: { type: 'string' },
      workloads: { type: 'string' },
      xdp: { type: 'string' },
      'sample-rate': { type: 'string' },
      'bpf-stats': { type: 'boolean' },
      'agent-arg': { type: 'string', multiple: true },
      baseline: { type: 'string' },
      compare: { type: 'string' },
      warmup: { type: 'string' },
      tag: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
}

function parseOptions(argv: string[]): Options {
  const v = ((): ReturnType<typeof parseFlags> => {
    try {
      return parseFlags(argv);
    } catch (err) {
      usage((err as Error).message);
    }
  })();
  if (v.help) usage('help');
  const num = (flag: string, raw: string | undefined, fallback: number, min: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) usage(`--${flag} needs a number >= ${min}`);
    return Math.floor(n);
  };
  const quick = v.quick ?? false;
  let workloads: Workload[] = [...WORKLOADS];
  if (v.workloads !== undefined) {
    const list = v.workloads.split(',').filter(Boolean);
    for (const w of list) if (!(WORKLOADS as readonly string[]).includes(w)) usage(`unknown workload ${w}`);
    if (!list.length) usage('--workloads needs a list');
    workloads = list as Workload[];
  }
  if (v.xdp !== undefined && !['auto', 'off', 'generic', 'native'].includes(v.xdp)) usage('--xdp takes auto, off, generic or native');
  if (v.tag !== undefined && !/^[a-z0-9-]+$/.test(v.tag)) usage('--tag takes [a-z0-9-]+');
  if (v.baseline !== undefined && v.baseline !== 'none' && v.baseline !== 'empty-tc') usage('--baseline takes none or empty-tc');
  if (v.compare !== undefined && v.compare !== 'agent' && v.compare !== 'empty-tc') usage('--compare takes agent or empty-tc');
  if (v.compare === 'empty-tc' && v.baseline === 'empty-tc') usage('--compare empty-tc needs --baseline none');
  return {
    quick,
    pairs: num('pairs', v.pairs, quick ? 2 : 10, 1),
    seconds: num('seconds', v.seconds, quick ? 1 : 3, 1),
    pods: num('pods', v.pods, 4, 0),
    workloads,
    xdp: v.xdp,
    sampleRate: v['sample-rate'] === undefined ? undefined : num('sample-rate', v['sample-rate'], 0, 0),
    bpfStats: v['bpf-stats'] ?? false,
    agentArgs: v['agent-arg'] ?? [],
    baseline: (v.baseline as Options['baseline'] | undefined) ?? 'none',
    compare: (v.compare as Options['compare'] | undefined) ?? 'agent',
    warmup: num('warmup', v.warmup, 1, 0),
    tag: v.tag ?? 'overhead',
  };
}

// ---- Processes ----------------------------------------------------------------

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
/** The node flags the kubenetprobe command runs with (its first line), as the bin and the image start it. */
function cliNodeFlags(): string[] {
  return (/^#!.*\bnode\b(.*)$/.exec(readFileSync(CLI, 'utf8').split('\n', 1)[0]!)?.[1] ?? '').split(/\s+/).filter(Boolean);
}
const EMPTY_SRC = join(ROOT, 'bench', 'bpf', 'empty.bpf.c');
/** tools/loadgen.c, built (where needed) when the run starts. */
let LOADGEN = '';

/** Every process this run started, killed on any exit. */
const children = new Set<ChildProcess>();
function killAll(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  // testnet.ts also listens: it removes the namespaces and links, then exits.
  process.prependListener(sig, killAll);
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      children.delete(child);
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
    children.add(child);
  });
}

function inNs(pod: Pod, cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return run('ip', ['netns', 'exec', pod.netns, cmd, ...args], timeoutMs);
}

/** Starts a long-running helper in a pod; resolves once it prints `readyText` (or at once when null). */
async function startIn(pod: Pod, cmd: string, args: string[], readyText: string | null): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn('ip', ['netns', 'exec', pod.netns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  if (readyText !== null) {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${cmd} ${args.join(' ')}: not ready after 10 s: ${err}`)), 10_000);
      const check = (): void => {
        if (out.includes(readyText)) {
          clearTimeout(t);
          resolve();
        }
      };
      child.stdout!.on('data', check);
      child.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`${cmd} ${args.join(' ')} exited ${code} before it was ready: ${err}`));
      });
      check();
    });
  }
  return { child, output: () => out };
}

async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}


/**
 * `--baseline empty-tc`: the A runs with an empty TC program (bench/bpf/empty.bpf.c) attached by
 * TCX at ingress and egress of every veth the agent would watch, so B / A is the agent's cost
 * above what a TC hook costs by itself (and the usual B / none, divided by it, is the hook's own).
 */
class EmptyTcHooks {
  private constructor(
    private readonly coll: Collection,
    private readonly links: Attachment[],
  ) {}

  static attach(node: Node): EmptyTcHooks {
    const obj = join(benchDir(), 'empty.bpf.o');
    if (!existsSync(obj) || statSync(obj).mtimeMs < statSync(EMPTY_SRC).mtimeMs) {
      const arch = `/usr/include/${execFileSync('uname', ['-m'], { encoding: 'utf8' }).trim()}-linux-gnu`;
      execFileSync('clang', ['-O2', '-g', '-Wall', '-target', 'bpf', '-mcpu=v3', `-I${arch}`, '-Ibpf', '-c', EMPTY_SRC, '-o', `${obj}.tmp`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      execFileSync('mv', [`${obj}.tmp`, obj]);
    }
    const coll = loadCollection(obj);
    const links: Attachment[] = [];
    try {
      const prog = coll.program('empty_tc');
      for (const pod of node.net.pods) {
        const ifindex = Number(readFileSync(`/sys/class/net/${pod.hostIf}/ifindex`, 'utf8'));
        for (const dir of ['ingress', 'egress'] as const) {
          const a = tryAttachTcx(prog, pod.hostIf, ifindex, dir);
          if (typeof a === 'number') throw new Error(`attach tcx ${dir} ${pod.hostIf}: errno ${-a}`);
          links.push(a);
        }
      }
    } catch (err) {
      for (const l of links) l.close();
      coll.close();
      throw err;
    }
    return new EmptyTcHooks(coll, links);
  }

  close(): void {
    for (const l of this.links.splice(0)) l.close();
    this.coll.close();
  }
}

// ---- /proc and /sys -----------------------------------------------------------

const CLK_TCK = 100; // USER_HZ on Linux: /proc/PID/stat counts in 1/100 s

function procCpu(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
  return { user: Number(f[11]) / CLK_TCK, system: Number(f[12]) / CLK_TCK };
}

function procStatus(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The first line of /proc/stat: all CPUs' time by state, in USER_HZ ticks (user nice system idle iowait irq softirq steal guest guest_nice). */
function cpuTicks(): number[] {
  return readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
}

/**
 * CPU time of the whole machine, in seconds summed over its CPUs: busy (user, nice, system, irq and
 * softirq: what this VM's own work took; guest time is already in user) and steal (what the host
 * gave the neighbours while we were ready to run).
 */
function machineCpuSeconds(): { busy: number; steal: number } {
  const v = cpuTicks();
  const at = (i: number): number => v[i] ?? 0;
  return { busy: (at(0) + at(1) + at(2) + at(5) + at(6)) / CLK_TCK, steal: at(7) / CLK_TCK };
}

/** Busy and total ticks over all CPUs. */
function systemCpu(): { busy: number; total: number } {
  const v = cpuTicks();
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

function ifStat(ifname: string, stat: string): number {
  return Number(readFileSync(`/sys/class/net/${ifname}/statistics/${stat}`, 'utf8').trim());
}

// ---- The agent ----------------------------------------------------------------

interface AgentStatsView {
  interfaces: { name: string; attached: boolean; hooks: string[]; notes: string[] }[];
  flowTable: { entries: number; capacity: number; inserted: number; insertFailed: number };
  lost: { packetEvents: number; securityEvents: number; securityGaps: number; consumer: number };
  coverage: { seen: number; attributed: number; ratio: number };
  pipeline: { cycles: number; lastCycleMs?: number };
  security: { sent: number };
}

class AgentProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    readonly startMs: number,
    private readonly log: () => string,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  /** `kubenetprobe agent -i GLOB --listen ...`, as a user starts it; resolves once every expected interface is attached. */
  static async start(glob: string, expect: number, opts: Options): Promise<AgentProcess> {
    const port = await freePort();
    const args = [CLI, 'agent', '-i', glob, '--listen', `127.0.0.1:${port}`];
    if (opts.xdp) args.push('--xdp', opts.xdp);
    if (opts.sampleRate !== undefined) args.push('--packet-sample-rate', String(opts.sampleRate));
    args.push(...opts.agentArgs);
    const t0 = nowNs();
    const child = spawn(process.execPath, [...cliNodeFlags(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    child.on('exit', () => children.delete(child));
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const agent = new AgentProcess(child, `http://127.0.0.1:${port}`, 0, () => out);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the agent exited ${child.exitCode} while starting:\n${out}`);
      if (Date.now() > deadline) {
        await stop(child, 'SIGKILL');
        throw new Error(`the agent did not attach to ${expect} interfaces within 30 s:\n${out}`);
      }
      if (out.includes('API at')) {
        const st = await agent.stats().catch(() => undefined);
        if (st && st.interfaces.filter((i) => i.attached).length >= expect) break;
      }
      await sleep(50);
    }
    return new AgentProcess(child, agent.url, (nowNs() - t0) / 1e6, () => out);
  }

  async stats(): Promise<AgentStatsView> {
    const res = await fetch(`${this.url}/api/v1/stats`, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`GET /api/v1/stats: ${res.status}`);
    return (await res.json()) as AgentStatsView;
  }

  cpu(): { user: number; system: number } {
    return procCpu(this.pid);
  }

  peakRssMb(): number {
    return procStatus(this.pid, 'VmHWM');
  }

  async stop(): Promise<void> {
    await stop(this.child, 'SIGTERM', 10_000);
  }

  output(): string {
    return this.log();
  }
}

// ---- The node -----------------------------------------------------------------

interface Node {
  net: TestNet;
  client: Pod;
  server: Pod;
  glob: string;
  interfaces: number;
  serverMac: string;
  clientMac: string;
  /** A destination no pod owns: the flood's frames reach the server pod, which drops them without a reply. */
  floodDst: string;
}

const PORT = { iperf: 5201, udp: 9000, rr: 7000, churn: 7001, churnWarmup: 7002, churnCost: 7003 };
/**
 * Connections of a churn warm-up, to PORT.churnWarmup: 5-tuples the measured run never uses. Enough
 * new flows in one cycle that V8 has optimized the agent's pipeline for a fast-growing table by the
 * measured run: with 2 000, `--trace-deopt` still showed its code deoptimized and compiled again in
 * the measured run; with 8 000 and two cycles, one small compile and no deoptimization.
 */
const CHURN_WARMUP_CONNECTIONS = 8000;
/**
 * `churn-cost`'s pace: well below what this VM makes unpaced (25–40 k/s), so that A and B make the
 * same connections in the same time and what differs is the CPU they took.
 */
const CHURN_COST_RATE = 7000;
/** `churn-cost`'s unmeasured lead-in: the agent's read, eviction and compiled code settle (--quick: 3 s). */
const CHURN_COST_WARMUP_S = 8;
/** After a warm-up: two pipeline cycles (the default interval is 1 s). */
const WARMUP_SETTLE_MS = 2200;

async function buildNode(pods: number): Promise<Node> {
  const net = TestNet.create(2 + pods, { ipv6: false });
  const client = net.pod('a');
  const server = net.pod('b');
  // Connection churn makes tens of thousands of connections a minute: every local port, and TIME_WAIT reused.
  net.exec(client, 'sysctl', ['-qw', 'net.ipv4.ip_local_port_range=1024 65535', 'net.ipv4.tcp_tw_reuse=1']);
  // Every pod talks once, so the bridge knows every MAC (the flood must not be flooded to all ports).
  for (const p of net.pods) if (p !== server) net.exec(p, 'ping', ['-c', '1', '-W', '2', server.ipv4]);
  const sub = server.ipv4.split('.')[2];
  return {
    net,
    client,
    server,
    glob: `kv${net.id}*`,
    interfaces: net.pods.length,
    serverMac: net.mac(server),
    clientMac: net.mac(client),
    floodDst: `198.19.${sub}.1`,
  };
}

// ---- Workloads ----------------------------------------------------------------

/** One run's figures: named values, and anything else worth keeping. */
interface RunResult {
  values: Record<string, number>;
  detail?: Record<string, unknown>;
  checks?: { what: string; ok: boolean; detail: string }[];
}

interface RunContext {
  node: Node;
  seconds: number;
  agent: AgentProcess | undefined;
  capacity: number;
  /** An unmeasured warm-up run: leave room in the flow table, check nothing. */
  warmup: boolean;
  quick: boolean;
}

interface WorkloadDef {
  name: Workload;
  title: string;
  /** Values with the unit, and whether higher is better. */
  metrics: { key: string; label: string; unit: string; higherIsBetter: boolean; goal?: { text: string; pass: (ratio: number) => boolean } }[];
  setup?: (node: Node) => Promise<void>;
  run: (ctx: RunContext) => Promise<RunResult>;
  /** A/B pairs in each round (default 1): more for a workload whose runs are short and noisy. */
  pairsPerRound?: number;
  /** False: no warm-up run (the flood fills the table in phases of its own). */
  warmup?: boolean;
}

function field(out: string, name: string): number {
  const m = new RegExp(`\\b${name} ([0-9.]+)`).exec(out);
  if (!m) throw new Error(`no "${name}" in: ${out}`);
  return Number(m[1]);
}

const WORKLOAD_DEFS: WorkloadDef[] = [
  {
    name: 'tcp',
    title: 'TCP bulk throughput (iperf3, one stream)',
    metrics: [{ key: 'gbps', label: 'throughput', unit: 'Gbit/s', higherIsBetter: true, goal: { text: '≥ 0.97× baseline', pass: (r) => r >= 0.97 } }],
    setup: async (node) => {
      await startIn(node.server, 'iperf3', ['-s', '-p', String(PORT.iperf)], null);
      // iperf3 prints its banner only to a terminal: wait until the port answers instead.
      for (let i = 0; i < 100; i++) {
        const ss = await inNs(node.server, 'ss', ['-Hltn', `sport = :${PORT.iperf}`], 5000);
        if (ss.trim()) return;
        await sleep(50);
      }
      throw new Error('iperf3 server did not start');
    },
    run: async ({ node, seconds }) => {
      const out = await inNs(node.client, 'iperf3', ['-c', node.server.ipv4, '-p', String(PORT.iperf), '-t', String(seconds), '-J'], (seconds + 20) * 1000);
      const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number }; sum_sent: { retransmits?: number } } };
      return { values: { gbps: j.end.sum_received.bits_per_second / 1e9 }, detail: { retransmits: j.end.sum_sent.retransmits } };
    },
  },
  {
    name: 'udp',
    title: 'UDP 64-byte datagrams, two senders (small-packet rate)',
    metrics: [{ key: 'kpps', label: 'datagrams received', unit: 'k/s', higherIsBetter: true, goal: { text: '≥ 0.95× baseline', pass: (r) => r >= 0.95 } }],
    run: async ({ node, seconds }) => {
      const sink = await startIn(node.server, LOADGEN, ['udp-sink', String(PORT.udp)], 'ready');
      const blast = (): Promise<string> => inNs(node.client, LOADGEN, ['udp-blast', node.server.ipv4, String(PORT.udp), String(seconds), '64'], (seconds + 20) * 1000);
      const outs = await Promise.all([blast(), blast()]);
      await sleep(200);
      await stop(sink.child);
      const received = field(sink.output(), 'received');
      const sent = outs.reduce((a, o) => a + field(o, 'sent'), 0);
      const secs = Math.max(...outs.map((o) => field(o, 'seconds')));
      return { values: { kpps: received / secs / 1000 }, detail: { sent, received, seconds: secs, sentKpps: sent / secs / 1000 } };
    },
  },
  {
    name: 'rr',
    title: 'TCP request/response, 64 B each way, one connection (latency)',
    metrics: [
      { key: 'p50', label: 'p50 latency', unit: 'µs', higherIsBetter: false },
      { key: 'p99', label: 'p99 latency', unit: 'µs', higherIsBetter: false, goal: { text: '≤ 1.05× baseline', pass: (r) => r <= 1.05 } },
    ],
    setup: async (node) => {
      await startIn(node.server, LOADGEN, ['tcp-echo', String(PORT.rr)], 'ready');
    },
    run: async ({ node, seconds }) => {
      const out = await inNs(node.client, LOADGEN, ['tcp-rr', node.server.ipv4, String(PORT.rr), String(seconds), '64'], (seconds + 20) * 1000);
      return { values: { p50: field(out, 'p50_us'), p99: field(out, 'p99_us') }, detail: { transactions: field(out, 'transactions'), meanUs: field(out, 'mean_us') } };
    },
  },
  {
    name: 'churn',
    title: 'TCP connection churn, 16 at a time (connect, 1 B each way, close)',
    // A run ends when the table is full (capacity / 2 connections): about a second here, so
    // single pairs swing the most; three pairs a round for about 40 s more.
    pairsPerRound: 3,
    metrics: [{ key: 'cps', label: 'connections', unit: '/s', higherIsBetter: true, goal: { text: '≥ 0.95× baseline, no flow missed', pass: (r) => r >= 0.95 } }],
    setup: async (node) => {
      await startIn(node.server, LOADGEN, ['tcp-echo', String(PORT.churn)], 'ready');
      await startIn(node.server, LOADGEN, ['tcp-echo', String(PORT.churnWarmup)], 'ready');
    },
    run: async ({ node, seconds, agent, capacity, warmup }) => {
      if (warmup) {
        const out = await inNs(node.client, LOADGEN, ['tcp-churn', node.server.ipv4, String(PORT.churnWarmup), String(seconds), '16', String(CHURN_WARMUP_CONNECTIONS)], (seconds + 30) * 1000);
        return { values: { cps: field(out, 'connections') / field(out, 'seconds') } };
      }
      // Each connection is 2 flows (each direction, counted once per node at the veth where it entered:
      // the client's for the client's frames, the server's for the server's); stop short of the
      // table's capacity (less the warm-up's flows), so that every one must be there. A and B alike.
      const max = Math.floor((capacity - 1024 - 2 * CHURN_WARMUP_CONNECTIONS - 1024) / 2);
      const before = agent ? await agent.stats() : undefined;
      const out = await inNs(node.client, LOADGEN, ['tcp-churn', node.server.ipv4, String(PORT.churn), String(seconds), '16', String(max)], (seconds + 30) * 1000);
      const conns = field(out, 'connections');
      const failed = field(out, 'failed');
      const secs = field(out, 'seconds');
      // A local port the kernel reused (TIME_WAIT) repeats a 5-tuple: the same flow. Distinct ports are distinct connections.
      const tuples = field(out, 'ports');
      const res: RunResult = { values: { cps: conns / secs }, detail: { connections: conns, failed, distinctTuples: tuples, seconds: secs, maxConnections: max } };
      if (agent && before) {
        const st = await agent.stats();
        // Inserted, not entries: closed connections' flows may already have left (endedTimeoutMs).
        const newEntries = st.flowTable.inserted - before.flowTable.inserted;
        res.detail = { ...res.detail, flowEntriesAdded: newEntries, insertFailed: st.flowTable.insertFailed, coverage: st.coverage.ratio };
        res.checks = [
          {
            what: 'churn: every connection got its flows (2 each), no failed insert, coverage 100 %',
            ok: newEntries >= 2 * tuples && st.flowTable.insertFailed === 0 && st.coverage.ratio === 1,
            detail: `${conns} connections (${failed} failed) on ${tuples} distinct 5-tuples, ${newEntries} flows added (≥ ${2 * tuples} expected), ${st.flowTable.insertFailed} failed inserts, coverage ${(st.coverage.ratio * 100).toFixed(3)} %`,
          },
        ];
      }
      return res;
    },
  },
  {
    name: 'churn-cost',
    title: `TCP connection churn at a steady ${CHURN_COST_RATE / 1000} k/s (connect, 1 B each way, close)`,
    metrics: [{ key: 'cpuUs', label: "the machine's CPU per connection (steal excluded)", unit: 'µs', higherIsBetter: false }],
    // Its warm-up is the first part of its own run (below).
    warmup: false,
    setup: async (node) => {
      await startIn(node.server, LOADGEN, ['tcp-echo', String(PORT.churnCost)], 'ready');
    },
    run: async ({ node, seconds, agent, quick }) => {
      // One paced run: CHURN_COST_WARMUP_S unmeasured, by when flows are being read, ended and
      // evicted as fast as they come (a node's steady state), then `seconds` measured. A and B make
      // the same connections in the same time, so what differs is the CPU they took: user, system
      // and interrupt time of both CPUs (steal excluded: that is the neighbours' share).
      const warm = quick ? 3 : CHURN_COST_WARMUP_S;
      const before = agent ? await agent.stats() : undefined;
      const lg = inNs(node.client, LOADGEN, ['tcp-churn', node.server.ipv4, String(PORT.churnCost), String(warm + seconds), '16', '1000000000', String(CHURN_COST_RATE)], (warm + seconds + 30) * 1000);
      await sleep(warm * 1000);
      const cpu0 = machineCpuSeconds();
      const agent0 = agent?.cpu();
      const t0 = nowNs();
      await sleep(seconds * 1000);
      const cpu1 = machineCpuSeconds();
      const agent1 = agent?.cpu();
      const windowS = (nowNs() - t0) / 1e9;
      const out = await lg;
      const conns = field(out, 'connections');
      const secs = field(out, 'seconds');
      const rate = conns / secs;
      // Connections in the window, from the pace; the check below holds the generator to it.
      const perConn = (cpuS: number): number => (cpuS / (CHURN_COST_RATE * windowS)) * 1e6;
      const tuples = field(out, 'ports');
      const detail: Record<string, unknown> = { connections: conns, failed: field(out, 'failed'), distinctTuples: tuples, seconds: secs, rate, windowS, cpuSeconds: cpu1.busy - cpu0.busy, stealSeconds: cpu1.steal - cpu0.steal };
      const checks: RunResult['checks'] = [
        { what: `churn-cost: the generator kept its pace (${CHURN_COST_RATE} connections/s, ±2 %)`, ok: Math.abs(rate / CHURN_COST_RATE - 1) <= 0.02, detail: `${conns} connections in ${secs.toFixed(2)} s: ${rate.toFixed(0)}/s` },
      ];
      if (agent && before && agent0 && agent1) {
        const st = await agent.stats();
        detail.agentUs = perConn(agent1.user + agent1.system - agent0.user - agent0.system);
        const added = st.flowTable.inserted - before.flowTable.inserted;
        detail.flowEntriesAdded = added;
        detail.insertFailed = st.flowTable.insertFailed;
        detail.coverage = st.coverage.ratio;
        checks.push({
          what: 'churn-cost: every connection got its flows, no failed insert, coverage 100 %',
          // A local port reused after its flows left the table makes them anew: at least 2 per distinct port.
          ok: added >= 2 * tuples && st.flowTable.insertFailed === 0 && st.coverage.ratio === 1,
          detail: `${conns} connections on ${tuples} distinct local ports, ${added} flows added (≥ ${2 * tuples} expected), ${st.flowTable.insertFailed} failed inserts, coverage ${(st.coverage.ratio * 100).toFixed(3)} %`,
        });
      }
      return { values: { cpuUs: perConn(cpu1.busy - cpu0.busy) }, detail, checks };
    },
  },
  {
    name: 'flood',
    title: 'random 5-tuple flood: the flow table filled to capacity, then flooded past it',
    metrics: [{ key: 'kfps', label: 'frames delivered, table full', unit: 'k/s', higherIsBetter: true }],
    warmup: false,
    run: async ({ node, seconds, agent, capacity }) => {
      const cIf = node.client.hostIf;
      const sIf = node.server.hostIf;
      // Frames that reach a flow: at TC ingress on the client's veth. The server's veth egress
      // counts them only in its interface counters (forwarded from a watched ingress: counted there).
      const hookFrames = (): number => ifStat(cIf, 'rx_packets');
      const before = agent ? await agent.stats() : undefined;
      const h0 = hookFrames();
      // Phase 1: fill to just below capacity (each tuple is 1 flow); coverage must stay 100 %.
      const e0 = before?.flowTable.entries ?? 0;
      const fill = capacity - e0 - 256;
      const flood = (first: number, count: number, secs: number): Promise<string> =>
        inNs(node.client, LOADGEN, ['flood', 'eth0', node.serverMac, node.clientMac, node.floodDst, String(first), String(count), String(secs)], (secs + 20) * 1000);
      const out1 = await flood(0, fill, 30);
      await sleep(100);
      const h1 = hookFrames();
      const mid = agent ? await agent.stats() : undefined;
      // Phase 2: new tuples for `seconds`: every one is a failed insert once the table is full.
      const tx0 = ifStat(sIf, 'tx_packets');
      const out2 = await flood(fill, 1e12, seconds);
      await sleep(100);
      const delivered = ifStat(sIf, 'tx_packets') - tx0;
      const h2 = hookFrames();
      const secs = field(out2, 'seconds');
      const res: RunResult = {
        values: { kfps: delivered / secs / 1000 },
        detail: { fillTuples: fill, fillSent: field(out1, 'sent'), fillHookFrames: h1 - h0, floodSent: field(out2, 'sent'), floodDelivered: delivered, seconds: secs },
      };
      if (agent && before && mid) {
        const end = await agent.stats();
        const added1 = mid.flowTable.entries - e0;
        const room = capacity - e0;
        const expectedFailed = Math.max(0, h2 - h0 - room);
        const failed = end.flowTable.insertFailed - before.flowTable.insertFailed;
        res.detail = { ...res.detail, fillFlowsAdded: added1, fillCoverage: mid.coverage.ratio, entriesEnd: end.flowTable.entries, insertFailed: failed, expectedInsertFailed: expectedFailed, coverageEnd: end.coverage.ratio };
        res.checks = [
          {
            what: 'flood: below capacity, every tuple in the table (coverage 100 %, no failed insert)',
            ok: mid.coverage.ratio === 1 && mid.flowTable.insertFailed === before.flowTable.insertFailed && added1 >= h1 - h0,
            detail: `${fill} tuples sent, ${h1 - h0} frames at the hooks, ${added1} flows added, coverage ${(mid.coverage.ratio * 100).toFixed(3)} %, ${mid.flowTable.insertFailed - before.flowTable.insertFailed} failed inserts`,
          },
          {
            what: 'flood: past capacity, the table full and every frame that found no room counted as a failed insert',
            // Other traffic (ARP is not IP; nothing else runs) may add a handful of flows: allow 0.1 %.
            ok: end.flowTable.entries === capacity && Math.abs(failed - expectedFailed) <= Math.max(16, expectedFailed * 0.001),
            detail: `entries ${end.flowTable.entries} of ${capacity}; ${failed} failed inserts counted, ${expectedFailed} expected from the interface counters; coverage ${(end.coverage.ratio * 100).toFixed(2)} %`,
          },
        ];
      }
      return res;
    },
  },
];

// ---- The benchmark ------------------------------------------------------------

interface Run {
  round: number;
  /** The A/B pair within the workload (rounds × pairsPerRound). */
  pair: number;
  workload: Workload;
  variant: 'baseline' | 'agent';
  startedAt: string;
  values: Record<string, number>;
  detail?: Record<string, unknown>;
  /** Whole-machine busy share over the run (all CPUs), this run's own load included. */
  machineBusy: number;
  agent?: {
    pid: number;
    startMs: number;
    cpuUser: number;
    cpuSystem: number;
    /** (user + system) / wall time of the workload, in % of one core. */
    cpuPercent: number;
    /** The same over the warm-up and the pipeline cycle after it (the agent's first work on traffic). */
    warmupCpuPercent?: number;
    peakRssMb: number;
    lostEvents: number;
    insertFailed: number;
    coverage: number;
    flowEntries: number;
    pipelineCycles: number;
    lastCycleMs: number | undefined;
    bpf?: BpfProgStats[];
  };
}

interface BpfProgStats {
  id: number;
  name: string;
  runCnt: number;
  runTimeNs: number;
}

/**
 * run_cnt and run_time_ns of the agent's programs (needs kernel.bpf_stats_enabled), from the fdinfo of the
 * agent's own program fds: other monitors on this machine run the same programs.
 */
async function bpfStatsOf(pid: number): Promise<BpfProgStats[]> {
  const out: BpfProgStats[] = [];
  const fds = readdirSync(`/proc/${pid}/fd`);
  for (const fd of fds) {
    let link: string;
    try {
      link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (link !== 'anon_inode:bpf-prog') continue;
    const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    const num = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
    const id = num('prog_id');
    if (out.some((p) => p.id === id)) continue;
    const name = (JSON.parse(await run('bpftool', ['-j', 'prog', 'show', 'id', String(id)], 5000)) as { name: string }).name;
    out.push({ id, name, runCnt: num('run_cnt'), runTimeNs: num('run_time_ns') });
  }
  return out;
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const started = nowNs();
  if (process.getuid?.() !== 0) throw new Error('needs root (namespaces, BPF): run it with sudo');
  for (const tool of ['iperf3', 'bpftool', 'ip', 'ss']) {
    try {
      execFileSync('which', [tool], { stdio: 'ignore' });
    } catch {
      throw new Error(`${tool} is not installed (apt-get install iperf3 bpftool iproute2); bench/overhead.sh installs them`);
    }
  }
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npm run build, or bench/overhead.sh)`);
  LOADGEN = loadgenPath();

  // How busy the machine is before we start: other tenants' load.
  const idle0 = systemCpu();
  await sleep(opts.quick ? 1000 : 3000);
  const idle1 = systemCpu();
  const busyBefore = (idle1.busy - idle0.busy) / (idle1.total - idle0.total);
  const load0 = loadavg();
  log(`overhead: machine ${(busyBefore * 100).toFixed(0)} % busy before the run (all CPUs), load average ${load0.map((x) => x.toFixed(2)).join(' ')}`);

  const defs = WORKLOAD_DEFS.filter((w) => opts.workloads.includes(w.name));
  const node = await buildNode(opts.pods);
  const runs: Run[] = [];
  const checks: BenchResult['checks'] = [];
  let capacity = 65536;
  let attachNotes: string[] = [];
  let bpfStatsWas: string | undefined;
  const agentLog = join(benchDir(), `${opts.tag}-agent.log`);
  writeFileSync(agentLog, '');
  try {
    if (opts.bpfStats) {
      bpfStatsWas = readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim();
      writeFileSync('/proc/sys/kernel/bpf_stats_enabled', '1');
    }
    log(`overhead: node ${node.net.id}: client ${node.client.ipv4}, server ${node.server.ipv4}, ${opts.pods} more pods; the agent watches ${node.glob} (${node.interfaces} veths)`);
    for (const d of defs) await d.setup?.(node);
    // The capacity the agent states, and what it attached.
    {
      const a = await AgentProcess.start(node.glob, node.interfaces, opts);
      const st = await a.stats();
      capacity = st.flowTable.capacity;
      attachNotes = [...new Set(st.interfaces.flatMap((i) => [`${i.hooks.join(' + ')}`, ...i.notes.map((n) => n.replace(i.name, 'VETH'))]))];
      await a.stop();
    }
    log(`overhead: flow table capacity ${capacity}; ${attachNotes.join('; ')}`);

    for (let round = 0; round < opts.pairs; round++) {
      for (const d of defs) {
        for (let p = 0, per = d.pairsPerRound ?? 1; p < per; p++) {
          const pair = round * per + p;
          for (const variant of rotate(['baseline', 'agent'] as const, pair)) {
            const agent = variant === 'agent' && opts.compare === 'agent' ? await AgentProcess.start(node.glob, node.interfaces, opts) : undefined;
            const emptyHooks = variant === 'baseline' ? opts.baseline === 'empty-tc' : opts.compare === 'empty-tc';
            const hooks = emptyHooks ? EmptyTcHooks.attach(node) : undefined;
            try {
              if (agent) await sleep(1000); // past the start-up work (first pipeline cycles, compilation)
              const warmed = opts.warmup > 0 && d.warmup !== false;
              const warmCpu0 = agent?.cpu();
              const warmT0 = nowNs();
              if (warmed) {
                await d.run({ node, seconds: opts.warmup, agent, capacity, warmup: true, quick: opts.quick });
                await sleep(WARMUP_SETTLE_MS); // two pipeline cycles over the warm-up's flows
              }
              const warmCpu1 = agent?.cpu();
              const warmS = (nowNs() - warmT0) / 1e9;
              const bpf0 = agent && opts.bpfStats ? await bpfStatsOf(agent.pid) : undefined;
              const cpu0 = agent?.cpu();
              const sys0 = systemCpu();
              const runStartedAt = new Date().toISOString();
              const t0 = nowNs();
              const r = await d.run({ node, seconds: opts.seconds, agent, capacity, warmup: false, quick: opts.quick });
              const wallS = (nowNs() - t0) / 1e9;
              const sys1 = systemCpu();
              const cpu1 = agent?.cpu();
              const run: Run = {
                round,
                pair,
                workload: d.name,
                variant,
                startedAt: runStartedAt,
                values: r.values,
                ...(r.detail ? { detail: r.detail } : {}),
                machineBusy: (sys1.busy - sys0.busy) / (sys1.total - sys0.total),
              };
              if (agent && cpu0 && cpu1) {
                const st = await agent.stats();
                const bpf1 = bpf0 && agent ? await bpfStatsOf(agent.pid) : undefined;
                const user = cpu1.user - cpu0.user;
                const system = cpu1.system - cpu0.system;
                run.agent = {
                  pid: agent.pid,
                  startMs: agent.startMs,
                  cpuUser: user,
                  cpuSystem: system,
                  cpuPercent: ((user + system) / wallS) * 100,
                  ...(warmed && warmCpu0 && warmCpu1 ? { warmupCpuPercent: ((warmCpu1.user + warmCpu1.system - warmCpu0.user - warmCpu0.system) / warmS) * 100 } : {}),
                  peakRssMb: agent.peakRssMb(),
                  lostEvents: st.lost.packetEvents + st.lost.securityEvents + st.lost.securityGaps + st.lost.consumer,
                  insertFailed: st.flowTable.insertFailed,
                  coverage: st.coverage.ratio,
                  flowEntries: st.flowTable.entries,
                  pipelineCycles: st.pipeline.cycles,
                  lastCycleMs: st.pipeline.lastCycleMs,
                  ...(bpf0 && bpf1
                    ? {
                        bpf: bpf1.map((p) => {
                          const b = bpf0.find((x) => x.id === p.id);
                          return { ...p, runCnt: p.runCnt - (b?.runCnt ?? 0), runTimeNs: p.runTimeNs - (b?.runTimeNs ?? 0) };
                        }),
                      }
                    : {}),
                };
              }
              for (const c of r.checks ?? []) checks.push({ ...c, detail: `round ${round}: ${c.detail}` });
              runs.push(run);
              const vals = Object.entries(r.values).map(([k, v]) => `${k} ${fmt(v, 2)}`).join(', ');
              const ag = run.agent ? `; agent CPU ${fmt(run.agent.cpuPercent, 1)} %, peak RSS ${fmt(run.agent.peakRssMb, 0)} MB, lost ${run.agent.lostEvents}, failed inserts ${run.agent.insertFailed}, coverage ${fmt(run.agent.coverage * 100, 2)} %` : '';
              log(`  round ${round} ${d.name} ${variant}: ${vals}${ag} (machine ${fmt(run.machineBusy * 100, 0)} % busy)`);
            } finally {
              hooks?.close();
              if (agent) {
                await agent.stop();
                writeFileSync(agentLog, `--- round ${round} ${d.name} (pid ${agent.pid})\n${agent.output()}`, { flag: 'a' });
              }
            }
          }
        }
      }
    }
  } finally {
    if (bpfStatsWas !== undefined) writeFileSync('/proc/sys/kernel/bpf_stats_enabled', bpfStatsWas);
    killAll();
    await node.net.close();
  }

  const result = summarise(opts, runs, checks, capacity, attachNotes, busyBefore, load0, (nowNs() - started) / 1e6);
  const jsonPath = join(benchDir(), `${opts.tag}.json`);
  writeResult({ ...result, bench: opts.tag });
  const md = markdown(result, opts);
  const mdPath = join(benchDir(), `${opts.tag}.md`);
  writeFileSync(mdPath, md);
  process.stdout.write(md);
  log(`overhead: wrote ${jsonPath} and ${mdPath} (agent output: ${agentLog})`);
  if (checks.some((c) => !c.ok)) process.exitCode = 1;
}

// ---- Summary ------------------------------------------------------------------

interface OverheadResult extends BenchResult {
  machine: { kernel: string; cpus: number; cpuModel: string; memoryGb: number; node: string; busyBefore: number; loadAvgBefore: number[]; loadAvgAfter: number[]; busyDuringRuns: Summary };
  /** Per row: the baselines of consecutive pairs against each other (A/A), the spread a ratio shows with nothing to find. */
  noise: Record<string, Summary>;
  agentCost: { workload: Workload; cpuPercent: Summary; cpuUserPercent: Summary; cpuSystemPercent: Summary; warmupCpuPercent: Summary | undefined; peakRssMb: number; lostEvents: number; insertFailed: number; coverage: number; startMs: Summary }[];
  runs: Run[];
}

/** Which workloads run more than one pair a round, e.g. "churn: 30". */
function pairsNote(opts: Options): string {
  const more = WORKLOAD_DEFS.filter((w) => opts.workloads.includes(w.name) && (w.pairsPerRound ?? 1) > 1);
  return more.length ? `${more.map((w) => `${w.name}: ${opts.pairs * w.pairsPerRound!}`).join(', ')}, its runs being short` : 'one a round';
}

/** churn-cost per pair: the baseline, what B added, the agent process's part of it, the rest (the kernel side), and A/B. */
function churnCostSplit(runs: Run[]): { pairs: number; base: Summary; added: Summary; agent: Summary; kernel: Summary; keep: Summary } | undefined {
  const base: number[] = [], added: number[] = [], agent: number[] = [], kernel: number[] = [], keep: number[] = [];
  for (const b of runs.filter((r) => r.workload === 'churn-cost' && r.variant === 'agent')) {
    const a = runs.find((r) => r.workload === 'churn-cost' && r.variant === 'baseline' && r.pair === b.pair);
    const agentUs = b.detail?.agentUs;
    if (!a || typeof agentUs !== 'number') continue;
    const d = b.values.cpuUs! - a.values.cpuUs!;
    base.push(a.values.cpuUs!);
    added.push(d);
    agent.push(agentUs);
    kernel.push(d - agentUs);
    keep.push(a.values.cpuUs! / b.values.cpuUs!);
  }
  if (!added.length) return undefined;
  return { pairs: added.length, base: summarize(base), added: summarize(added), agent: summarize(agent), kernel: summarize(kernel), keep: summarize(keep) };
}

function summarise(opts: Options, runs: Run[], checks: BenchResult['checks'], capacity: number, attachNotes: string[], busyBefore: number, load0: number[], durationMs: number): OverheadResult {
  const rows: ResultRow[] = [];
  const tables: BenchResult['tables'] = [];
  const notes: string[] = [];
  const agentCost: OverheadResult['agentCost'] = [];
  const noise = new Map<string, Summary>();
  for (const d of WORKLOAD_DEFS.filter((w) => opts.workloads.includes(w.name))) {
    const rounds = [...new Set(runs.filter((r) => r.workload === d.name).map((r) => r.pair))].filter(
      (pair) => runs.some((r) => r.pair === pair && r.workload === d.name && r.variant === 'baseline') && runs.some((r) => r.pair === pair && r.workload === d.name && r.variant === 'agent'),
    );
    const pick = (variant: Run['variant']): Run[] => rounds.map((pair) => runs.find((r) => r.pair === pair && r.workload === d.name && r.variant === variant)!);
    const base = pick('baseline');
    const withAgent = pick('agent');
    for (const m of d.metrics) {
      const a = withAgent.map((r) => r.values[m.key]!);
      const b = base.map((r) => r.values[m.key]!);
      const ratio = summarize(pairedRatios(a, b));
      // The noise floor: the same ratio between baselines of consecutive pairs (A/A), where there is none to find.
      const aa = summarize(pairedRatios(b.slice(1), b.slice(0, -1)));
      noise.set(`${d.title}: ${m.label}`, aa);
      rows.push({
        case: `${d.title}: ${m.label}`,
        metric: m.label,
        unit: m.unit,
        value: summarize(a),
        baseline: { name: 'the same node without the agent', metric: m.label, value: summarize(b) },
        ratio,
        ratioMeaning: m.higherIsBetter ? `${m.label}: with agent / without (higher is better)` : `${m.label}: with agent / without (lower is better)`,
        ...(m.goal ? { goal: { text: m.goal.text, pass: m.goal.pass(ratio.median) } } : {}),
        ...(aa.n ? { note: `noise floor: baseline / previous pair's baseline ${fmtSummary(aa, 3)}×` } : {}),
      });
    }
    const ag = withAgent.map((r) => r.agent!).filter(Boolean);
    if (ag.length) {
      agentCost.push({
        workload: d.name,
        cpuPercent: summarize(ag.map((x) => x.cpuPercent)),
        cpuUserPercent: summarize(ag.map((x) => x.cpuPercent * (x.cpuUser / Math.max(1e-9, x.cpuUser + x.cpuSystem)))),
        cpuSystemPercent: summarize(ag.map((x) => x.cpuPercent * (x.cpuSystem / Math.max(1e-9, x.cpuUser + x.cpuSystem)))),
        warmupCpuPercent: ag.some((x) => x.warmupCpuPercent !== undefined) ? summarize(ag.flatMap((x) => (x.warmupCpuPercent === undefined ? [] : [x.warmupCpuPercent]))) : undefined,
        peakRssMb: Math.max(...ag.map((x) => x.peakRssMb)),
        lostEvents: ag.reduce((s, x) => s + x.lostEvents, 0),
        insertFailed: ag.reduce((s, x) => s + x.insertFailed, 0),
        coverage: Math.min(...ag.map((x) => x.coverage)),
        startMs: summarize(ag.map((x) => x.startMs)),
      });
    }
  }

  // Agent CPU at 500 k packets/s: measured during the small-packet workload; where the node delivered fewer
  // than 500 k datagrams/s the figure is scaled up in proportion (an overestimate: part of it is fixed).
  const udpAgent = runs.filter((r) => r.workload === 'udp' && r.variant === 'agent' && r.agent);
  if (udpAgent.length) {
    const at500k = udpAgent.map((r) => r.agent!.cpuPercent * Math.max(1, 500 / r.values['kpps']!));
    const s = summarize(at500k);
    const pps = summarize(udpAgent.map((r) => r.values['kpps']!));
    rows.push({
      case: `agent CPU, small-packet workload (${fmt(pps.median, 0)} k datagrams/s with the agent; scaled to 500 k/s where below)`,
      metric: '% of one core',
      unit: '% of one core',
      value: s,
      goal: { text: '≤ 5 % of one core at 500 k packets/s', pass: s.median <= 5 },
      note: 'utime + stime of the agent process over the workload, from /proc/PID/stat (1/100 s resolution)',
    });
  }
  const allAgent = runs.filter((r) => r.agent);
  if (allAgent.length) {
    const peak = Math.max(...allAgent.map((r) => r.agent!.peakRssMb));
    rows.push({
      case: 'agent peak RSS (VmHWM), largest over every run',
      metric: 'MB',
      unit: 'MB',
      value: summarize(allAgent.map((r) => r.agent!.peakRssMb)),
      goal: { text: '≤ 150 MB', pass: peak <= 150 },
      note: `largest ${fmt(peak, 0)} MB`,
    });
  }
  tables.push({
    title: 'Agent cost during each workload (B runs)',
    header: ['workload', 'agent CPU, % of one core', 'user / system', 'over the warm-up', 'peak RSS', 'events lost', 'failed inserts', 'coverage (lowest)', 'agent start'],
    rows: agentCost.map((c) => [
      c.workload,
      `${fmt(c.cpuPercent.median, 1)} [${fmt(c.cpuPercent.min, 1)}–${fmt(c.cpuPercent.max, 1)}]`,
      `${fmt(c.cpuUserPercent.median, 1)} / ${fmt(c.cpuSystemPercent.median, 1)}`,
      c.warmupCpuPercent ? `${fmt(c.warmupCpuPercent.median, 1)} [${fmt(c.warmupCpuPercent.min, 1)}–${fmt(c.warmupCpuPercent.max, 1)}]` : '–',
      `${fmt(c.peakRssMb, 0)} MB`,
      String(c.lostEvents),
      String(c.insertFailed),
      `${fmt(c.coverage * 100, 3)} %`,
      `${fmt(c.startMs.median / 1000, 2)} s`,
    ]),
  });
  const split = churnCostSplit(runs);
  if (split) {
    tables.push({
      title: `Where churn-cost's added CPU goes, µs per connection (median [min–max] over ${split.pairs} pairs; the kernel side is what the agent's process did not take: TC hooks, programs, and what they make the network stack do)`,
      header: ['without agent', 'added with agent', 'the agent process', 'the kernel side', 'what a saturated run would keep (1/ratio)'],
      rows: [[split.base, split.added, split.agent, split.kernel, split.keep].map((x) => `${fmt(x.median, x === split.keep ? 3 : 1)} [${fmt(x.min, x === split.keep ? 3 : 1)}–${fmt(x.max, x === split.keep ? 3 : 1)}]`)],
    });
  }
  const busy = summarize(runs.map((r) => r.machineBusy * 100));
  notes.push(`${opts.pairs} pairs per workload (${pairsNote(opts)}), ${opts.seconds} s per run, order rotated each pair (A B, B A, ...); a fresh agent for every B run, started through the CLI; ${opts.warmup ? `before each measured run, A and B alike, the workload ran ${opts.warmup} s unmeasured (churn: ${CHURN_WARMUP_CONNECTIONS} connections to another port; not the flood), then ${WARMUP_SETTLE_MS / 1000} s passed (two pipeline cycles), so B measures a running agent, not its start (its CPU over the warm-up is in its own column)` : 'no warm-up: B measures a fresh agent'}; ${opts.pods} idle pods beside client and server.`);
  if (opts.compare === 'empty-tc') notes.push('Compared: the B runs ("with agent") have no agent, only an empty TC program attached by TCX at ingress and egress of every veth (--compare empty-tc): the ratios are what a TC hook costs by itself.');
  if (opts.baseline === 'empty-tc') notes.push('Baseline: an empty TC program attached by TCX at ingress and egress of every veth (--baseline empty-tc): the ratios are the agent above what a TC hook costs by itself.');
  notes.push(`Agent: \`kubenetprobe agent -i GLOB\` with defaults${opts.xdp ? `, --xdp ${opts.xdp}` : ''}${opts.sampleRate !== undefined ? `, --packet-sample-rate ${opts.sampleRate}` : ''}${opts.agentArgs.length ? `, ${opts.agentArgs.join(' ')}` : ''} (packet events 1 in ${opts.sampleRate ?? 100}); flow table capacity ${capacity}; on each veth: ${attachNotes.join('; ')}.`);
  notes.push(`Machine: ${fmt(busyBefore * 100, 0)} % busy (all CPUs) in the seconds before the run, load average ${load0.map((x) => x.toFixed(2)).join(' ')}; during runs ${fmt(busy.median, 0)} % [${fmt(busy.min, 0)}–${fmt(busy.max, 0)}] busy, the workloads' own load included.`);
  if (opts.bpfStats) notes.push('kernel.bpf_stats_enabled was on during the run: every BPF program pays two clock reads more, so B runs are slightly worse than without it.');
  const bpfRows = perProgram(runs);
  if (bpfRows.length) tables.push({ title: 'BPF programs on the veths (run_time_ns / run_cnt, B runs, median over rounds)', header: ['workload', 'program', 'runs per B run', 'ns per run'], rows: bpfRows });
  return {
    bench: opts.tag,
    startedAt: new Date(Date.now() - durationMs).toISOString(),
    durationMs,
    config: { ...opts },
    rows,
    checks,
    notes,
    tables,
    machine: {
      kernel: release(),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGb: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      busyBefore,
      loadAvgBefore: load0,
      loadAvgAfter: loadavg(),
      busyDuringRuns: busy,
    },
    noise: Object.fromEntries(noise),
    agentCost,
    runs,
  };
}

function perProgram(runs: Run[]): string[][] {
  const out: string[][] = [];
  for (const w of WORKLOADS) {
    const byName = new Map<string, { cnt: number[]; ns: number[] }>();
    for (const r of runs) {
      if (r.workload !== w || !r.agent?.bpf) continue;
      const per = new Map<string, { cnt: number; ns: number }>();
      for (const p of r.agent.bpf) {
        const e = per.get(p.name) ?? { cnt: 0, ns: 0 };
        e.cnt += p.runCnt;
        e.ns += p.runTimeNs;
        per.set(p.name, e);
      }
      for (const [name, e] of per) {
        if (!e.cnt) continue;
        const x = byName.get(name) ?? { cnt: [], ns: [] };
        x.cnt.push(e.cnt);
        x.ns.push(e.cnt ? e.ns / e.cnt : 0);
        byName.set(name, x);
      }
    }
    for (const [name, x] of byName) out.push([w, name, fmt(summarize(x.cnt).median, 0), `${fmt(summarize(x.ns).median, 1)} [${fmt(summarize(x.ns).min, 1)}–${fmt(summarize(x.ns).max, 1)}]`]);
  }
  return out;
}


function digitsFor(unit: string, v: number): number {
  if (unit === 'Gbit/s') return 1;
  if (unit === 'µs') return 1;
  if (unit === '% of one core') return 1;
  return v >= 100 ? 0 : 1;
}

function markdown(r: OverheadResult, opts: Options): string {
  const m = r.machine;
  const L: string[] = [];
  L.push(`## KubeNetProbe overhead (bench/overhead${opts.quick ? ', --quick' : ''})`, '');
  L.push(
    `${r.startedAt.slice(0, 10)}, Linux ${m.kernel}, ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGb} GB, Node ${m.node}. ` +
      `Machine ${fmt(m.busyBefore * 100, 0)} % busy before the run (load average ${m.loadAvgBefore.map((x) => x.toFixed(2)).join(' ')}). ` +
      `${opts.pairs} A/B pairs per workload (${pairsNote(opts)}), ${opts.seconds} s per run; median [min–max] over the pairs, ratios paired per pair. ${fmt(r.durationMs / 1000, 0)} s in all.`,
    '',
  );
  L.push('| workload | without agent | with agent | ratio with / without | noise floor (A/A) | goal | |', '|---|---|---|---|---|---|---|');
  for (const row of r.rows) {
    const d = digitsFor(row.unit, row.value.median);
    const status = row.goal ? (row.goal.pass ? '**pass**' : '**miss**') : '';
    const base = row.baseline ? `${fmtSummary(row.baseline.value, d)} ${row.unit}` : '–';
    const ratio = row.ratio ? `${fmtSummary(row.ratio, 3)}×` : '–';
    const value = row.unit === 'MB' ? `${fmt(row.value.max, 0)} MB (largest)` : `${fmtSummary(row.value, d)} ${row.unit}`;
    const aa = r.noise[row.case];
    L.push(`| ${row.case} | ${base} | ${value} | ${ratio} | ${aa ? `${fmt(aa.min, 2)}–${fmt(aa.max, 2)}×` : '–'} | ${row.goal?.text ?? ''} | ${status} |`);
  }
  L.push('', 'Noise floor: the same ratio taken between the baselines of consecutive pairs (A/A), min–max: the spread a ratio shows on this machine with nothing to find.', '');
  for (const t of r.tables) {
    L.push(`${t.title}:`, '');
    L.push(`| ${t.header.join(' | ')} |`, `|${t.header.map(() => '---').join('|')}|`);
    for (const row of t.rows) L.push(`| ${row.join(' | ')} |`);
    L.push('');
  }
  const failed = r.checks.filter((c) => !c.ok);
  L.push(`Checks: ${r.checks.length - failed.length} of ${r.checks.length} passed${failed.length ? '' : ' (flow table: no flow missed below capacity, every failed insert counted past it)'}.`);
  for (const c of failed) L.push(`- **FAILED** ${c.what}: ${c.detail}`);
  for (const n of r.notes) L.push(`- ${n}`);
  L.push('');
  return L.join('\n');
}

try {
  await main();
} catch (err) {
  log(`overhead: ${(err as Error).stack ?? String(err)}`);
  killAll();
  process.exitCode = 1;
}
