/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The only ABI between the kernel programs and user space.
 *
 * Every struct here is read by the TypeScript decoders in src/abi/. They are
 * checked against this file's layout (taken from the object's BTF) by
 * src/abi/layout.test.ts, so a change here that is not mirrored there fails
 * the tests instead of silently misreading memory.
 *
 * Rules: fixed-width types only, explicit padding, no bitfields, natural
 * alignment. Addresses are 128-bit so that IPv4 and IPv6 share one key: IPv4
 * is stored IPv4-mapped (::ffff:a.b.c.d) and `family` says which it is.
 */
#ifndef KUBENETPROBE_H
#define KUBENETPROBE_H

#include <linux/types.h>

enum knp_family {
	KNP_FAMILY_IPV4 = 4,
	KNP_FAMILY_IPV6 = 6,
};

enum knp_direction {
	KNP_DIR_INGRESS = 0,
	KNP_DIR_EGRESS = 1,
};

/* Where a packet was seen. Counters are kept per interface and hook. */
enum knp_hook {
	KNP_HOOK_TC_INGRESS = 0,
	KNP_HOOK_TC_EGRESS = 1,
	KNP_HOOK_XDP = 2,
};

/* What the parser made of a frame. Exactly one outcome per frame. */
enum knp_outcome {
	KNP_OUTCOME_PARSED = 0,    /* IPv4/IPv6 headers valid; accounted to a flow */
	KNP_OUTCOME_NON_IP = 1,    /* valid Ethernet, not IP (ARP, LLDP, ...) */
	KNP_OUTCOME_TRUNCATED = 2, /* shorter than its headers say */
	KNP_OUTCOME_MALFORMED = 3, /* a header field is impossible */
	KNP_OUTCOME_MAX = 4,
};

/* Global per-CPU counters: index into knp_global_counters.c[]. */
enum knp_counter {
	KNP_CNT_FLOW_INSERTED = 0,       /* new flow entries created */
	KNP_CNT_FLOW_INSERT_FAILED = 1,  /* flow table full: update not recorded */
	KNP_CNT_PKT_EVENTS_SENT = 2,
	KNP_CNT_PKT_EVENTS_DROPPED = 3,  /* packet ring full */
	KNP_CNT_SEC_EVENTS_SENT = 4,
	KNP_CNT_SEC_EVENTS_DROPPED = 5,  /* security ring full */
	KNP_CNT_IFACE_TABLE_FULL = 6,    /* per-interface counter table full */
	KNP_CNT_HEADERS_PULLED = 7,      /* TC frames whose headers had to be pulled into the linear area */
	KNP_CNT_SEC_EVENTS_SUPPRESSED = 8, /* held back by a rate limit (per subject and type, or per CPU) */
	KNP_CNT_BLOCKED_PACKETS = 9,     /* dropped because their source is blocked (enforce mode) */
	KNP_CNT_DETECT_STATE_FAILED = 10, /* detector or limiter state that could not be stored */
	KNP_CNT_BLOCK_INSERT_FAILED = 11, /* a block that could not be stored (table full) */
	KNP_CNT_MAX = 12,
};

/*
 * What a security event reports. The bit (1 << type) turns a detector on in
 * knp_detect_config.enabled, and blocking for it in .enforce.
 * "Subject" is what the detector's state and the rate limit are kept per.
 */
enum knp_security_type {
	KNP_SEC_TCP_NULL = 1,       /* no TCP flags at all: NULL scan probe; per packet, subject: source */
	KNP_SEC_TCP_XMAS = 2,       /* FIN+PSH+URG: XMAS scan probe */
	KNP_SEC_TCP_SYN_FIN = 3,    /* SYN+FIN: never valid */
	KNP_SEC_TCP_SYN_RST = 4,    /* SYN+RST: never valid */
	KNP_SEC_TCP_FIN_NO_ACK = 5, /* FIN without ACK: FIN scan probe */
	KNP_SEC_SYN_FLOOD = 6,      /* SYNs to one destination over a window, mostly never completed; subject: destination */
	KNP_SEC_TCP_PORT_SCAN = 7,  /* distinct TCP ports probed by one source over a window; subject: source */
	KNP_SEC_UDP_PORT_SCAN = 8,  /* distinct UDP ports probed by one source over a window */
	KNP_SEC_ICMP_FLOOD = 9,     /* echo requests to one destination over a window; subject: destination */
	KNP_SEC_PING_SWEEP = 10,    /* distinct destinations pinged by one source over a window */
	KNP_SEC_LAND = 11,          /* source address equals destination address */
	KNP_SEC_MARTIAN = 12,       /* a source address that cannot be real (on interfaces flagged for it) */
	KNP_SEC_BLOCKED = 13,       /* enforce mode: the source is now dropped (count: its TTL in s) */
	KNP_SEC_TYPE_MAX = 14,
};

