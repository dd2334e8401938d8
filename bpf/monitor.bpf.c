// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * KubeNetProbe kernel programs.
 *
 *   tc_ingress / tc_egress  count every frame per interface and hook; at
 *                           the first watched hook a frame passes on this
 *                           node, keep its flow, sample packet events and
 *                           run the security detectors (detect.bpf.h).
 *   xdp_ingress             early ingress counting where XDP is wanted; it
 *                           keeps no flows, so a frame seen by both XDP and
 *                           TC is never accounted twice.
 *   knp_flow_read           user space's read of the flow table: an
 *                           iterator that writes out the flows that changed,
 *                           summed over CPUs (flow-read.bpf.h).
 *   knp_flow_evict          user space's eviction of idle flows: a syscall
 *                           program run on a batch of keys, which sums and
 *                           deletes each flow (flow-evict.bpf.h).
 *
 * The programs never modify traffic, and drop it only in enforce mode, for
 * a blocked source (XDP where attached, else TC). Otherwise TC returns
 * TC_ACT_UNSPEC (TCX "next") and XDP returns XDP_PASS.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmpv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "kubenetprobe.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- Knobs, set by the loader before load (they become verifier constants). */

/* Emit one packet event per N parsed packets per CPU; 0 turns events off. */
const volatile __u32 packet_sample_rate = 0;

/* ---- Maps. Sizes here are defaults; the loader resizes before load. */

struct {
	/* Not LRU: when it is full we want a counted failure, not a silent
	 * eviction of some other flow; user space evicts idle flows.
	 * Per-CPU values: each CPU adds to its own copy with plain stores. The
	 * shared-value variant needs two locked adds per packet, which measured
	 * 12 ns more per packet here; the price is capacity x 48 B per CPU. */
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct knp_flow_key);
	__type(value, struct knp_flow_value);
} knp_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KNP_IFACE_SLOTS * KNP_HOOK_MAX);
	__type(key, __u32);
	__type(value, struct knp_iface_slot);
} knp_iface_slots SEC(".maps");

/* Overflow for interfaces whose array slot another ifindex already owns. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct knp_iface_key);
	__type(value, struct knp_iface_counters);
} knp_iface_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct knp_global_counters);
} knp_global SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct knp_cpu_state);
} knp_cpu_state SEC(".maps");

/* Per watched interface, set by user space at attach: KNP_IFACE_* flags,
 * in the slot of its ifindex where it has one (every TC egress run of a
 * forwarded frame asks, so an array index, not a hash lookup), else in the
 * hash (a node that has made KNP_IFACE_FLAG_SLOTS interfaces numbers new
 * ones above it). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KNP_IFACE_FLAG_SLOTS);
	__type(key, __u32);   /* ifindex */
	__type(value, __u32); /* KNP_IFACE_*, 0: not watched */
} knp_iface_flag_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);   /* ifindex, KNP_IFACE_FLAG_SLOTS or above */
	__type(value, __u32); /* KNP_IFACE_* */
} knp_iface_flags SEC(".maps");

static __always_inline __u32 iface_flags(__u32 ifindex)
{
	__u32 *f;

	if (ifindex < KNP_IFACE_FLAG_SLOTS)
		f = bpf_map_lookup_elem(&knp_iface_flag_slots, &ifindex);
	else
		f = bpf_map_lookup_elem(&knp_iface_flags, &ifindex);
	return f ? *f : 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} knp_packet_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 << 10);
} knp_security_events SEC(".maps");

/* The ABI types that only travel through ring buffers have no map to carry
 * them into BTF; these typed NULL pointers do, so the layout test can read
 * them from the object. They cost nothing at run time. */
struct knp_packet_info *knp_abi_packet_info __attribute__((unused));
struct knp_security_event *knp_abi_security_event __attribute__((unused));
struct knp_cpu_state *knp_abi_cpu_state __attribute__((unused));
struct knp_iface_key *knp_abi_iface_key __attribute__((unused));
struct knp_flow_read_header *knp_abi_flow_read_header __attribute__((unused));
struct knp_flow_record *knp_abi_flow_record __attribute__((unused));

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20

