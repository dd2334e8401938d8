#!/usr/bin/env bash
# Builds and runs the benchmarks (bench/), then prints a markdown table of the
# results and writes them to build/bench/results.json. Needs root (BPF).
#
#   bench/prog-cost.ts     per-packet cost of tc_ingress / xdp_ingress vs empty programs
#   bench/detector-cost.ts per-packet cost the security detectors add (tc_ingress with vs without them)
#   bench/ringbuf-read.ts  ring buffer read rate vs libbpf's ring_buffer__consume
#   bench/flow-read.ts     reading 100k flows vs get_next_key + lookup per key
#   bench/flow-evict.ts    evicting the flows of 10k short TCP connections: by the knp_flow_evict program vs lookup-and-delete per flow
#   bench/agent-pipeline.ts  one agent pipeline cycle and peak RSS at 10k/100k/1M flows vs a raw read
#   bench/history-store.ts  flow history: writes/s, top-10 talkers and a time series over 1M records vs plain JS
#   bench/web-page.ts      the web page in headless Chromium with 500 pods / 5k edges: first render and frame time vs the same page with an empty map
#
# Each benchmark measures its baseline in the same run, interleaved. Goal
# misses are results, not failures; the script fails only when a benchmark
# crashes or one of its correctness checks fails.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== setup and build"
bash scripts/setup.sh
out=build/bench
mkdir -p "$out"
arch_inc="/usr/include/$(uname -m)-linux-gnu"   # asm/types.h on Debian
for src in bench/bpf/*.bpf.c; do
  obj="$out/$(basename "${src%.c}").o"
  # stages.bpf.c includes bpf/monitor.bpf.c, so the monitor's sources count too.
  if [[ -f "$obj" && "$obj" -nt "$src" && "$obj" -nt bpf/kubenetprobe.h && "$obj" -nt bpf/detect.bpf.h && "$obj" -nt bpf/monitor.bpf.c ]]; then continue; fi
  # The same flags as scripts/build-bpf.sh.
  clang -O2 -g -Wall -Werror -target bpf -mcpu=v3 -I"$arch_inc" -Ibpf -c "$src" -o "$obj.tmp"
  mv "$obj.tmp" "$obj"
  echo "built $obj"
done

benches=(prog-cost detector-cost connection-cost ringbuf-read flow-read flow-evict agent-pipeline history-store web-page)
for b in "${benches[@]}"; do rm -f "$out/$b.json"; done
rm -f "$out/results.json"

status=()
for b in "${benches[@]}"; do
  echo "== $b"
  rc=0
  # Each benchmark takes well under a minute; the timeout only stops a hang.
  timeout --signal=INT --kill-after=10 600 node "dist/bench/$b.js" || rc=$?
  status+=("$b=$rc")
done

echo
node dist/bench/report.js "${status[@]}"
