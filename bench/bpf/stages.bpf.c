// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Cost breakdown for bench/prog-cost.ts: the monitor's own code
 * (bpf/monitor.bpf.c, included as is, so nothing here can drift from it),
 * cut off after each stage of handle_skb(). Each program is the previous one
 * plus one stage:
 *
 *   stage_parse    parse_skb() (test-run frames are linear: no pull)
 *   stage_iface    + count_iface()            (per-interface counters)
 *   stage_clock    + bpf_jiffies64()          (the per-packet timestamp)
 *   stage_lookup   + the flow table lookup only (no update)
 *   stage_flow     + account_flow()           (lookup and per-CPU update)
 *   tc_ingress     + events and detection     (the monitor's program)
 *
 * The included programs (tc_ingress, tc_egress, xdp_ingress) are loaded too
 * and share these maps, so stage_lookup finds the flow tc_ingress created.
 */
#include "monitor.bpf.c"

static __always_inline int stage(struct __sk_buff *skb, int upto)
{
	struct parsed p;
	int outcome;
	__u64 now = 0;

	outcome = parse_skb(skb, &p);
	if (upto < 1)
		return outcome == KNP_OUTCOME_PARSED ? TC_ACT_UNSPEC : TC_ACT_OK;
	count_iface(skb->ifindex, KNP_HOOK_TC_INGRESS, outcome, skb->len);
	if (outcome != KNP_OUTCOME_PARSED || upto < 2)
		return TC_ACT_UNSPEC;
	p.key.ifindex = skb->ifindex;
	p.key.direction = KNP_DIR_INGRESS;
	now = bpf_jiffies64();
	if (upto < 3)
		return now ? TC_ACT_UNSPEC : TC_ACT_OK;
	if (upto < 4)
		return bpf_map_lookup_elem(&knp_flows, &p.key) ? TC_ACT_UNSPEC : TC_ACT_OK;
	account_flow(&p, now);
	return TC_ACT_UNSPEC;
}

SEC("tc") int stage_parse(struct __sk_buff *skb) { return stage(skb, 0); }
SEC("tc") int stage_iface(struct __sk_buff *skb) { return stage(skb, 1); }
SEC("tc") int stage_clock(struct __sk_buff *skb) { return stage(skb, 2); }
SEC("tc") int stage_lookup(struct __sk_buff *skb) { return stage(skb, 3); }
SEC("tc") int stage_flow(struct __sk_buff *skb) { return stage(skb, 4); }