/* At most this many IPv6 extension headers are skipped before giving up. */
#define IPV6_MAX_EXT_HEADERS 6
/* How much TC pulls into the linear area when headers reach past it. */
#define TC_PULL_LEN 256

/* linux/icmp.h drags in libc socket headers that don't build for -target bpf. */
#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8

struct icmp4_hdr {
	__u8 type;
	__u8 code;
	__be16 checksum;
	__be16 id;
	__be16 sequence;
};

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* IPv6 fragment header (linux/ipv6.h doesn't export it to user space). */
struct ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

struct parsed {
	struct knp_flow_key key;
	__u32 ip_len;
	__u8 tcp_flags;
	__u8 is_tcp;
};

static __always_inline void count_global(__u32 idx)
{
	__u32 zero = 0;
	struct knp_global_counters *g = bpf_map_lookup_elem(&knp_global, &zero);

	if (g && idx < KNP_CNT_MAX)
		g->c[idx]++;
}

static __always_inline void count_iface(__u32 ifindex, __u32 hook, int outcome, __u32 len)
{
	struct knp_iface_key k = { .ifindex = ifindex, .hook = hook };
	__u32 idx = (ifindex & (KNP_IFACE_SLOTS - 1)) * KNP_HOOK_MAX + hook;
	struct knp_iface_counters *c;
	struct knp_iface_slot *s;

	if (outcome < 0 || outcome >= KNP_OUTCOME_MAX)
		return;
	s = bpf_map_lookup_elem(&knp_iface_slots, &idx);
	if (s) {
		/* Per-CPU memory: no other CPU races us for this slot. */
		if (s->ifindex == 0) {
			s->ifindex = ifindex;
			s->hook = hook;
		}
		if (s->ifindex == ifindex) {
			s->c.packets[outcome]++;
			s->c.bytes[outcome] += len;
			return;
		}
	}
	c = bpf_map_lookup_elem(&knp_iface_stats, &k);
	if (!c) {
		struct knp_iface_counters zero = {};

		/* First frame on this interface and hook: create the entry. Per-CPU
		 * values of other CPUs start at zero. */
		if (bpf_map_update_elem(&knp_iface_stats, &k, &zero, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&knp_iface_stats, &k)) {
			count_global(KNP_CNT_IFACE_TABLE_FULL);
			return;
		}
		c = bpf_map_lookup_elem(&knp_iface_stats, &k);
		if (!c)
			return;
	}
	c->packets[outcome]++;
	c->bytes[outcome] += len;
}

/* True when header `h` ends past the IP packet that starts at `l3` and is
 * `l3_len` bytes long: trailer bytes after it are not headers. (Compared as
 * offsets; the verifier only learns bounds from comparisons with data_end,
 * which every header gets first.) */
#define PAST_IP(h, l3, l3_len) ((__u32)((void *)((h) + 1) - (void *)(l3)) > (l3_len))

/* L4: fills ports and TCP flags. `l4` may be anywhere after the IP header. */
static __always_inline int parse_l4(void *l4, void *data_end, void *l3, __u32 l3_len, __u8 proto,
				    struct parsed *p)
{
	switch (proto) {
	case IPPROTO_TCP: {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end || PAST_IP(th, l3, l3_len))
			return KNP_OUTCOME_TRUNCATED;
		if (th->doff < 5)
			return KNP_OUTCOME_MALFORMED;
		p->key.sport = bpf_ntohs(th->source);
		p->key.dport = bpf_ntohs(th->dest);
		p->tcp_flags = ((__u8 *)th)[13];
		p->is_tcp = 1;
		return KNP_OUTCOME_PARSED;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end || PAST_IP(uh, l3, l3_len))
			return KNP_OUTCOME_TRUNCATED;
		p->key.sport = bpf_ntohs(uh->source);
		p->key.dport = bpf_ntohs(uh->dest);
		return KNP_OUTCOME_PARSED;
	}
	case IPPROTO_ICMP: {
		struct icmp4_hdr *ih = l4;

		if ((void *)(ih + 1) > data_end || PAST_IP(ih, l3, l3_len))
			return KNP_OUTCOME_TRUNCATED;
		p->key.dport = (__u16)ih->type << 8 | ih->code;
		if (ih->type == ICMP_ECHO || ih->type == ICMP_ECHOREPLY)
			p->key.sport = bpf_ntohs(ih->id);
		return KNP_OUTCOME_PARSED;
	}
	case IPPROTO_ICMPV6: {
		struct icmp6hdr *ih = l4;

		if ((void *)(ih + 1) > data_end || PAST_IP(ih, l3, l3_len))
			return KNP_OUTCOME_TRUNCATED;
		p->key.dport = (__u16)ih->icmp6_type << 8 | ih->icmp6_code;
		if (ih->icmp6_type == ICMPV6_ECHO_REQUEST || ih->icmp6_type == ICMPV6_ECHO_REPLY)
			p->key.sport = bpf_ntohs(ih->icmp6_identifier);
		return KNP_OUTCOME_PARSED;
	}
	default:
		/* Another IP protocol (GRE, ESP, SCTP, ...): a flow without ports. */
		return KNP_OUTCOME_PARSED;
	}
}

