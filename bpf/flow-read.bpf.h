/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * knp_flow_read: how user space reads the flow table (an iter/bpf_map_elem
 * program, which user space attaches to knp_flows and reads through a file
 * descriptor, as `cat` reads a seq_file).
 *
 * A batch read (BPF_MAP_LOOKUP_BATCH) copies every flow with one value per
 * possible CPU: 44 + 48 x CPUs bytes, whether the flow moved or not (3 KiB
 * a flow on a 64-CPU node). This program runs in the kernel for each flow,
 * sums its per-CPU copies and writes out only flows with a packet at or
 * after since_jiffies: the agent's every-second read of a large, mostly idle
 * table then costs a walk of the table in the kernel and a copy of what
 * changed. Included by monitor.bpf.c; it shares only the ABI header.
 */
#ifndef KNP_FLOW_READ_BPF_H
#define KNP_FLOW_READ_BPF_H

/* The verifier walks the per-CPU loop once per CPU it can reach: bounded by
 * the knob below (a constant to it), so only the loader's value costs. */
#define KNP_FLOW_READ_MAX_CPUS 1024

/* Possible CPUs (the per-CPU copies the kernel hands the program for each
 * flow); the loader sets it. Above KNP_FLOW_READ_MAX_CPUS user space keeps
 * to batch reads. */
const volatile __u32 flow_read_cpus = 1;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct knp_flow_read_cfg);
} knp_flow_read_cfg SEC(".maps");

/* Adds one CPU's copy of a flow to a sum: counts add up, first_seen is the
 * earliest a CPU saw, last_seen the latest, flags are ORed. The one summing
 * rule of the kernel side (user space has its twin for batch reads). */
static __always_inline void knp_flow_value_add(struct knp_flow_value *sum, const struct knp_flow_value *pc)
{
	/* A CPU that never saw the flow holds zeros (and no first_seen). */
	if (!pc->packets)
		return;
	sum->packets += pc->packets;
	sum->bytes += pc->bytes;
	if (pc->first_seen_ns && (!sum->first_seen_ns || pc->first_seen_ns < sum->first_seen_ns))
		sum->first_seen_ns = pc->first_seen_ns;
	if (pc->last_seen_jiffies > sum->last_seen_jiffies)
		sum->last_seen_jiffies = pc->last_seen_jiffies;
	sum->syn_count += pc->syn_count;
	sum->fin_count += pc->fin_count;
	sum->rst_count += pc->rst_count;
	sum->tcp_flags |= pc->tcp_flags;
}

/* The read (iterator fd; the kernel numbers them from 1) whose header is out. */
__u64 flow_read_session = 0;

/* The iterator's context as the kernel defines it (no vmlinux.h here): CO-RE
 * relocates each field against the running kernel's BTF. */
struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} __attribute__((preserve_access_index));

struct bpf_iter__bpf_map_elem {
	struct bpf_iter_meta *meta;
	struct bpf_map *map;
	void *key;
	void *value; /* per-CPU map: every possible CPU's copy, back to back, 8-byte aligned */
} __attribute__((preserve_access_index));

SEC("iter/bpf_map_elem")
int knp_flow_read(struct bpf_iter__bpf_map_elem *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct knp_flow_key *key = ctx->key;
	struct knp_flow_value *v = ctx->value;
	struct knp_flow_read_cfg *cfg;
	struct knp_flow_record r;
	__u32 zero = 0;

	/* The first call of a read (also the only one on an empty table) says
	 * when the read began: a packet that lands on a flow after we passed it
	 * carries jiffies from then on, so the next read asks for flows seen
	 * since then (less a margin user space adds). With one flow in the
	 * table the closing call has seq_num 0 as well, hence the session. */
	if (ctx->meta->seq_num == 0 && ctx->meta->session_id != flow_read_session) {
		struct knp_flow_read_header h = {
			.now_jiffies = bpf_jiffies64(),
			.cpus = flow_read_cpus,
			.record_size = sizeof(struct knp_flow_record),
		};

		flow_read_session = ctx->meta->session_id;
		bpf_seq_write(seq, &h, sizeof(h));
	}
	if (!key || !v)
		return 0; /* the end of the walk */
	cfg = bpf_map_lookup_elem(&knp_flow_read_cfg, &zero);
	if (!cfg)
		return 0;

	__builtin_memset(&r, 0, sizeof(r));
	for (__u32 c = 0; c < KNP_FLOW_READ_MAX_CPUS; c++) {
		if (c >= flow_read_cpus)
			break;
		knp_flow_value_add(&r.value, v + c);
	}
	/* Nothing since the last read: user space still has its figures. */
	if (r.value.last_seen_jiffies < cfg->since_jiffies)
		return 0;
	__builtin_memcpy(&r.key, key, sizeof(r.key));
	bpf_seq_write(seq, &r, sizeof(r));
	return 0;
}

#endif /* KNP_FLOW_READ_BPF_H */
