// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Baselines for bench/prog-cost.ts: programs that do nothing, with the same
 * program types and section flavours as bpf/monitor.bpf.c, so that
 * BPF_PROG_TEST_RUN's own overhead (context setup, the run loop, the timer)
 * cancels out of "ns per packet above empty".
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int empty_tc(struct __sk_buff *skb)
{
	return TC_ACT_UNSPEC;
}

/* xdp.frags, as xdp_ingress is: the same test-run path in the kernel. */
SEC("xdp.frags")
int empty_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}