/* `l3_avail` is how many bytes of the frame lie at and after the IP header
 * (including any non-linear part), to catch headers that claim more. */
static __always_inline int parse_ipv4(void *cur, void *data_end, __u32 l3_avail, struct parsed *p)
{
	struct iphdr *ip = cur;
	__u32 hlen, tot;

	if ((void *)(ip + 1) > data_end)
		return KNP_OUTCOME_TRUNCATED;
	if (ip->version != 4 || ip->ihl < 5)
		return KNP_OUTCOME_MALFORMED;
	hlen = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	/* BIG TCP GSO packets over 64 KiB carry tot_len 0; the frame length is
	 * then the truth. */
	if (tot == 0 && l3_avail > 0xffff)
		tot = l3_avail;
	if (tot < hlen)
		return KNP_OUTCOME_MALFORMED;
	if (tot > l3_avail)
		return KNP_OUTCOME_TRUNCATED;
	if (cur + hlen > data_end) /* options must be present in full */
		return KNP_OUTCOME_TRUNCATED;

	p->key.family = KNP_FAMILY_IPV4;
	p->key.proto = ip->protocol;
	/* IPv4-mapped IPv6: ::ffff:a.b.c.d */
	p->key.saddr[2] = bpf_htonl(0x0000ffff);
	p->key.saddr[3] = ip->saddr;
	p->key.daddr[2] = bpf_htonl(0x0000ffff);
	p->key.daddr[3] = ip->daddr;
	p->ip_len = tot;

	/* Non-first fragments carry no L4 header: a flow without ports. */
	if (ip->frag_off & bpf_htons(0x1fff))
		return KNP_OUTCOME_PARSED;
	return parse_l4(cur + hlen, data_end, ip, tot, ip->protocol, p);
}