/* Detectors on by default: all of them. */
#define KNP_SEC_ALL_DETECTORS (((1u << KNP_SEC_TYPE_MAX) - 1) & ~(1u << 0) & ~(1u << KNP_SEC_BLOCKED))

enum knp_severity {
	KNP_SEV_INFO = 0,
	KNP_SEV_LOW = 1,
	KNP_SEV_MEDIUM = 2,
	KNP_SEV_HIGH = 3,
	KNP_SEV_CRITICAL = 4,
};

/*
 * One flow: a 5-tuple in one direction, with the interface and hook where
 * this node first watched its packets. A packet is counted to one flow per
 * node: a frame forwarded from one watched interface to another is counted
 * at the TC ingress it came in through, not again at the TC egress it
 * leaves by (see first_sighting() in monitor.bpf.c).
 * For ICMP and ICMPv6, dport holds type << 8 | code (as NetFlow v9/IPFIX
 * exporters do) and sport the echo identifier for echo request/reply.
 */
struct knp_flow_key {
	__u32 saddr[4];    /* network byte order */
	__u32 daddr[4];    /* network byte order */
	__u16 sport;       /* host byte order */
	__u16 dport;       /* host byte order */
	__u32 ifindex;
	__u8 proto;        /* IPPROTO_* */
	__u8 family;       /* enum knp_family */
	__u8 direction;    /* enum knp_direction */
	__u8 _pad;         /* must be zero: it is hashed */
};                         /* 44 bytes */

/* Per CPU: user space sums packets, bytes and counts, ORs the flags, and
 * takes the earliest first_seen (of copies with packets) and latest last_seen.
 *
 * last_seen is in jiffies: bpf_jiffies64() costs about a nanosecond where a
 * clock read costs about five, on every packet. User space turns jiffies
 * into CLOCK_MONOTONIC with the anchor pair in knp_cpu_state and the tick
 * length (clock_getres(CLOCK_MONOTONIC_COARSE)); both clocks move with the
 * same tick, so the result is as exact as the coarse clock was. */
struct knp_flow_value {
	__u64 packets;
	__u64 bytes;             /* IP header + payload (IPFIX octetDeltaCount) */
	__u64 first_seen_ns;     /* CLOCK_MONOTONIC (coarse); 0 = none on this CPU */
	__u64 last_seen_jiffies; /* jiffies of the last packet on this CPU */
	__u32 syn_count;
	__u32 fin_count;
	__u32 rst_count;
	__u32 tcp_flags;         /* OR of every TCP flags byte seen, plus KNP_TCP_* bits */
};                               /* 48 bytes */

/*
 * Flow table reads (the knp_flow_read iterator in flow-read.bpf.h): a read
 * writes one header, then one record for each flow whose last packet is at
 * or after knp_flow_read_cfg.since_jiffies, with its per-CPU copies summed
 * by the rules above. Reading only what changed, summed in the kernel, is
 * what keeps a large table cheap to read every second on many CPUs.
 */
struct knp_flow_read_cfg {
	__u64 since_jiffies;       /* 0: every flow */
};

struct knp_flow_read_header {
	__u64 now_jiffies;         /* when the read started: the next read's since, less a margin */
	__u32 cpus;                /* per-CPU copies summed per flow */
	__u32 record_size;         /* sizeof(struct knp_flow_record) */
};                                 /* 16 bytes */

