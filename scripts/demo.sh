#!/usr/bin/env bash
# The demo: a two-pod "node" built from network namespaces (a bridge and a
# veth per pod, as the bridge CNI lays them out), traffic between the pods
# (ping, UDP, a TCP transfer, and a NULL and an XMAS scan), and the example
# program watching pod a's host-side veth. Runs DEMO_SECONDS (default 20),
# or until Ctrl-C, then removes everything it made.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2

seconds=${DEMO_SECONDS:-20}
id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
br="kb$id" nsa="knp-$id-a" nsb="knp-$id-b" va="kv${id}a" vb="kv${id}b"
sub=$((16#${id:0:2}))
ipa="198.18.$sub.1" ipb="198.18.$sub.2"
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ip link del "$va" 2>/dev/null || true
  ip link del "$vb" 2>/dev/null || true
  ip netns del "$nsa" 2>/dev/null || true
  ip netns del "$nsb" 2>/dev/null || true
  ip link del "$br" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "demo: node with bridge $br, pod a ($nsa, $ipa) and pod b ($nsb, $ipb)" >&2
ip link add "$br" type bridge
sysctl -qw "net.ipv6.conf.$br.disable_ipv6=1"
ip link set "$br" up
for pod in a b; do
  ns="knp-$id-$pod" host="kv$id$pod" addr="198.18.$sub.$([[ $pod == a ]] && echo 1 || echo 2)"
  ip netns add "$ns"
  ip link add "$host" type veth peer name eth0 netns "$ns"
  sysctl -qw "net.ipv6.conf.$host.disable_ipv6=1"
  ip link set "$host" master "$br" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
done

# Traffic, bounded by the demo's duration.
ip netns exec "$nsb" node tools/traffic.mjs tcp-server 8080 >/dev/null &
pids+=($!)
(
  sleep 2
  end=$((SECONDS + seconds))
  while ((SECONDS < end)); do
    ip netns exec "$nsa" ping -c 5 -i 0.2 -q "$ipb" >/dev/null 2>&1 || true
    ip netns exec "$nsa" node tools/traffic.mjs udp-send "$ipb" 5353 200 100 >/dev/null || true
    ip netns exec "$nsa" node tools/traffic.mjs tcp-send "$ipb" 8080 1000000 >/dev/null || true
    # Scans: hping3 sends TCP with no flags (NULL) by default; -F -P -U is XMAS.
    ip netns exec "$nsa" hping3 -q -c 2 -i u10000 -p 22 "$ipb" >/dev/null 2>&1 || true
    ip netns exec "$nsa" hping3 -q -c 2 -i u10000 -F -P -U -p 23 "$ipb" >/dev/null 2>&1 || true
    sleep 1
  done
) &
pids+=($!)

NETWORK_INTERFACE="$va" DURATION_SECONDS="$seconds" SAMPLE_RATE="${SAMPLE_RATE:-100}" node dist/examples/network-monitor.js