static __always_inline int parse_ipv6(void *cur, void *data_end, __u32 l3_avail, struct parsed *p)
{
	struct ipv6hdr *ip6 = cur;
	__u32 tot;
	__u8 nexthdr;

	if ((void *)(ip6 + 1) > data_end)
		return KNP_OUTCOME_TRUNCATED;
	if (ip6->version != 6)
		return KNP_OUTCOME_MALFORMED;
	tot = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	/* Jumbograms (and BIG TCP) carry payload_len 0. */
	if (tot == sizeof(*ip6) && l3_avail > 0xffff + sizeof(*ip6))
		tot = l3_avail;
	if (tot > l3_avail)
		return KNP_OUTCOME_TRUNCATED;

	p->key.family = KNP_FAMILY_IPV6;
	__builtin_memcpy(p->key.saddr, &ip6->saddr, 16);
	__builtin_memcpy(p->key.daddr, &ip6->daddr, 16);
	p->ip_len = tot;

	nexthdr = ip6->nexthdr;
	cur = ip6 + 1;
	/* One pass per extension header, plus one for the upper-layer header. */
#pragma unroll
	for (int i = 0; i < IPV6_MAX_EXT_HEADERS + 1; i++) {
		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS: {
			struct ipv6_opt_hdr *oh = cur;

			if ((void *)(oh + 1) > data_end || PAST_IP(oh, ip6, tot))
				return KNP_OUTCOME_TRUNCATED;
			nexthdr = oh->nexthdr;
			cur += (oh->hdrlen + 1) * 8;
			break;
		}
		case IPPROTO_AH: {
			struct ipv6_opt_hdr *oh = cur;

			if ((void *)(oh + 1) > data_end || PAST_IP(oh, ip6, tot))
				return KNP_OUTCOME_TRUNCATED;
			nexthdr = oh->nexthdr;
			cur += (oh->hdrlen + 2) * 4;
			break;
		}
		case IPPROTO_FRAGMENT: {
			struct ipv6_frag_hdr *fh = cur;

			if ((void *)(fh + 1) > data_end || PAST_IP(fh, ip6, tot))
				return KNP_OUTCOME_TRUNCATED;
			p->key.proto = fh->nexthdr;
			/* Non-first fragment: no L4 header follows. */
			if (fh->frag_off & bpf_htons(0xfff8))
				return KNP_OUTCOME_PARSED;
			nexthdr = fh->nexthdr;
			cur = fh + 1;
			break;
		}
		case IPPROTO_NONE:
			p->key.proto = IPPROTO_NONE;
			return KNP_OUTCOME_PARSED;
		default:
			p->key.proto = nexthdr;
			return parse_l4(cur, data_end, ip6, tot, nexthdr, p);
		}
	}
	/* A longer chain than any real stack sends. */
	return KNP_OUTCOME_MALFORMED;
}

/* Ethernet with up to two VLAN tags (802.1ad outer, 802.1Q inner). */
static __always_inline int parse_frame(void *data, void *data_end, __u32 frame_len, struct parsed *p)
{
	struct ethhdr *eth = data;
	void *cur;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return KNP_OUTCOME_TRUNCATED;
	proto = eth->h_proto;
	cur = eth + 1;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct vlan_hdr *vh = cur;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > data_end)
			return KNP_OUTCOME_TRUNCATED;
		proto = vh->encap_proto;
		cur = vh + 1;
	}
	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(cur, data_end, frame_len - (cur - data), p);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(cur, data_end, frame_len - (cur - data), p);
	return KNP_OUTCOME_NON_IP;
}

static __always_inline struct knp_cpu_state *cpu_state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&knp_cpu_state, &zero);
}

/* What account_flow() tells the detectors about the frame. */
#define KNP_ACCT_NEW_FLOW  (1 << 0) /* the flow table had no entry: first frame of the flow */
#define KNP_ACCT_FIRST_ACK (1 << 1) /* first ACK without SYN on this flow (this CPU's copy) */

/* `jiffies` is bpf_jiffies64(), read once per packet by the caller.
 * Returns KNP_ACCT_* for the detectors. */
