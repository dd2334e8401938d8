/**
 * Byte layouts of the structs in bpf/kubenetprobe.h, as the decoders use
 * them. layouts.test.ts checks every offset and size here against the BTF
 * the compiler wrote into the object, so the two cannot drift apart.
 */
export interface Layout {
  /** The C struct name. */
  readonly struct: string;
  readonly size: number;
  readonly offsets: Readonly<Record<string, number>>;
}

function layout<const O extends Record<string, number>>(struct: string, size: number, offsets: O) {
  return { struct, size, offsets } as const satisfies Layout;
}

export const FLOW_KEY = layout('knp_flow_key', 44, {
  saddr: 0,
  daddr: 16,
  sport: 32,
  dport: 34,
  ifindex: 36,
  proto: 40,
  family: 41,
  direction: 42,
  _pad: 43,
});

export const FLOW_VALUE = layout('knp_flow_value', 48, {
  packets: 0,
  bytes: 8,
  first_seen_ns: 16,
  last_seen_jiffies: 24,
  syn_count: 32,
  fin_count: 36,
  rst_count: 40,
  tcp_flags: 44,
});

export const IFACE_KEY = layout('knp_iface_key', 8, { ifindex: 0, hook: 4 });

export const IFACE_COUNTERS = layout('knp_iface_counters', 64, { packets: 0, bytes: 32 });

export const IFACE_SLOT = layout('knp_iface_slot', 72, { ifindex: 0, hook: 4, c: 8 });

export const GLOBAL_COUNTERS = layout('knp_global_counters', 64, { c: 0 });

export const CPU_STATE = layout('knp_cpu_state', 32, { sample_tick: 0, sec_seq: 8, anchor_ns: 16, anchor_jiffies: 24 });

export const PACKET_INFO = layout('knp_packet_info', 64, {
  timestamp_ns: 0,
  key: 8,
  packet_len: 52,
  ip_len: 56,
  tcp_flags: 60,
  hook: 61,
  _pad: 62,
});

export const SECURITY_EVENT = layout('knp_security_event', 152, {
  timestamp_ns: 0,
  seq: 8,
  key: 16,
  type: 60,
  severity: 64,
  cpu: 68,
  count: 72,
  window_ms: 76,
  tcp_flags: 80,
  hook: 81,
  _pad: 82,
  description: 84,
  _pad2: 148,
});

export const DESCRIPTION_LEN = 64;

/** KNP_TCP_OPENED in knp_flow_value.tcp_flags. */
export const TCP_OPENED = 1 << 8;

export const ALL_LAYOUTS: readonly Layout[] = [
  FLOW_KEY,
  FLOW_VALUE,
  IFACE_KEY,
  IFACE_COUNTERS,
  IFACE_SLOT,
  GLOBAL_COUNTERS,
  CPU_STATE,
  PACKET_INFO,
  SECURITY_EVENT,
];

/** enum knp_hook */
export const HOOKS = ['tc-ingress', 'tc-egress', 'xdp'] as const;
export type Hook = (typeof HOOKS)[number];

/** enum knp_outcome, in index order. */
export const OUTCOMES = ['parsed', 'nonIp', 'truncated', 'malformed'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** enum knp_counter */
export const COUNTER = {
  flowInserted: 0,
  flowInsertFailed: 1,
  packetEventsSent: 2,
  packetEventsDropped: 3,
  securityEventsSent: 4,
  securityEventsDropped: 5,
  ifaceTableFull: 6,
  headersPulled: 7,
} as const;
export const COUNTER_SLOTS = 8;

/** enum knp_security_type */
export const SECURITY_TYPES: Readonly<Record<number, string>> = {
  1: 'tcp-null-scan',
  2: 'tcp-xmas-scan',
  3: 'tcp-syn-fin',
  4: 'tcp-syn-rst',
};

/** enum knp_severity */
export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];