struct knp_flow_record {
	struct knp_flow_key key;
	__u32 _pad;
	struct knp_flow_value value; /* summed over CPUs */
};                                 /* 96 bytes */

/*
 * Evicting flows (the knp_flow_evict program in flow-evict.bpf.h): user
 * space writes the keys of the flows it found idle into knp_flow_evict_batch
 * (memory-mapped), runs the program once with count in its context, and
 * reads back each flow's final figures, summed over CPUs, taken just before
 * it left the table. One system call for a batch of flows, where a
 * lookup-and-delete per flow was one each.
 */
struct knp_flow_evict {
	struct knp_flow_key key;   /* in: the flow */
	__u32 found;               /* out: 1 removed (value holds its final figures), 0 already gone */
	struct knp_flow_value value; /* out: summed over CPUs */
};                                 /* 96 bytes */

struct knp_flow_evict_args {
	__u32 count;               /* in: entries 0 .. count - 1 of the batch */
	__u32 evicted;             /* out: how many were found and removed */
};

/* In knp_flow_value.tcp_flags, above the flags byte: a SYN without ACK was
 * seen, so this direction opened the connection (the client's side). */
#define KNP_TCP_OPENED (1u << 8)

struct knp_iface_key {
	__u32 ifindex;
	__u32 hook;          /* enum knp_hook */
};

/* Per-CPU; bytes are whole frames as the hook saw them (L2 included). */
struct knp_iface_counters {
	__u64 packets[KNP_OUTCOME_MAX];
	__u64 bytes[KNP_OUTCOME_MAX];
};                           /* 64 bytes */

/*
 * Per-interface counters live in a per-CPU array indexed by
 * (ifindex % KNP_IFACE_SLOTS) * KNP_HOOK_MAX + hook: an array lookup costs a
 * few instructions where a hash lookup costs ~15 ns. Each slot records the
 * ifindex that owns it (per CPU); a frame whose slot belongs to another
 * ifindex goes to the knp_iface_stats hash instead. User space sums both.
 */
#define KNP_IFACE_SLOTS 1024
#define KNP_HOOK_MAX 4

struct knp_iface_slot {
	__u32 ifindex;       /* owner; 0 = free */
	__u32 hook;          /* enum knp_hook */
	struct knp_iface_counters c;
};                           /* 72 bytes */

struct knp_global_counters {
	__u64 c[KNP_CNT_MAX];
};                           /* 64 bytes */

/* Per-CPU state. */
struct knp_cpu_state {
	__u64 sample_tick;    /* packets since the last sampled packet event */
	__u64 sec_seq;        /* last security event sequence number on this CPU */
	__u64 anchor_ns;      /* coarse CLOCK_MONOTONIC and jiffies, read together */
	__u64 anchor_jiffies; /* at the last flow insert on this CPU (see above) */
	__u64 ev_second_ns;   /* start of the current second of the per-CPU event cap */
	__u64 ev_in_second;   /* security events sent in it */
};

/*
 * Detector thresholds and modes: a global in .data, so the loader sets it
 * before load (a knob) and user space rewrites it at run time (the .data
 * map is an ordinary array). Windows are tumbling, from a subject's first
 * observation.
 */
struct knp_detect_config {
	__u64 window_ns;             /* detector window */
	__u64 event_interval_ns;     /* at most one event per subject and type per interval */
	__u64 block_ttl_ns;          /* enforce: how long a flagged source is dropped */
	__u32 enabled;               /* bit (1 << type) per detector */
	__u32 enforce;               /* bit (1 << type): sources these flag are blocked */
	__u32 check_blocks;          /* 1: every frame's source is looked up in knp_blocks */
	__u32 max_events_per_sec;    /* per CPU, all types; beyond it events are suppressed */
	__u32 syn_flood_syns;        /* SYNs to one destination per window, */
	__u32 syn_flood_half_open_pct; /* of which at least this share never completed */
	__u32 port_scan_ports;       /* distinct TCP ports one source probes per window */
	__u32 udp_scan_ports;        /* distinct UDP ports one source probes per window */
	__u32 icmp_flood_packets;    /* echo requests to one destination per window */
	__u32 ping_sweep_hosts;      /* distinct destinations one source pings per window */
};                               /* 64 bytes */

