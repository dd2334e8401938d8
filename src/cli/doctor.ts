/**
 * `kubenetprobe doctor`: what will work on this node, what falls back to
 * what, and whether the agent can run at all.
 */
import { existsSync, readFileSync } from 'node:fs';
import { libbpf } from '../ffi/native.js';
import { missingCapabilities } from '../loader/capabilities.js';
import { MIN_KERNEL, atLeast, kernelFeatures } from '../loader/features.js';
import { autoXdpMode } from '../attach/xdp-policy.js';
import { listInterfaces } from '../netif.js';
import { NetworkMonitor } from '../monitor/network-monitor.js';
import { KubeNetProbeError } from '../errors.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
}

function check(name: string, fn: () => { status: CheckStatus; detail: string }): Check {
  try {
    return { name, ...fn() };
  } catch (err) {
    return { name, status: 'fail', detail: err instanceof KubeNetProbeError ? err.message.split('\n')[0]! : String(err) };
  }
}

function memlockLimit(): string {
  const m = /^Max locked memory\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m ? m[1]! : 'unknown';
}

/** Runs every check; loading the programs only when the privileges allow it. */
export async function runChecks(): Promise<Check[]> {
  const f = kernelFeatures();
  const checks: Check[] = [];
  const missing = missingCapabilities(['CAP_BPF', 'CAP_PERFMON', 'CAP_NET_ADMIN']);
  checks.push({
    name: 'privileges',
    status: missing.length ? 'fail' : 'ok',
    detail: missing.length ? `missing ${missing.join(', ')}: run as root or grant them` : `CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN held${process.getuid?.() === 0 ? ' (root)' : ''}`,
  });
  checks.push(
    atLeast(f.version, MIN_KERNEL)
      ? { name: 'kernel', status: 'ok', detail: `${f.release} (needs ${MIN_KERNEL.join('.')} or later)` }
      : { name: 'kernel', status: 'fail', detail: `${f.release} is older than ${MIN_KERNEL.join('.')}: the programs need bpf_xdp_get_buff_len and XDP multi-buffer` },
  );
  checks.push({
    name: 'ring buffers',
    status: f.ringbuf ? 'ok' : missing.length ? 'warn' : 'fail',
    detail: f.ringbuf ? 'BPF ring buffers available' : missing.length ? 'could not probe without privileges' : 'the kernel cannot create BPF ring buffers',
  });
  checks.push({
    name: 'tc attach',
    status: f.tcx ? 'ok' : 'warn',
    detail: f.tcx ? 'TCX links: the kernel detaches them if the agent dies' : 'no TCX (kernel < 6.6): falls back to clsact filters, which outlive a crashed agent until the next attach replaces them',
  });
  checks.push({
    name: 'btf',
    status: f.btf ? 'ok' : 'warn',
    detail: f.btf ? '/sys/kernel/btf/vmlinux present' : 'no kernel BTF at /sys/kernel/btf/vmlinux (the programs do not need it today)',
  });
  const mounts = existsSync('/proc/mounts') ? readFileSync('/proc/mounts', 'utf8') : '';
  const bpffs = /^\S+ \/sys\/fs\/bpf bpf /m.test(mounts);
  checks.push({
    name: 'bpffs',
    status: bpffs ? 'ok' : 'warn',
    detail: bpffs ? 'mounted at /sys/fs/bpf' : 'not mounted at /sys/fs/bpf (nothing is pinned today; mount -t bpf bpf /sys/fs/bpf)',
  });
  checks.push(
    check('libbpf', () => {
      const major = libbpf.libbpf_major_version() as number;
      const minor = libbpf.libbpf_minor_version() as number;
      return major >= 1 ? { status: 'ok', detail: `${major}.${minor}` } : { status: 'fail', detail: `${major}.${minor}: needs 1.0 or later (apt-get install libbpf1)` };
    }),
  );
  const limit = memlockLimit();
  checks.push({
    name: 'memlock',
    status: 'ok',
    detail: f.memcgAccounting
      ? `limit ${limit}; not used: the kernel charges BPF memory to the cgroup`
      : `limit ${limit}; libbpf raises it before loading on this kernel`,
  });
  if (!missing.length) {
    checks.push(
      await (async (): Promise<Check> => {
        const t0 = process.hrtime.bigint();
        try {
          const mon = await NetworkMonitor.create();
          await mon.close();
          return { name: 'programs', status: 'ok', detail: `the verifier accepts them (${Number(process.hrtime.bigint() - t0) / 1e6 | 0} ms to load)` };
        } catch (err) {
          return { name: 'programs', status: 'fail', detail: err instanceof Error ? err.message.split('\n')[0]! : String(err) };
        }
      })(),
    );
  }
  for (const name of listInterfaces().filter((n) => n !== 'lo')) {
    checks.push(
      check(`xdp ${name}`, () => {
        const auto = autoXdpMode(name);
        return { status: 'ok', detail: auto.mode ? `native by default (${auto.reason})` : `${auto.reason}; TC both ways` };
      }),
    );
  }
  return checks;
}

export function formatChecks(checks: readonly Check[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  const lines = checks.map((c) => `  ${c.status.padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}`);
  const fails = checks.filter((c) => c.status === 'fail').length;
  const warns = checks.filter((c) => c.status === 'warn').length;
  lines.push(
    fails
      ? `the agent cannot run here: ${fails} check${fails > 1 ? 's' : ''} failed`
      : `the agent can run here${warns ? ` (${warns} warning${warns > 1 ? 's' : ''})` : ''}`,
  );
  return lines.join('\n');
}
