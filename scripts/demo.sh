#!/usr/bin/env bash
# The demo, the README's first command: sets up (apt, npm, BPF and TypeScript
# builds), then runs `kubenetprobe demo`: a small Kubernetes-like node built
# from network namespaces (frontend, api, db, dns, a client and an attacker),
# real traffic and scans between the pods, and the agent watching their
# veths with its API on 127.0.0.1:9470. Runs DEMO_SECONDS (default 60; 0 =
# until Ctrl-C), then removes everything it made.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
# The node flags of the kubenetprobe command (the first line of src/cli/main.ts).
exec node --max-semi-space-size=8 dist/src/cli/main.js demo --seconds "${DEMO_SECONDS:-60}" --listen "${DEMO_LISTEN:-127.0.0.1:9470}"