static __always_inline int account_flow(struct parsed *p, __u64 jiffies)
{
	struct knp_flow_value *v = NULL;
	__u8 f = p->tcp_flags;
	int acct = 0;

	/* A SYN nearly always opens a flow here (each direction of a connection
	 * is its own flow), so it goes straight to the insert: the lookup before
	 * it would walk the bucket only to miss. A retransmitted SYN finds its
	 * flow through the insert's EEXIST below. */
	if (!(p->is_tcp && (f & TCP_SYN)))
		v = bpf_map_lookup_elem(&knp_flows, &p->key);
	if (!v) {
		/* The rare path reads the clock: for first_seen, and to refresh
		 * this CPU's jiffies anchor. */
		__u64 now = bpf_ktime_get_coarse_ns();
		struct knp_cpu_state *st = cpu_state();
		/* Other CPUs' copies of a new entry start at zero. */
		struct knp_flow_value nv = {
			.packets = 1,
			.bytes = p->ip_len,
			.first_seen_ns = now,
			.last_seen_jiffies = jiffies,
			.syn_count = !!(f & TCP_SYN),
			.fin_count = !!(f & TCP_FIN),
			.rst_count = !!(f & TCP_RST),
			.tcp_flags = f | ((f & (TCP_SYN | TCP_ACK)) == TCP_SYN ? KNP_TCP_OPENED : 0),
		};
		long err;

		if (st) {
			st->anchor_ns = now;
			st->anchor_jiffies = jiffies;
		}
		err = bpf_map_update_elem(&knp_flows, &p->key, &nv, BPF_NOEXIST);
		if (!err) {
			count_global(KNP_CNT_FLOW_INSERTED);
			return KNP_ACCT_NEW_FLOW |
			       ((f & (TCP_ACK | TCP_SYN)) == TCP_ACK ? KNP_ACCT_FIRST_ACK : 0);
		}
		/* Another CPU created it between our lookup and update: add to our
		 * copy of it. Anything else means the table is full (the frame is
		 * still new to the detectors). */
		v = bpf_map_lookup_elem(&knp_flows, &p->key);
		if (!v) {
			count_global(KNP_CNT_FLOW_INSERT_FAILED);
			return KNP_ACCT_NEW_FLOW;
		}
	}
	/* This CPU's copy: no other CPU writes it, so plain adds are exact. */
	if (!v->first_seen_ns)
		v->first_seen_ns = bpf_ktime_get_coarse_ns();
	v->packets++;
	v->bytes += p->ip_len;
	v->last_seen_jiffies = jiffies;
	if (!p->is_tcp)
		return 0;
	/* Most segments are ACK or PSH+ACK: already seen, nothing to count. */
	if ((v->tcp_flags & f) != f) {
		if ((f & (TCP_ACK | TCP_SYN)) == TCP_ACK && !(v->tcp_flags & TCP_ACK))
			acct = KNP_ACCT_FIRST_ACK;
		v->tcp_flags |= f;
	}
	if (!(f & (TCP_SYN | TCP_FIN | TCP_RST)))
		return acct;
	if ((f & (TCP_SYN | TCP_ACK)) == TCP_SYN)
		v->tcp_flags |= KNP_TCP_OPENED;
	v->syn_count += !!(f & TCP_SYN);
	v->fin_count += !!(f & TCP_FIN);
	v->rst_count += !!(f & TCP_RST);
	return acct;
}

static __always_inline void emit_packet_event(struct parsed *p, __u32 frame_len, __u8 hook)
{
	struct knp_packet_info *e;
	struct knp_cpu_state *st;

	if (!packet_sample_rate)
		return;
	st = cpu_state();
	if (!st)
		return;
	/* Deterministic 1-in-N per CPU: cheaper than a random draw and exact
	 * enough to test. */
	if (++st->sample_tick < packet_sample_rate)
		return;
	st->sample_tick = 0;

	e = bpf_ringbuf_reserve(&knp_packet_events, sizeof(*e), 0);
	if (!e) {
		count_global(KNP_CNT_PKT_EVENTS_DROPPED);
		return;
	}
	e->timestamp_ns = bpf_ktime_get_ns();
	e->key = p->key;
	e->packet_len = frame_len;
	e->ip_len = p->ip_len;
	e->tcp_flags = p->tcp_flags;
	e->hook = hook;
	e->_pad[0] = 0;
	e->_pad[1] = 0;
	/* Default flags: the kernel wakes the reader only when it had caught
	 * up, so a busy reader costs no wakeups. */
	bpf_ringbuf_submit(e, 0);
	count_global(KNP_CNT_PKT_EVENTS_SENT);
}

/*
 * Is this the first watched hook the frame passes on this node? Every TC
 * ingress is. A TC egress is unless the frame came in through an interface
 * whose TC ingress we watch (skb->ingress_ifindex: 0 for frames this host
 * sent): a frame forwarded from pod a's veth to pod b's was seen at a's
 * ingress already, and is counted to a flow (and to the detectors) there,
 * once per node, not again on its way out.
 */
