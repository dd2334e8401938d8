/**
 * Decoders from the kernel's bytes (bpf/kubenetprobe.h) to the public types.
 * Offsets come from layouts.ts, which the tests check against BTF.
 */
import { FLOW_KEY, FLOW_VALUE, HOOKS, PACKET_INFO, SECURITY_EVENT, SECURITY_TYPES, SEVERITIES, DESCRIPTION_LEN } from './layouts.js';
import type { Hook } from './layouts.js';
import { formatAddress } from './ip.js';
import type { FlowKey, ProtocolName } from '../types.js';

const PROTOCOLS: Readonly<Record<number, ProtocolName>> = {
  1: 'ICMP',
  2: 'IGMP',
  6: 'TCP',
  17: 'UDP',
  41: 'IPv6',
  47: 'GRE',
  50: 'ESP',
  51: 'AH',
  58: 'ICMPv6',
  59: 'IPv6-NoNxt',
  89: 'OSPF',
  112: 'VRRP',
  132: 'SCTP',
  136: 'UDPLite',
};

export function protocolName(n: number): ProtocolName {
  return PROTOCOLS[n] ?? `proto-${n}`;
}

const TCP_FLAG_NAMES = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'] as const;

export function tcpFlagNames(flags: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < TCP_FLAG_NAMES.length; i++) if (flags & (1 << i)) out.push(TCP_FLAG_NAMES[i]!);
  return out;
}

/** Flag names for each flags byte, computed once; callers copy before changing. */
const FLAG_NAMES_BY_BYTE: readonly (readonly string[])[] = Array.from({ length: 256 }, (_, f) => Object.freeze(tcpFlagNames(f)));

export function tcpFlagNamesCached(flags: number): readonly string[] {
  return FLAG_NAMES_BY_BYTE[flags & 0xff]!;
}

export function hookName(n: number): Hook {
  return HOOKS[n] ?? 'tc-ingress';
}

export function decodeFlowKey(v: DataView, off: number): FlowKey {
  const o = FLOW_KEY.offsets;
  const familyNum = v.getUint8(off + o.family);
  const proto = v.getUint8(off + o.proto);
  const dport = v.getUint16(off + o.dport, true);
  const key: FlowKey = {
    family: familyNum === 4 ? 'ipv4' : 'ipv6',
    srcIp: formatAddress(v, off + o.saddr, familyNum),
    dstIp: formatAddress(v, off + o.daddr, familyNum),
    srcPort: v.getUint16(off + o.sport, true),
    dstPort: dport,
    protocol: protocolName(proto),
    protocolNumber: proto,
    direction: v.getUint8(off + o.direction) === 0 ? 'ingress' : 'egress',
    ifindex: v.getUint32(off + o.ifindex, true),
  };
  if (proto === 1 || proto === 58) key.icmp = { type: dport >> 8, code: dport & 0xff };
  return key;
}

export interface RawFlowValue {
  packets: number;
  bytes: number;
  /** CLOCK_MONOTONIC (coarse) of the first packet, in ms; 0 when none. */
  firstSeenMs: number;
  /** jiffies of the last packet (exact as a Number). */
  lastSeenJiffies: number;
  synCount: number;
  finCount: number;
  rstCount: number;
  tcpFlags: number;
}

const TWO32 = 4294967296;

/**
 * Merges the per-CPU copies of one flow value (`cpus` values of
 * FLOW_VALUE.size bytes from `off`): counts add up, flags OR, first seen is
 * the earliest of copies that saw packets, last seen the latest. 64-bit
 * fields are read as two 32-bit halves into Numbers (exact below 2^53):
 * BigInt per field per CPU is what made reading 100k flows slow.
 */
export function decodeFlowValuePerCpu(v: DataView, off: number, cpus: number): RawFlowValue {
  const o = FLOW_VALUE.offsets;
  const u64 = (at: number): number => v.getUint32(at, true) + v.getUint32(at + 4, true) * TWO32;
  let packets = 0;
  let bytes = 0;
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  let syn = 0;
  let fin = 0;
  let rst = 0;
  let flags = 0;
  for (let c = 0; c < cpus; c++) {
    const b = off + c * FLOW_VALUE.size;
    const p = u64(b + o.packets);
    if (p === 0) continue;
    packets += p;
    bytes += u64(b + o.bytes);
    const f = u64(b + o.first_seen_ns);
    if (f !== 0 && f < first) first = f;
    const l = u64(b + o.last_seen_jiffies);
    if (l > last) last = l;
    syn += v.getUint32(b + o.syn_count, true);
    fin += v.getUint32(b + o.fin_count, true);
    rst += v.getUint32(b + o.rst_count, true);
    flags |= v.getUint32(b + o.tcp_flags, true);
  }
  return {
    packets,
    bytes,
    firstSeenMs: first === Number.POSITIVE_INFINITY ? 0 : first / 1e6,
    lastSeenJiffies: last,
    synCount: syn,
    finCount: fin,
    rstCount: rst,
    tcpFlags: flags,
  };
}

export interface RawPacketInfo {
  timestampNs: bigint;
  key: FlowKey;
  packetLen: number;
  ipLen: number;
  tcpFlags: number;
  hook: Hook;
}

export function decodePacketInfo(v: DataView, off: number): RawPacketInfo {
  const o = PACKET_INFO.offsets;
  return {
    timestampNs: v.getBigUint64(off + o.timestamp_ns, true),
    key: decodeFlowKey(v, off + o.key),
    packetLen: v.getUint32(off + o.packet_len, true),
    ipLen: v.getUint32(off + o.ip_len, true),
    tcpFlags: v.getUint8(off + o.tcp_flags),
    hook: hookName(v.getUint8(off + o.hook)),
  };
}

export interface RawSecurityEvent {
  timestampNs: bigint;
  seq: bigint;
  key: FlowKey;
  type: string;
  typeNumber: number;
  severity: (typeof SEVERITIES)[number];
  cpu: number;
  count: number;
  threshold: number;
  windowMs: number;
  suppressed: number;
  tcpFlags: number;
  hook: Hook;
  description: string;
}

const textDecoder = new TextDecoder();

export function decodeSecurityEvent(v: DataView, off: number): RawSecurityEvent {
  const o = SECURITY_EVENT.offsets;
  const typeNumber = v.getUint32(off + o.type, true);
  const desc = new Uint8Array(v.buffer, v.byteOffset + off + o.description, DESCRIPTION_LEN);
  const nul = desc.indexOf(0);
  return {
    timestampNs: v.getBigUint64(off + o.timestamp_ns, true),
    seq: v.getBigUint64(off + o.seq, true),
    key: decodeFlowKey(v, off + o.key),
    type: (SECURITY_TYPES as Record<number, string>)[typeNumber] ?? `unknown-${typeNumber}`,
    typeNumber,
    severity: SEVERITIES[v.getUint32(off + o.severity, true)] ?? 'info',
    cpu: v.getUint32(off + o.cpu, true),
    count: v.getUint32(off + o.count, true),
    threshold: v.getUint32(off + o.threshold, true),
    windowMs: v.getUint32(off + o.window_ms, true),
    suppressed: v.getUint32(off + o.suppressed, true),
    tcpFlags: v.getUint8(off + o.tcp_flags),
    hook: hookName(v.getUint8(off + o.hook)),
    // Copy: the ring's memory is reused once the record is consumed.
    description: textDecoder.decode(desc.slice(0, nul < 0 ? DESCRIPTION_LEN : nul)),
  };
}
