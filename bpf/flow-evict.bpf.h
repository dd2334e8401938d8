/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * knp_flow_evict: removes a batch of flows from knp_flows and hands back
 * each one's final figures (a BPF_PROG_TYPE_SYSCALL program, which user
 * space runs with BPF_PROG_TEST_RUN).
 *
 * Evicting by BPF_MAP_LOOKUP_AND_DELETE_ELEM costs a system call per flow;
 * under connection churn every flow is evicted once, tens of thousands a
 * second, and the calls were the agent's largest single cost. Here user
 * space writes the keys into a memory-mapped array, makes one call, and
 * reads the figures back from the same memory. Each flow is summed, then
 * deleted, as the lookup-and-delete did: a packet that lands between the
 * two (the flow was idle for seconds) is lost with the flow, as it was then.
 * Included by monitor.bpf.c after flow-read.bpf.h, whose summing rule and
 * CPU count it shares.
 */
#ifndef KNP_FLOW_EVICT_BPF_H
#define KNP_FLOW_EVICT_BPF_H

/* Flows per call; user space splits larger evictions. */
#define KNP_FLOW_EVICT_BATCH 4096

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KNP_FLOW_EVICT_BATCH);
	__type(key, __u32);
	__type(value, struct knp_flow_evict);
} knp_flow_evict_batch SEC(".maps");

static long knp_flow_evict_one(__u32 i, void *data)
{
	__u32 *evicted = data;
	struct knp_flow_evict *e = bpf_map_lookup_elem(&knp_flow_evict_batch, &i);

	if (!e)
		return 1;
	e->found = 0;
	__builtin_memset(&e->value, 0, sizeof(e->value));
	for (__u32 c = 0; c < KNP_FLOW_READ_MAX_CPUS; c++) {
		struct knp_flow_value *pc;

		if (c >= flow_read_cpus)
			break;
		pc = bpf_map_lookup_percpu_elem(&knp_flows, &e->key, c);
		if (!pc)
			return 0; /* gone already (every CPU has a copy while it exists) */
		knp_flow_value_add(&e->value, pc);
	}
	if (bpf_map_delete_elem(&knp_flows, &e->key) == 0) {
		e->found = 1;
		(*evicted)++;
	}
	return 0;
}

SEC("syscall")
int knp_flow_evict(struct knp_flow_evict_args *args)
{
	__u32 n = args->count;
	__u32 evicted = 0;

	if (n > KNP_FLOW_EVICT_BATCH)
		n = KNP_FLOW_EVICT_BATCH;
	bpf_loop(n, knp_flow_evict_one, &evicted, 0);
	args->evicted = evicted;
	return 0;
}

#endif /* KNP_FLOW_EVICT_BPF_H */