/* An address alone: the subject of blocks and of detector state. */
struct knp_addr {
	__u32 addr[4];               /* network byte order, IPv4-mapped for IPv4 */
};

/* Detector state and the event rate limit are kept per subject and type. */
struct knp_subject_key {
	struct knp_addr addr;
	__u32 type;                  /* enum knp_security_type */
};                               /* 20 bytes */

#define KNP_DISTINCT_BITS 512

struct knp_detect_state {
	__u64 window_start_ns;       /* coarse CLOCK_MONOTONIC */
	__u32 count;                 /* observations in the window (SYNs, probes, echo requests) */
	__u32 distinct;              /* distinct ports or hosts in the window (bits set below) */
	__u32 completed;             /* SYN flood: handshakes completed in the window */
	__u32 tcp_flags;             /* OR of the probes' TCP flags */
	__u64 seen[KNP_DISTINCT_BITS / 64]; /* hashed ports or hosts */
};                               /* 88 bytes */

struct knp_limit_state {
	__u64 last_event_ns;         /* coarse CLOCK_MONOTONIC */
	__u32 suppressed;            /* events held back since the last one sent */
	__u32 _pad;
};

/* A blocked source (knp_blocks value). The kernel inserts blocks in enforce
 * mode; user space lists, expires and lifts them. */
struct knp_block {
	__u64 created_ns;            /* coarse CLOCK_MONOTONIC */
	__u64 expires_ns;            /* frames pass again from here on; 0 = never expires */
	__u64 packets;               /* frames dropped */
	__u32 type;                  /* the detector that flagged it; 0 = set by hand */
	__u32 _pad;
};                               /* 32 bytes */

/* The allowlist (never blocked): an LPM trie over IPv4-mapped addresses. */
struct knp_lpm_key {
	__u32 prefixlen;             /* of the 128-bit address */
	__u32 addr[4];
};

/* Interfaces numbered below this have their flags in an array slot (knp_iface_flag_slots). */
#define KNP_IFACE_FLAG_SLOTS 65536

/* knp_iface_flags values, per ifindex, set by user space at attach. */
#define KNP_IFACE_TC_INGRESS (1u << 0) /* our TC ingress runs here: TC egress skips frames that came in here */
#define KNP_IFACE_MARTIANS   (1u << 1) /* report martian sources arriving here */

/* A sampled packet, sent on the packet-event ring buffer. */
struct knp_packet_info {
	__u64 timestamp_ns;        /* CLOCK_MONOTONIC */
	struct knp_flow_key key;   /* 44 bytes at offset 8 */
	__u32 packet_len;          /* frame length as the hook saw it */
	__u32 ip_len;              /* IP header + payload */
	__u8 tcp_flags;
	__u8 hook;                 /* enum knp_hook */
	__u8 _pad[2];
};                                 /* 64 bytes */

#define KNP_DESCRIPTION_LEN 64

/* A detection, sent on its own ring buffer so packet events can't crowd it out. */
struct knp_security_event {
	__u64 timestamp_ns;        /* CLOCK_MONOTONIC */
	__u64 seq;                 /* per-CPU, starts at 1, no gaps unless lost */
	struct knp_flow_key key;   /* the packet that crossed the threshold: attacker = saddr/sport, target = daddr/dport */
	__u32 type;                /* enum knp_security_type */
	__u32 severity;            /* enum knp_severity */
	__u32 cpu;                 /* CPU whose sequence `seq` belongs to */
	__u32 count;               /* observations that crossed the threshold (distinct ports or hosts for scans) */
	__u32 threshold;           /* what it crossed; 1 for single-packet detections */
	__u32 window_ms;           /* window the count was taken over; 0 = single packet */
	__u32 suppressed;          /* events of this subject and type held back by the rate limit since the last one */
	__u8 tcp_flags;            /* the packet's; for port scans, the OR of the probes' */
	__u8 hook;                 /* enum knp_hook */
	__u8 _pad[2];
	char description[KNP_DESCRIPTION_LEN]; /* NUL-terminated */
	__u32 _pad2;
};                                 /* 160 bytes */

#endif /* KUBENETPROBE_H */
