/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Security detectors and blocking, included by monitor.bpf.c after its
 * parser and flow accounting (it uses struct parsed, count_global() and
 * cpu_state()).
 *
 * Cost: what runs on every frame is a few compares on the parsed headers.
 * State is touched only by frames that can matter: SYNs, probes without
 * ACK, echo requests, the first ACK of a connection, and the first frame of
 * a flow (a scan or sweep opens a new flow with every probe, so the scan
 * detectors ride on the flow table's miss path).
 *
 * One packet counts once per node: handle_skb() passes only a frame's first
 * sighting here (a frame forwarded between two watched interfaces passes TC
 * ingress on the first and TC egress on the second; only the first counts).
 */
#ifndef KNP_DETECT_BPF_H
#define KNP_DETECT_BPF_H

#define NSEC_PER_SEC 1000000000ull
#define NSEC_PER_MSEC 1000000ull

/* Thresholds and modes (see kubenetprobe.h). In .data, not .rodata: user
 * space changes them at run time. */
struct knp_detect_config knp_detect_cfg = {
	.window_ns = NSEC_PER_SEC,
	.event_interval_ns = NSEC_PER_SEC,
	.block_ttl_ns = 300 * NSEC_PER_SEC,
	.enabled = KNP_SEC_ALL_DETECTORS,
	.enforce = 0,
	.check_blocks = 0,
	.max_events_per_sec = 1000,
	.syn_flood_syns = 1000,
	.syn_flood_half_open_pct = 80,
	.port_scan_ports = 20,
	.udp_scan_ports = 20,
	.icmp_flood_packets = 1000,
	.ping_sweep_hosts = 10,
};

/* LRU on purpose: an attacker who sends from random sources must not be
 * able to fill the table and blind the detectors to the next real scan.
 * What the LRU pushes out is the oldest state, whose window has passed. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct knp_subject_key);
	__type(value, struct knp_detect_state);
} knp_detect_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct knp_subject_key);
	__type(value, struct knp_limit_state);
} knp_event_limits SEC(".maps");

/* Not LRU: a block must never vanish silently; a full table is counted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct knp_addr);
	__type(value, struct knp_block);
} knp_blocks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct knp_lpm_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} knp_allowlist SEC(".maps");

struct knp_detect_state *knp_abi_detect_state __attribute__((unused));
struct knp_block *knp_abi_block __attribute__((unused));

/* Descriptions live in .rodata so each event copies a fixed 64 bytes. */
static const char desc_tcp_null[KNP_DESCRIPTION_LEN] = "TCP packet with no flags set (NULL scan)";
static const char desc_tcp_xmas[KNP_DESCRIPTION_LEN] = "TCP packet with FIN+PSH+URG set (XMAS scan)";
static const char desc_tcp_syn_fin[KNP_DESCRIPTION_LEN] = "TCP packet with SYN+FIN set";
static const char desc_tcp_syn_rst[KNP_DESCRIPTION_LEN] = "TCP packet with SYN+RST set";
static const char desc_tcp_fin_no_ack[KNP_DESCRIPTION_LEN] = "TCP FIN without ACK (FIN scan)";
static const char desc_syn_flood[KNP_DESCRIPTION_LEN] = "SYN flood: many SYNs, few completed handshakes";
static const char desc_tcp_port_scan[KNP_DESCRIPTION_LEN] = "TCP port scan: many distinct ports probed";
static const char desc_udp_port_scan[KNP_DESCRIPTION_LEN] = "UDP port scan: many distinct ports probed";
static const char desc_icmp_flood[KNP_DESCRIPTION_LEN] = "ICMP flood: many echo requests to one host";
static const char desc_ping_sweep[KNP_DESCRIPTION_LEN] = "Ping sweep: echo requests to many hosts";
static const char desc_land[KNP_DESCRIPTION_LEN] = "Land packet: source address equals destination";
static const char desc_martian[KNP_DESCRIPTION_LEN] = "Martian source address";
static const char desc_blocked[KNP_DESCRIPTION_LEN] = "Source blocked (enforce mode)";

static __always_inline const char *description_of(__u32 type)
{
	switch (type) {
	case KNP_SEC_TCP_NULL: return desc_tcp_null;
	case KNP_SEC_TCP_XMAS: return desc_tcp_xmas;
	case KNP_SEC_TCP_SYN_FIN: return desc_tcp_syn_fin;
	case KNP_SEC_TCP_SYN_RST: return desc_tcp_syn_rst;
	case KNP_SEC_TCP_FIN_NO_ACK: return desc_tcp_fin_no_ack;
	case KNP_SEC_SYN_FLOOD: return desc_syn_flood;
	case KNP_SEC_TCP_PORT_SCAN: return desc_tcp_port_scan;
	case KNP_SEC_UDP_PORT_SCAN: return desc_udp_port_scan;
	case KNP_SEC_ICMP_FLOOD: return desc_icmp_flood;
	case KNP_SEC_PING_SWEEP: return desc_ping_sweep;
	case KNP_SEC_LAND: return desc_land;
	case KNP_SEC_MARTIAN: return desc_martian;
	default: return desc_blocked;
	}
}

static __always_inline int detector_on(__u32 type)
{
	return knp_detect_cfg.enabled & (1u << type);
}

static __always_inline __u32 window_ms(void)
{
	return knp_detect_cfg.window_ns / NSEC_PER_MSEC;
}

/*
 * Sends one event, within two rate limits: per subject and type (one event
 * per event_interval_ns, the rest counted in the next event's `suppressed`),
 * and per CPU over everything (max_events_per_sec, so random sources cannot
 * flood the ring either). Both count what they hold back.
 */
static __always_inline void report(struct parsed *p, __u8 hook, const __u32 *subject, __u32 type, __u32 severity,
				   __u32 count, __u32 threshold, __u32 win_ms, __u8 flags, __u64 now)
{
	struct knp_subject_key k = { .type = type };
	struct knp_limit_state *l;
	struct knp_security_event *e;
	struct knp_cpu_state *st;
	__u32 suppressed = 0;
	__u64 seq;

	st = cpu_state();
	if (!st)
		return;
	if (now - st->ev_second_ns >= NSEC_PER_SEC) {
		st->ev_second_ns = now;
		st->ev_in_second = 0;
	}
	if (st->ev_in_second >= knp_detect_cfg.max_events_per_sec) {
		count_global(KNP_CNT_SEC_EVENTS_SUPPRESSED);
		return;
	}
	__builtin_memcpy(k.addr.addr, subject, sizeof(k.addr.addr));
	l = bpf_map_lookup_elem(&knp_event_limits, &k);
	if (l) {
		if (now - l->last_event_ns < knp_detect_cfg.event_interval_ns) {
			__sync_fetch_and_add(&l->suppressed, 1);
			count_global(KNP_CNT_SEC_EVENTS_SUPPRESSED);
			return;
		}
		suppressed = l->suppressed;
		l->suppressed = 0;
		l->last_event_ns = now;
	} else {
		struct knp_limit_state fresh = { .last_event_ns = now };

		if (bpf_map_update_elem(&knp_event_limits, &k, &fresh, BPF_NOEXIST)) {
			/* Another CPU sent this subject's event a moment ago. */
			if (bpf_map_lookup_elem(&knp_event_limits, &k)) {
				count_global(KNP_CNT_SEC_EVENTS_SUPPRESSED);
				return;
			}
			count_global(KNP_CNT_DETECT_STATE_FAILED);
		}
	}
	st->ev_in_second++;

	/* Take the sequence number before reserving, so a full ring shows up
	 * in user space as a gap as well as in the drop counter. */
	seq = ++st->sec_seq;
	e = bpf_ringbuf_reserve(&knp_security_events, sizeof(*e), 0);
	if (!e) {
		count_global(KNP_CNT_SEC_EVENTS_DROPPED);
		return;
	}
	e->timestamp_ns = bpf_ktime_get_ns();
	e->seq = seq;
	e->key = p->key;
	e->type = type;
	e->severity = severity;
	e->cpu = bpf_get_smp_processor_id();
	e->count = count;
	e->threshold = threshold;
	e->window_ms = win_ms;
	e->suppressed = suppressed;
	e->tcp_flags = flags;
	e->hook = hook;
	e->_pad[0] = 0;
	e->_pad[1] = 0;
	e->_pad2 = 0;
	__builtin_memcpy(e->description, description_of(type), KNP_DESCRIPTION_LEN);
	bpf_ringbuf_submit(e, 0);
	count_global(KNP_CNT_SEC_EVENTS_SENT);
}

/* Enforce mode: drop the packet's source from now on for block_ttl_ns,
 * unless the allowlist covers it. Once per source: a source already blocked
 * keeps its block. */
static __always_inline void block_source(struct parsed *p, __u8 hook, __u32 type, __u64 now)
{
	struct knp_lpm_key lk = { .prefixlen = 128 };
	struct knp_block b = { .created_ns = now, .type = type };
	struct knp_addr a;
	long err;

	if (!(knp_detect_cfg.enforce & (1u << type)))
		return;
	__builtin_memcpy(lk.addr, p->key.saddr, sizeof(lk.addr));
	if (bpf_map_lookup_elem(&knp_allowlist, &lk))
		return;
	__builtin_memcpy(a.addr, p->key.saddr, sizeof(a.addr));
	if (knp_detect_cfg.block_ttl_ns)
		b.expires_ns = now + knp_detect_cfg.block_ttl_ns;
	err = bpf_map_update_elem(&knp_blocks, &a, &b, BPF_NOEXIST);
	if (err == -17 /* EEXIST */)
		return;
	if (err) {
		count_global(KNP_CNT_BLOCK_INSERT_FAILED);
		return;
	}
	report(p, hook, p->key.saddr, KNP_SEC_BLOCKED, KNP_SEV_HIGH, knp_detect_cfg.block_ttl_ns / NSEC_PER_SEC, 0, 0,
	       p->tcp_flags, now);
}

/* A detection: the event (rate-limited) and, in enforce mode, the block. */
static __always_inline void flag(struct parsed *p, __u8 hook, const __u32 *subject, __u32 type, __u32 severity,
				 __u32 count, __u32 threshold, __u32 win_ms, __u8 flags, __u64 now)
{
	report(p, hook, subject, type, severity, count, threshold, win_ms, flags, now);
	block_source(p, hook, type, now);
}

/* A subject's state in the current window (started afresh once the last
 * one has passed); NULL only if it cannot be stored (counted). */
static __always_inline struct knp_detect_state *state_of(const __u32 *subject, __u32 type, __u64 now)
{
	struct knp_subject_key k = { .type = type };
	struct knp_detect_state *st;

	__builtin_memcpy(k.addr.addr, subject, sizeof(k.addr.addr));
	st = bpf_map_lookup_elem(&knp_detect_state, &k);
	if (!st) {
		struct knp_detect_state fresh = { .window_start_ns = now };

		bpf_map_update_elem(&knp_detect_state, &k, &fresh, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&knp_detect_state, &k);
		if (!st)
			count_global(KNP_CNT_DETECT_STATE_FAILED);
		return st;
	}
	if (now - st->window_start_ns > knp_detect_cfg.window_ns) {
		/* Racing CPUs may both reset: a few observations lost at a window
		 * edge, never a false count. */
		st->window_start_ns = now;
		st->count = 0;
		st->distinct = 0;
		st->completed = 0;
		st->tcp_flags = 0;
		__builtin_memset(st->seen, 0, sizeof(st->seen));
	}
	return st;
}

/* Marks `value` (a port or a hashed address) seen; returns the distinct
 * count so far. A 512-bit hashed set: exact up to a few collisions, which
 * only ever make the count lower. */
static __always_inline __u32 mark_seen(struct knp_detect_state *st, __u32 value)
{
	__u32 h = (value * 2654435761u) >> 23; /* 0 .. 511 */
	__u32 word = h >> 6;
	__u64 bit = 1ull << (h & 63);

	if (word >= KNP_DISTINCT_BITS / 64)
		return st->distinct;
	if (st->seen[word] & bit)
		return st->distinct;
	st->seen[word] |= bit;
	return ++st->distinct;
}

/* A source that no real host sends from: loopback, multicast, reserved
 * (240/4, which holds the limited broadcast), "this network" (0/8, except
 * DHCP's 0.0.0.0 to 255.255.255.255). IPv6: ::1, multicast, and IPv4-mapped
 * addresses on the wire. */
static __always_inline int martian_source(struct parsed *p)
{
	__u32 s, d;

	if (p->key.family == KNP_FAMILY_IPV4) {
		s = bpf_ntohl(p->key.saddr[3]);
		d = bpf_ntohl(p->key.daddr[3]);
		if ((s >> 24) == 127 || (s >> 28) == 0xe || (s >> 28) == 0xf)
			return 1;
		if ((s >> 24) == 0)
			return !(s == 0 && d == 0xffffffff && p->key.proto == IPPROTO_UDP);
		return 0;
	}
	if ((bpf_ntohl(p->key.saddr[0]) >> 24) == 0xff)
		return 1;
	if (p->key.saddr[0] == 0 && p->key.saddr[1] == 0) {
		if (p->key.saddr[2] == 0 && p->key.saddr[3] == bpf_htonl(1))
			return 1;
		if (p->key.saddr[2] == bpf_htonl(0x0000ffff))
			return 1;
	}
	return 0;
}

static __always_inline int same_address(struct parsed *p)
{
	return p->key.saddr[0] == p->key.daddr[0] && p->key.saddr[1] == p->key.daddr[1] &&
	       p->key.saddr[2] == p->key.daddr[2] && p->key.saddr[3] == p->key.daddr[3];
}

/* UDP: a reply belongs to a flow the other way on this interface. Replies
 * from a server to many clients' ports are not a scan. */
static __always_inline int udp_reply(struct parsed *p)
{
	struct knp_flow_key r = p->key;

	__builtin_memcpy(r.saddr, p->key.daddr, sizeof(r.saddr));
	__builtin_memcpy(r.daddr, p->key.saddr, sizeof(r.daddr));
	r.sport = p->key.dport;
	r.dport = p->key.sport;
	r.direction = !p->key.direction;
	return bpf_map_lookup_elem(&knp_flows, &r) != NULL;
}

static __always_inline int echo_request(struct parsed *p)
{
	return (p->key.proto == IPPROTO_ICMP && p->key.dport == (ICMP_ECHO << 8)) ||
	       (p->key.proto == IPPROTO_ICMPV6 && p->key.dport == (ICMPV6_ECHO_REQUEST << 8));
}

static __always_inline void detect_tcp(struct parsed *p, __u8 hook, int acct)
{
	struct knp_detect_state *st;
	__u8 f = p->tcp_flags;
	__u32 type = 0, severity = KNP_SEV_MEDIUM;
	__u64 now;

	/* The common case first: an ACK segment without SYN or FIN. It matters
	 * only as the handshake's last step, for the SYN flood's half-open share. */
	if ((f & TCP_ACK) && !(f & (TCP_SYN | TCP_FIN))) {
		if (!(acct & KNP_ACCT_FIRST_ACK) || !detector_on(KNP_SEC_SYN_FLOOD))
			return;
		struct knp_subject_key k = { .type = KNP_SEC_SYN_FLOOD };

		__builtin_memcpy(k.addr.addr, p->key.daddr, sizeof(k.addr.addr));
		st = bpf_map_lookup_elem(&knp_detect_state, &k);
		if (st)
			__sync_fetch_and_add(&st->completed, 1);
		return;
	}
	/* Flags no real stack sends: each probe is its own (rate-limited) event. */
	if (!(f & (TCP_FIN | TCP_SYN | TCP_RST | TCP_PSH | TCP_ACK | TCP_URG))) {
		type = KNP_SEC_TCP_NULL;
	} else if ((f & (TCP_FIN | TCP_PSH | TCP_URG)) == (TCP_FIN | TCP_PSH | TCP_URG)) {
		type = KNP_SEC_TCP_XMAS;
	} else if ((f & (TCP_SYN | TCP_FIN)) == (TCP_SYN | TCP_FIN)) {
		type = KNP_SEC_TCP_SYN_FIN;
		severity = KNP_SEV_HIGH;
	} else if ((f & (TCP_SYN | TCP_RST)) == (TCP_SYN | TCP_RST)) {
		type = KNP_SEC_TCP_SYN_RST;
		severity = KNP_SEV_HIGH;
	} else if ((f & (TCP_FIN | TCP_ACK)) == TCP_FIN) {
		type = KNP_SEC_TCP_FIN_NO_ACK;
	}
	/* Probes: segments without ACK or RST (SYN, NULL, FIN, XMAS) open a
	 * connection or test a port. A SYN-ACK, FIN-ACK or RST with ordinary
	 * flags has nothing left to tell: done before the clock. */
	if (type && !detector_on(type))
		type = 0;
	if (!type && (f & (TCP_ACK | TCP_RST)))
		return;
	now = bpf_ktime_get_coarse_ns();
	if (type)
		flag(p, hook, p->key.saddr, type, severity, 1, 1, 0, f, now);
	if (f & (TCP_ACK | TCP_RST))
		return;
	if ((f & (TCP_SYN | TCP_FIN)) == TCP_SYN && detector_on(KNP_SEC_SYN_FLOOD)) {
		st = state_of(p->key.daddr, KNP_SEC_SYN_FLOOD, now);
		if (st) {
			__u32 n = __sync_fetch_and_add(&st->count, 1) + 1;
			__u32 done = st->completed;

			if (n >= knp_detect_cfg.syn_flood_syns &&
			    (n > done ? (n - done) * 100 / n : 0) >= knp_detect_cfg.syn_flood_half_open_pct)
				flag(p, hook, p->key.daddr, KNP_SEC_SYN_FLOOD, KNP_SEV_HIGH, n, knp_detect_cfg.syn_flood_syns,
				     window_ms(), f, now);
		}
	}
	/* Every probe of a scan is a new 5-tuple: count ports on new flows only. */
	if ((acct & KNP_ACCT_NEW_FLOW) && detector_on(KNP_SEC_TCP_PORT_SCAN)) {
		st = state_of(p->key.saddr, KNP_SEC_TCP_PORT_SCAN, now);
		if (st) {
			__u32 n = mark_seen(st, p->key.dport);

			/* Written only when it changes: every SYN from a busy client
			 * lands here, from every CPU, and a store would bounce the line. */
			if ((st->tcp_flags & f) != f)
				st->tcp_flags |= f;
			if (n >= knp_detect_cfg.port_scan_ports)
				flag(p, hook, p->key.saddr, KNP_SEC_TCP_PORT_SCAN, KNP_SEV_HIGH, n, knp_detect_cfg.port_scan_ports,
				     window_ms(), st->tcp_flags, now);
		}
	}
}

/*
 * Runs after the frame is accounted. `acct` is account_flow()'s KNP_ACCT_*.
 */
static __always_inline void detect(struct parsed *p, __u8 hook, int acct)
{
	struct knp_detect_state *st;
	__u64 now;

	if (p->is_tcp) {
		detect_tcp(p, hook, acct);
	} else if (echo_request(p)) {
		now = bpf_ktime_get_coarse_ns();
		if (detector_on(KNP_SEC_ICMP_FLOOD)) {
			st = state_of(p->key.daddr, KNP_SEC_ICMP_FLOOD, now);
			if (st) {
				__u32 n = __sync_fetch_and_add(&st->count, 1) + 1;

				if (n >= knp_detect_cfg.icmp_flood_packets)
					flag(p, hook, p->key.daddr, KNP_SEC_ICMP_FLOOD, KNP_SEV_HIGH, n,
					     knp_detect_cfg.icmp_flood_packets, window_ms(), 0, now);
			}
		}
		/* Each host pinged is a new flow. */
		if ((acct & KNP_ACCT_NEW_FLOW) && detector_on(KNP_SEC_PING_SWEEP)) {
			st = state_of(p->key.saddr, KNP_SEC_PING_SWEEP, now);
			if (st) {
				__u32 n = mark_seen(st, p->key.daddr[0] ^ p->key.daddr[1] ^ p->key.daddr[2] ^ p->key.daddr[3]);

				if (n >= knp_detect_cfg.ping_sweep_hosts)
					flag(p, hook, p->key.saddr, KNP_SEC_PING_SWEEP, KNP_SEV_MEDIUM, n,
					     knp_detect_cfg.ping_sweep_hosts, window_ms(), 0, now);
			}
		}
	} else if (p->key.proto == IPPROTO_UDP && (acct & KNP_ACCT_NEW_FLOW) && detector_on(KNP_SEC_UDP_PORT_SCAN)) {
		if (udp_reply(p))
			return;
		now = bpf_ktime_get_coarse_ns();
		st = state_of(p->key.saddr, KNP_SEC_UDP_PORT_SCAN, now);
		if (st) {
			__u32 n = mark_seen(st, p->key.dport);

			if (n >= knp_detect_cfg.udp_scan_ports)
				flag(p, hook, p->key.saddr, KNP_SEC_UDP_PORT_SCAN, KNP_SEV_HIGH, n, knp_detect_cfg.udp_scan_ports,
				     window_ms(), 0, now);
		}
	}

	/* Address checks, once per flow. */
	if (!(acct & KNP_ACCT_NEW_FLOW))
		return;
	if (same_address(p) && detector_on(KNP_SEC_LAND))
		flag(p, hook, p->key.saddr, KNP_SEC_LAND, KNP_SEV_HIGH, 1, 1, 0, p->tcp_flags, bpf_ktime_get_coarse_ns());
	if (p->key.direction == KNP_DIR_INGRESS && detector_on(KNP_SEC_MARTIAN) && martian_source(p)) {
		if (iface_flags(p->key.ifindex) & KNP_IFACE_MARTIANS)
			flag(p, hook, p->key.saddr, KNP_SEC_MARTIAN, KNP_SEV_MEDIUM, 1, 1, 0, p->tcp_flags,
			     bpf_ktime_get_coarse_ns());
	}
}

/* Enforce mode (or blocks set by hand): is the frame's source blocked? */
static __always_inline int blocked(struct parsed *p)
{
	struct knp_block *b;
	struct knp_addr a;

	if (!knp_detect_cfg.check_blocks)
		return 0;
	__builtin_memcpy(a.addr, p->key.saddr, sizeof(a.addr));
	b = bpf_map_lookup_elem(&knp_blocks, &a);
	if (!b)
		return 0;
	/* An expired block lets frames pass; user space removes it and
	 * reports the expiry. */
	if (b->expires_ns && bpf_ktime_get_coarse_ns() >= b->expires_ns)
		return 0;
	__sync_fetch_and_add(&b->packets, 1);
	count_global(KNP_CNT_BLOCKED_PACKETS);
	return 1;
}

#endif /* KNP_DETECT_BPF_H */
