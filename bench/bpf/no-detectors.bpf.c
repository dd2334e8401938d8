// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Baseline for bench/detector-cost.ts: the monitor's own code
 * (bpf/monitor.bpf.c, included as is) with the call into the security
 * detectors compiled out. Everything else, the block check included, is the
 * same program.
 */
#define KNP_NO_DETECTORS
#include "monitor.bpf.c"
