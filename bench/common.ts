/**
 * Shared by the benchmarks: statistics over interleaved rounds, the result
 * format (build/bench/<bench>.json, merged by report.ts), test frames.
 *
 * This machine is a noisy 2-core VM, so every result is measured against a
 * baseline in the same run, A/B interleaved (the order rotates each round),
 * and reported as median with min and max over the rounds. Ratios are taken
 * per round (paired), then summarised.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';
import { packageRoot } from '../src/paths.js';
import { FLOW_KEY, FLOW_VALUE } from '../src/abi/layouts.js';
import type { BpfMap } from '../src/loader/map.js';
import { ObjectSpec, type Collection } from '../src/loader/object.js';
import { TCP, ethernet, ipv4, ipv6, mac, tcp, udp } from '../tools/frames.js';

export interface Summary {
  median: number;
  min: number;
  max: number;
  mean: number;
  n: number;
}

export function summarize(xs: readonly number[]): Summary {
  if (xs.length === 0) return { median: NaN, min: NaN, max: NaN, mean: NaN, n: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, mean: s.reduce((a, b) => a + b, 0) / s.length, n: s.length };
}

/** Per-round ratios a[i] / b[i]. */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  return a.map((x, i) => x / b[i]!);
}

export interface Goal {
  text: string;
  pass: boolean;
}

export interface ResultRow {
  /** What was measured, e.g. "tc_ingress, IPv4 UDP 64 B, events off". */
  case: string;
  /** What `value` is, e.g. "ns/packet above empty". */
  metric: string;
  unit: string;
  value: Summary;
  baseline?: { name: string; metric: string; value: Summary };
  /** ours / baseline, per round. */
  ratio?: Summary;
  /** How to read the ratio, e.g. "time, lower is better". */
  ratioMeaning?: string;
  goal?: Goal;
  /** Anything a reader needs to interpret the row. */
  note?: string;
}

export interface BenchResult {
  bench: string;
  startedAt: string;
  durationMs: number;
  config: Record<string, unknown>;
  rows: ResultRow[];
  /** Correctness checks made on the way (e.g. no unreported loss); all must hold. */
  checks: { what: string; ok: boolean; detail: string }[];
  notes: string[];
  /** Supporting tables (e.g. a cost breakdown), printed after the main table. */
  tables: { title: string; header: string[]; rows: string[][] }[];
}

/** A result for `bench` started now, with its configuration: rows, checks, notes and tables to fill. */
export function newResult(bench: string, config: Record<string, unknown>, notes: string[] = []): BenchResult {
  return { bench, startedAt: new Date().toISOString(), durationMs: 0, config, rows: [], checks: [], notes, tables: [] };
}

