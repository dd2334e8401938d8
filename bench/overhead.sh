#!/usr/bin/env bash
# The end-to-end overhead benchmark (issue 8; bench/overhead.ts says what it
# does): a node in namespaces, five workloads, each run alternately without
# and with `kubenetprobe agent`, ratios per pair. Needs root. About 14 minutes;
# --quick is a one-minute smoke run.
#
#   bash bench/overhead.sh [--quick] [--pairs N] [--seconds S] [--pods N]
#        [--workloads tcp,udp,rr,churn,flood] [--xdp auto|off|generic|native]
#        [--sample-rate N] [--bpf-stats] [--tag NAME]
#
# Writes build/bench/<tag>.md and build/bench/<tag>.json (tag: overhead).
set -euo pipefail
cd "$(dirname "$0")/.."
# Installs what is missing (iperf3, clang, bpftool, ...) and builds the BPF objects and the TypeScript.
bash scripts/setup.sh >&2
exec node dist/bench/overhead.js "$@"
