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

export const GLOBAL_COUNTERS = layout('knp_global_counters', 96, { c: 0 });

export const CPU_STATE = layout('knp_cpu_state', 48, {
  sample_tick: 0,
  sec_seq: 8,
  anchor_ns: 16,
  anchor_jiffies: 24,
  ev_second_ns: 32,
  ev_in_second: 40,
});

export const PACKET_INFO = layout('knp_packet_info', 64, {
  timestamp_ns: 0,
  key: 8,
  packet_len: 52,
  ip_len: 56,
  tcp_flags: 60,
  hook: 61,
  _pad: 62,
});

export const SECURITY_EVENT = layout('knp_security_event', 160, {
  timestamp_ns: 0,
  seq: 8,
  key: 16,
  type: 60,
  severity: 64,
  cpu: 68,
  count: 72,
  threshold: 76,
  window_ms: 80,
  suppressed: 84,
  tcp_flags: 88,
  hook: 89,
  _pad: 90,
  description: 92,
  _pad2: 156,
});

export const DETECT_CONFIG = layout('knp_detect_config', 64, {
  window_ns: 0,
  event_interval_ns: 8,
  block_ttl_ns: 16,
  enabled: 24,
  enforce: 28,
  check_blocks: 32,
  max_events_per_sec: 36,
  syn_flood_syns: 40,
  syn_flood_half_open_pct: 44,
  port_scan_ports: 48,
  udp_scan_ports: 52,
  icmp_flood_packets: 56,
  ping_sweep_hosts: 60,
});

export const ADDR = layout('knp_addr', 16, { addr: 0 });

export const SUBJECT_KEY = layout('knp_subject_key', 20, { addr: 0, type: 16 });

export const DETECT_STATE = layout('knp_detect_state', 88, {
  window_start_ns: 0,
  count: 8,
  distinct: 12,
  completed: 16,
  tcp_flags: 20,
  seen: 24,
});

export const BLOCK = layout('knp_block', 32, { created_ns: 0, expires_ns: 8, packets: 16, type: 24, _pad: 28 });

export const LPM_KEY = layout('knp_lpm_key', 20, { prefixlen: 0, addr: 4 });

/** knp_iface_flags values. */
export const IFACE_FLAG = { tcIngress: 1 << 0, martians: 1 << 1 } as const;

/** KNP_IFACE_FLAG_SLOTS: interfaces numbered below it keep their flags in knp_iface_flag_slots[ifindex], the rest in knp_iface_flags. */
export const IFACE_FLAG_SLOTS = 65536;

export const DESCRIPTION_LEN = 64;

/** KNP_TCP_OPENED in knp_flow_value.tcp_flags. */
export const TCP_OPENED = 1 << 8;

/** What the knp_flow_read iterator writes first in a read (bpf/flow-read.bpf.h). */
export const FLOW_READ_HEADER = layout('knp_flow_read_header', 16, { now_jiffies: 0, cpus: 8, record_size: 12 });

/** Then one of these per flow that changed: the key, and its value summed over CPUs. */
export const FLOW_RECORD = layout('knp_flow_record', 96, { key: 0, _pad: 44, value: 48 });

export const FLOW_READ_CFG = layout('knp_flow_read_cfg', 8, { since_jiffies: 0 });

/** An entry of knp_flow_evict_batch (bpf/flow-evict.bpf.h): a key in; found and the final value, summed over CPUs, out. */
export const FLOW_EVICT = layout('knp_flow_evict', 96, { key: 0, found: 44, value: 48 });

/** knp_flow_evict's context: how many entries to evict in; how many were in the table out. */
export const FLOW_EVICT_ARGS = layout('knp_flow_evict_args', 8, { count: 0, evicted: 4 });

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
  DETECT_CONFIG,
  ADDR,
  SUBJECT_KEY,
  DETECT_STATE,
  BLOCK,
  LPM_KEY,
  FLOW_READ_HEADER,
  FLOW_RECORD,
  FLOW_READ_CFG,
  FLOW_EVICT,
  FLOW_EVICT_ARGS,
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
  securityEventsSuppressed: 8,
  blockedPackets: 9,
  detectStateFailed: 10,
  blockInsertFailed: 11,
} as const;
export const COUNTER_SLOTS = 12;

/** enum knp_security_type */
export const SECURITY_TYPES = {
  1: 'tcp-null-scan',
  2: 'tcp-xmas-scan',
  3: 'tcp-syn-fin',
  4: 'tcp-syn-rst',
  5: 'tcp-fin-scan',
  6: 'syn-flood',
  7: 'tcp-port-scan',
  8: 'udp-port-scan',
  9: 'icmp-flood',
  10: 'ping-sweep',
  11: 'land',
  12: 'martian-source',
  13: 'blocked',
} as const satisfies Record<number, string>;
export type KernelSecurityType = (typeof SECURITY_TYPES)[keyof typeof SECURITY_TYPES];
/** enum knp_security_type by name. */
export const SECURITY_TYPE_NUMBER = Object.fromEntries(Object.entries(SECURITY_TYPES).map(([n, t]) => [t, Number(n)])) as Record<KernelSecurityType, number>;

/** enum knp_severity */
export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

