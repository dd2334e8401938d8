#!/usr/bin/env bash
# Builds the kernel programs: bpf/*.bpf.c -> build/bpf/*.bpf.o (with BTF).
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/bpf
mkdir -p "$out"
arch_inc="/usr/include/$(uname -m)-linux-gnu"   # asm/types.h on Debian
for src in bpf/*.bpf.c; do
  obj="$out/$(basename "${src%.c}").o"
  newest_header=$(ls -t bpf/*.h | head -1)
  if [[ -f "$obj" && "$obj" -nt "$src" && "$obj" -nt "$newest_header" ]]; then continue; fi
  # -mcpu=v3: ALU32 and wider jumps, smaller code; every kernel we support (>= 5.18) takes it.
  clang -O2 -g -Wall -Werror -target bpf -mcpu=v3 -I"$arch_inc" -Ibpf -c "$src" -o "$obj.tmp"
  mv "$obj.tmp" "$obj"
  echo "built $obj"
done