export function benchDir(): string {
  const dir = join(packageRoot(), 'build', 'bench');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** tools/loadgen.c, built into build/bench (again when the source is newer); returns its path. */
export function loadgenPath(): string {
  const bin = join(benchDir(), 'loadgen');
  const src = join(packageRoot(), 'tools', 'loadgen.c');
  if (existsSync(bin) && statSync(bin).mtimeMs > statSync(src).mtimeMs) return bin;
  const cc = ['cc', 'gcc', 'clang'].find((c) => {
    try {
      execFileSync('which', [c], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  });
  if (!cc) throw new Error('no C compiler (cc, gcc or clang) to build tools/loadgen.c');
  execFileSync(cc, ['-O2', '-Wall', '-o', `${bin}.tmp`, src], { stdio: ['ignore', 'pipe', 'pipe'] });
  renameSync(`${bin}.tmp`, bin);
  return bin;
}

export function writeResult(r: BenchResult): string {
  const path = join(benchDir(), `${r.bench}.json`);
  writeFileSync(path, JSON.stringify(r, null, 2) + '\n');
  return path;
}

/** Rotates `items` by `round`, so that no variant always runs first. */
export function rotate<T>(items: readonly T[], round: number): T[] {
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

export function fmt(x: number, digits = 1): string {
  if (!Number.isFinite(x)) return String(x);
  return x.toFixed(digits);
}

/** "12.3 [11.0–14.2]" */
export function fmtSummary(s: Summary, digits = 1): string {
  return `${fmt(s.median, digits)} [${fmt(s.min, digits)}–${fmt(s.max, digits)}]`;
}

export function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** Reads a positive integer from the environment (to scale a benchmark down or up). */
export function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${v}`);
  return n;
}

// ---- Frames -----------------------------------------------------------------


export type FrameKind = 'ipv4-udp' | 'ipv4-tcp-ack' | 'ipv6-udp' | 'ipv6-tcp-ack';

export interface Frame {
  kind: FrameKind;
  label: string;
  bytes: Uint8Array;
}

/**
 * An Ethernet frame of `total` bytes (tools/frames.ts, with valid lengths
 * and checksums), so the kernel parser takes its "parsed" path. TCP frames
 * carry only ACK, which raises no security event. Addresses: 198.18.0.1 ->
 * 198.18.0.2 (RFC 2544) and fd00::1 -> fd00::2.
 */
export function buildFrame(kind: FrameKind, total: number, sport = 40000, dport = 5201): Frame {
  const v6 = kind.startsWith('ipv6');
  const isTcp = kind.endsWith('tcp-ack');
  const headers = 14 + (v6 ? 40 : 20) + (isTcp ? 20 : 8);
  if (total < headers) throw new RangeError(`${kind}: ${total} bytes is shorter than its headers`);
  const payload = Buffer.alloc(total - headers);
  const l4 = isTcp ? tcp(sport, dport, TCP.ACK, payload) : udp(sport, dport, payload);
  const l3 = v6 ? ipv6('fd00::1', 'fd00::2', l4) : ipv4('198.18.0.1', '198.18.0.2', l4);
  const bytes = ethernet(mac('02:00:00:00:00:02'), mac('02:00:00:00:00:01'), l3);
  const label = `${v6 ? 'IPv6' : 'IPv4'} ${isTcp ? 'TCP ACK' : 'UDP'} ${total} B`;
  return { kind, label, bytes: new Uint8Array(bytes) };
}

/** The frames bench/prog-cost.ts measures: 64 B for IPv4, 80 B for IPv6. */
export function standardFrames(): Frame[] {
  return [buildFrame('ipv4-udp', 64), buildFrame('ipv4-tcp-ack', 64), buildFrame('ipv6-udp', 80), buildFrame('ipv6-tcp-ack', 80)];
}

// ---- Flow tables ------------------------------------------------------------

const lib = koffi.load('libbpf.so.1');
const bpf_map_update_batch = lib.func('int bpf_map_update_batch(int fd, const void *keys, const void *values, void *count, const void *opts)');

export interface FlowTable {
  count: number;
  keys: Buffer;
  values: Buffer;
  totalPackets: number;
}

/** `flows` distinct flows: 3 in 4 IPv4 (stored IPv4-mapped), 1 in 4 IPv6; TCP and UDP; both directions. */
export function makeFlowTable(flows: number, ifindex: number, stride: number, cpus: number): FlowTable {
  const keys = Buffer.alloc(flows * FLOW_KEY.size);
  const values = Buffer.alloc(flows * stride);
  const k = FLOW_KEY.offsets;
  const o = FLOW_VALUE.offsets;
  const now = process.hrtime.bigint();
  let totalPackets = 0;
  for (let i = 0; i < flows; i++) {
    const at = i * FLOW_KEY.size;
    const v6 = i % 4 === 3;
    const tcp = i % 3 !== 0;
    if (v6) {
      keys.writeUInt32BE(0xfd000000, at + k.saddr);
      keys.writeUInt32BE(i, at + k.saddr + 12);
      keys.writeUInt32BE(0xfd000000, at + k.daddr);
      keys.writeUInt32BE(0x0a, at + k.daddr + 12);
    } else {
      keys.writeUInt32BE(0xffff, at + k.saddr + 8);
      keys.writeUInt32BE((10 << 24) | i, at + k.saddr + 12);
      keys.writeUInt32BE(0xffff, at + k.daddr + 8);
      keys.writeUInt32BE(0x0a60000a, at + k.daddr + 12); // 10.96.0.10
    }
    keys.writeUInt16LE(1024 + (i % 60000), at + k.sport);
    keys.writeUInt16LE([443, 53, 8080, 5432][i % 4]!, at + k.dport);
    keys.writeUInt32LE(ifindex, at + k.ifindex);
    keys.writeUInt8(tcp ? 6 : 17, at + k.proto);
    keys.writeUInt8(v6 ? 6 : 4, at + k.family);
    keys.writeUInt8(i & 1, at + k.direction);
    // Every flow has packets on CPU 0; odd flows on the other CPUs too.
    for (let cpu = 0; cpu < cpus; cpu++) {
      if (cpu > 0 && i % 2 === 0) continue;
      const vat = i * stride + cpu * FLOW_VALUE.size;
      const packets = 1 + (i % 1000);
      totalPackets += packets;
      values.writeBigUInt64LE(BigInt(packets), vat + o.packets);
      values.writeBigUInt64LE(BigInt(packets * 100), vat + o.bytes);
      values.writeBigUInt64LE(now - 60_000_000_000n + BigInt(cpu), vat + o.first_seen_ns);
      values.writeBigUInt64LE(4_295_000_000n + BigInt(i), vat + o.last_seen_jiffies);
      if (tcp) {
        values.writeUInt32LE(1, vat + o.syn_count);
        values.writeUInt32LE(0x12, vat + o.tcp_flags);
      }
    }
  }
  return { count: flows, keys, values, totalPackets };
}

/** Writes the table into the map with one BPF_MAP_UPDATE_BATCH; returns ms. */
export function fillFlowTable(map: BpfMap, t: FlowTable): number {
  const t0 = nowNs();
  const count = new Uint32Array([t.count]);
  const rc = bpf_map_update_batch(map.fd, t.keys, t.values, count, null) as number;
  if (rc < 0 || count[0] !== t.count) throw new Error(`bpf_map_update_batch: rc ${rc}, ${count[0]} of ${t.count} written`);
  return (nowNs() - t0) / 1e6;
}


/** Loads a BPF object (the benchmarks' own, from build/bench) into a Collection. */
export function loadCollection(path: string): Collection {
  const spec = ObjectSpec.open(path);
  try {
    return spec.load();
  } finally {
    spec.close();
  }
}
