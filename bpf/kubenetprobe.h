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
	KNP_CNT_MAX = 8,
};

enum knp_security_type {
	KNP_SEC_TCP_NULL = 1,    /* no TCP flags at all: NULL scan */
	KNP_SEC_TCP_XMAS = 2,    /* FIN+PSH+URG: XMAS scan */
	KNP_SEC_TCP_SYN_FIN = 3, /* SYN+FIN: never valid */
	KNP_SEC_TCP_SYN_RST = 4, /* SYN+RST: never valid */
};

enum knp_severity {
	KNP_SEV_INFO = 0,
	KNP_SEV_LOW = 1,
	KNP_SEV_MEDIUM = 2,
	KNP_SEV_HIGH = 3,
	KNP_SEV_CRITICAL = 4,
};

/*
 * One flow: a 5-tuple seen on one interface in one direction.
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
};

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
	struct knp_flow_key key;   /* attacker = saddr/sport, target = daddr/dport */
	__u32 type;                /* enum knp_security_type */
	__u32 severity;            /* enum knp_severity */
	__u32 cpu;                 /* CPU whose sequence `seq` belongs to */
	__u32 count;               /* observations that crossed the threshold */
	__u32 window_ms;           /* window the count was taken over; 0 = single packet */
	__u8 tcp_flags;
	__u8 hook;                 /* enum knp_hook */
	__u8 _pad[2];
	char description[KNP_DESCRIPTION_LEN]; /* NUL-terminated */
	__u32 _pad2;
};                                 /* 152 bytes */

#endif /* KUBENETPROBE_H */
