#!/usr/bin/env bash
# Installs what KubeNetProbe needs on a fresh Debian 12 machine (run as root),
# then builds the kernel objects and the TypeScript. Safe to run again: it
# skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v clang >/dev/null || need_apt+=(clang llvm)
[[ -f /usr/include/bpf/bpf_helpers.h ]] || need_apt+=(libbpf-dev)
[[ -e /usr/lib/x86_64-linux-gnu/libbpf.so.1 || -e /usr/lib/aarch64-linux-gnu/libbpf.so.1 ]] || need_apt+=(libbpf1)
command -v bpftool >/dev/null || need_apt+=(bpftool)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v sysctl >/dev/null || need_apt+=(procps)
command -v setpriv >/dev/null || need_apt+=(util-linux)
# Test and benchmark tools: packet crafting, ping, traffic.
command -v hping3 >/dev/null || need_apt+=(hping3)
command -v nmap >/dev/null || need_apt+=(nmap)
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v ping >/dev/null || need_apt+=(iputils-ping)
command -v iperf3 >/dev/null || need_apt+=(iperf3)
command -v ethtool >/dev/null || need_apt+=(ethtool)
# The web page's browser tests and benchmark (test/web-ui.test.ts, bench/web-page.ts): Debian's Chromium, driven by playwright-core.
[[ -x /usr/bin/chromium ]] || need_apt+=(chromium)
# Rendering the Helm chart offline in test/deploy.test.ts (tools/helm-render: Go text/template + Sprig, as Helm does).
command -v go >/dev/null || need_apt+=(golang-go)
[[ -d /usr/share/gocode/src/github.com/Masterminds/sprig ]] || need_apt+=(golang-github-masterminds-sprig-dev golang-gopkg-yaml.v2-dev)
if ((${#need_apt[@]})); then
  echo "setup: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# bpffs, for pinning (and bpftool); mounted once per boot.
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true

if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

bash scripts/build-bpf.sh
echo "setup: tsc"
npx tsc -p tsconfig.json
# The CLI (package.json "bin"), so `npx kubenetprobe` runs it.
chmod +x dist/src/cli/main.js
# The web page the agent serves at / (web/, bundled by Vite into dist/web; no CDN).
echo "setup: web page (tsc, vite build)"
npx tsc -p web/tsconfig.json
npx vite build --config web/vite.config.ts