static __always_inline int first_sighting(struct __sk_buff *skb, __u8 direction)
{
	__u32 in;

	if (direction == KNP_DIR_INGRESS)
		return 1;
	in = skb->ingress_ifindex;
	if (!in)
		return 1;
	return !(iface_flags(in) & KNP_IFACE_TC_INGRESS);
}

#include "detect.bpf.h"
#include "flow-read.bpf.h"
#include "flow-evict.bpf.h"

static __always_inline int parse_skb(struct __sk_buff *skb, struct parsed *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	__builtin_memset(p, 0, sizeof(*p));
	return parse_frame(data, data_end, skb->len, p);
}

static __always_inline int handle_skb(struct __sk_buff *skb, __u8 hook, __u8 direction)
{
	struct parsed p;
	int outcome, acct;

	outcome = parse_skb(skb, &p);
	/* Headers that reach past the linear area read as truncated. Pull them
	 * in and parse again, only then: pulling up front would copy payload
	 * (and unclone the skb) for most TCP segments, whose linear part is
	 * just their headers. */
	if (outcome == KNP_OUTCOME_TRUNCATED && skb->len > skb->data_end - skb->data) {
		count_global(KNP_CNT_HEADERS_PULLED);
		bpf_skb_pull_data(skb, skb->len < TC_PULL_LEN ? skb->len : TC_PULL_LEN);
		outcome = parse_skb(skb, &p);
	}
	count_iface(skb->ifindex, hook, outcome, skb->len);
	if (outcome != KNP_OUTCOME_PARSED)
		return TC_ACT_UNSPEC;

	/* Forwarded between watched interfaces: its flow, packet event and
	 * detectors were done at the ingress it came through (and a blocked
	 * source was dropped there). This halves the flow inserts of traffic
	 * between pods of one node, the largest cost of short connections. */
	if (!first_sighting(skb, direction))
		return TC_ACT_UNSPEC;
	p.key.ifindex = skb->ifindex;
	p.key.direction = direction;
	if (blocked(&p))
		return TC_ACT_SHOT;
	acct = account_flow(&p, bpf_jiffies64());
	emit_packet_event(&p, skb->len, hook);
#ifndef KNP_NO_DETECTORS
	detect(&p, hook, acct);
#else
	(void)acct; /* bench/bpf/no-detectors.bpf.c: the baseline without them */
#endif
	/* TC_ACT_UNSPEC is TCX_NEXT: let the next program (or the stack) decide. */
	return TC_ACT_UNSPEC;
}

SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
	return handle_skb(skb, KNP_HOOK_TC_INGRESS, KNP_DIR_INGRESS);
}

SEC("tc")
int tc_egress(struct __sk_buff *skb)
{
	return handle_skb(skb, KNP_HOOK_TC_EGRESS, KNP_DIR_EGRESS);
}

static __always_inline int handle_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	/* Whole frame, fragments included, so byte counts match TC's. */
	__u32 len = bpf_xdp_get_buff_len(ctx);
	struct parsed p;
	int outcome;

	__builtin_memset(&p, 0, sizeof(p));
	outcome = parse_frame(data, data_end, len, &p);
	/* Counting only: flows and detection stay in TC, which sees every frame
	 * XDP sees, so nothing is accounted twice when both are attached. */
	count_iface(ctx->ingress_ifindex, KNP_HOOK_XDP, outcome, len);
	/* Blocked sources go here, before the stack spends anything on them. */
	if (outcome == KNP_OUTCOME_PARSED && blocked(&p))
		return XDP_DROP;
	return XDP_PASS;
}

/* For generic (skb) mode. Not frags-aware on purpose: on 6.18, a frags
 * program in generic mode hands TC ingress an skb without its MAC header
 * (TC then sees the frame from the IP header on). */
SEC("xdp")
int xdp_ingress(struct xdp_md *ctx)
{
	return handle_xdp(ctx);
}

/* For native mode: we only read headers, so multi-buffer frames are fine,
 * and native XDP then works on veths and NICs with a large MTU. */
SEC("xdp.frags")
int xdp_ingress_frags(struct xdp_md *ctx)
{
	return handle_xdp(ctx);
}
