/**
 * The public data types: the design note's FlowKey, PacketInfo and
 * SecurityEvent, decoded into plain objects with addresses as strings and
 * protocols by name.
 */
import type { Hook, Outcome, Severity } from './abi/layouts.js';

export type { Hook, Outcome, Severity };

export type IpFamily = 'ipv4' | 'ipv6';
export type Direction = 'ingress' | 'egress';
/** IANA protocol keyword, or "proto-N" for numbers without one here. */
export type ProtocolName = 'TCP' | 'UDP' | 'ICMP' | 'ICMPv6' | (string & {});

export interface FlowKey {
  family: IpFamily;
  srcIp: string;
  dstIp: string;
  /** For ICMP: the echo identifier on echo request/reply, else 0. */
  srcPort: number;
  /** For ICMP: type << 8 | code (see icmpType/icmpCode). */
  dstPort: number;
  protocol: ProtocolName;
  protocolNumber: number;
  direction: Direction;
  ifindex: number;
  /** Present for ICMP and ICMPv6 flows. */
  icmp?: { type: number; code: number };
}

export interface FlowStats {
  key: FlowKey;
  /** Interface name, when it still exists. */
  interface: string | undefined;
  packets: number;
  /** IP header plus payload, as IPFIX octetDeltaCount counts them. */
  bytes: number;
  /** First and last packet, to the kernel tick (1-10 ms). */
  firstSeen: Date;
  lastSeen: Date;
  /** Names of every TCP flag seen on the flow, e.g. ['SYN', 'ACK'] (shared, frozen). */
  tcpFlags: readonly string[];
  synCount: number;
  finCount: number;
  rstCount: number;
  /** TCP: this direction sent a SYN without ACK, so it opened the connection (the client's side). */
  opened: boolean;
}

export interface PacketInfo {
  timestamp: Date;
  /** Kernel CLOCK_MONOTONIC nanoseconds. */
  timestampNs: bigint;
  key: FlowKey;
  interface: string | undefined;
  hook: Hook;
  /** Frame length as the hook saw it (L2 included). */
  packetSize: number;
  /** IP header plus payload. */
  ipLength: number;
  tcpFlags: string[];
}

export interface SecurityEvent {
  timestamp: Date;
  timestampNs: bigint;
  /** e.g. "tcp-null-scan". */
  type: string;
  typeNumber: number;
  severity: Severity;
  description: string;
  /** The packet's 5-tuple: attacker is src, target is dst. */
  key: FlowKey;
  attacker: { ip: string; port: number };
  target: { ip: string; port: number };
  interface: string | undefined;
  hook: Hook;
  /** Observations that crossed the threshold (distinct ports or hosts for scans and sweeps), the threshold, and the window (0: one packet). */
  count: number;
  threshold: number;
  windowMs: number;
  /** Events of the same subject and type held back by the rate limit since the previous one. */
  suppressed: number;
  /** The packet's flags; for port scans, every flag the probes carried (SYN: SYN or connect scan; none: NULL; FIN; FIN+PSH+URG: XMAS). */
  tcpFlags: string[];
  /** Per-CPU sequence number; gaps mean lost events and are reported. */
  cpu: number;
  seq: bigint;
}

export type OutcomeCounts = Record<Outcome, number> & { total: number };

export interface InterfaceCounters {
  ifindex: number;
  interface: string | undefined;
  hook: Hook;
  packets: OutcomeCounts;
  bytes: OutcomeCounts;
}

export interface PacketStats {
  /** One entry per interface and hook that has seen a frame. */
  interfaces: InterfaceCounters[];
  /** Sums over the TC hooks by direction (XDP is in `xdp`, to avoid counting twice). */
  ingress: { packets: OutcomeCounts; bytes: OutcomeCounts };
  egress: { packets: OutcomeCounts; bytes: OutcomeCounts };
  xdp: { packets: OutcomeCounts; bytes: OutcomeCounts };
  flowTable: {
    entries: number;
    capacity: number;
    /** Flows created since the programs were loaded (entries = inserted - evicted). */
    inserted: number;
    /** Updates lost because the table was full. */
    insertFailed: number;
  };
  events: {
    packet: { sent: number; dropped: number };
    /** dropped: ring full (kernel count); gaps: missing sequence numbers seen here; suppressed: held back by the rate limits (by design, counted). */
    security: { sent: number; dropped: number; gaps: number; suppressed: number };
    /** Events decoded but not delivered because a consumer queue was full. */
    consumerDropped: number;
  };
  /** Frames not counted per interface because that table was full. */
  interfaceTableFull: number;
  /** TC frames whose headers reached past the skb's linear area and were pulled in. */
  headersPulled: number;
  /** Detector and rate-limit state that could not be stored. */
  detectorStateFailed: number;
  blocks: {
    /** Frames dropped because their source was blocked. */
    packetsDropped: number;
    /** Blocks the kernel could not store (table full). */
    insertFailed: number;
  };
}

export interface LostEvents {
  ring: 'packet' | 'security' | 'consumer';
  /** Newly lost since the last report. */
  count: number;
  /** Lost on this ring since the monitor started. */
  total: number;
}

/** A source that enforce mode (or a caller) blocked. */
export interface Block {
  ip: string;
  /** The detector that flagged the source, or 'manual' for a block set by hand. */
  reason: string;
  createdAt: Date;
  /** When frames pass again; undefined: until lifted. */
  expiresAt: Date | undefined;
  /** Frames dropped so far. */
  packetsDropped: number;
}

/** A source blocked or unblocked, and why. */
export interface BlockChange {
  action: 'blocked' | 'unblocked';
  /** detector: enforce mode flagged it; manual: block() or unblock(); expired: its TTL ran out. */
  cause: 'detector' | 'manual' | 'expired';
  block: Block;
  at: Date;
}

export type MonitorEvent =
  | { kind: 'packet'; packet: PacketInfo }
  | { kind: 'security'; event: SecurityEvent }
  | { kind: 'block'; change: BlockChange }
  | { kind: 'lost'; lost: LostEvents };
