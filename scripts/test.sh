#!/usr/bin/env bash
# The test command: set up, lint, type-check, then run every test against the
# real kernel with Node's test runner. Needs root (BPF, netns).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== lint"
npx eslint .
echo "== type-check (tsc --noEmit is part of the build above; strict mode)"
echo "== tests"
mapfile -t files < <(find dist/src dist/test -name '*.test.js' | sort)
# One file at a time: kernel tests measure exact counts, and two at once on a
# 2-core machine only slow each other down.
# A test that hangs fails after 5 minutes instead of holding CI (the longest passes in about 25 s).
node --test --test-concurrency=1 --test-timeout=300000 "${files[@]}"
