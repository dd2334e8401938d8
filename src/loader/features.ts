/**
 * Kernel feature probes, run once per process and cached. Tests use these to
 * skip on kernels that predate a feature, and to fail on kernels that should
 * have it but don't.
 */
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import { libbpf } from '../ffi/native.js';
import { KernelUnsupportedError } from '../errors.js';

const BPF_MAP_TYPE_RINGBUF = 27;

export interface KernelFeatures {
  release: string;
  version: readonly [major: number, minor: number];
  /** BPF ring buffers (5.8). */
  ringbuf: boolean;
  /** bpf_link for XDP (5.9). */
  xdpLink: boolean;
  /** TCX links for TC (6.6). */
  tcx: boolean;
  /** Kernel BTF at /sys/kernel/btf/vmlinux. */
  btf: boolean;
  /** BPF memory charged to the cgroup rather than RLIMIT_MEMLOCK (5.11). */
  memcgAccounting: boolean;
}

/** The oldest kernel the programs load on: bpf_xdp_get_buff_len and XDP multi-buffer (xdp.frags) arrived in 5.18. */
export const MIN_KERNEL: readonly [number, number] = [5, 18];

let cached: KernelFeatures | undefined;

export function parseKernelVersion(rel: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

export function atLeast(v: readonly [number, number], want: readonly [number, number]): boolean {
  return v[0] > want[0] || (v[0] === want[0] && v[1] >= want[1]);
}

export function kernelFeatures(): KernelFeatures {
  if (cached) return cached;
  const rel = release();
  const version = parseKernelVersion(rel);
  cached = {
    release: rel,
    version,
    ringbuf: (libbpf.libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, null) as number) === 1,
    xdpLink: atLeast(version, [5, 9]),
    tcx: atLeast(version, [6, 6]),
    btf: existsSync('/sys/kernel/btf/vmlinux'),
    memcgAccounting: atLeast(version, [5, 11]),
  };
  return cached;
}

/** Throws KernelUnsupportedError when the programs cannot load on this kernel. */
export function assertKernelSupported(f: KernelFeatures = kernelFeatures()): void {
  if (!atLeast(f.version, MIN_KERNEL)) {
    throw new KernelUnsupportedError('the BPF features KubeNetProbe uses (ring buffers, XDP multi-buffer)', `kernel ${f.release} is older than ${MIN_KERNEL.join('.')}`);
  }
  if (!f.ringbuf) throw new KernelUnsupportedError('BPF ring buffers', `kernel ${f.release} cannot create them (CONFIG_BPF_SYSCALL?)`);
}
