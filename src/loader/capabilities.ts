/** Effective capabilities of this process, from /proc/self/status. */
import { readFileSync } from 'node:fs';

const CAPS = { CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21, CAP_PERFMON: 38, CAP_BPF: 39 } as const;
export type CapabilityName = keyof typeof CAPS;

function effective(): bigint {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? BigInt(`0x${m[1]}`) : 0n;
  } catch {
    return 0n;
  }
}

export function hasCapability(name: CapabilityName, eff = effective()): boolean {
  return (eff & (1n << BigInt(CAPS[name]))) !== 0n;
}

/**
 * Which capabilities are missing to load and attach our programs: CAP_BPF
 * and CAP_PERFMON (both implied by CAP_SYS_ADMIN) and CAP_NET_ADMIN.
 */
export function missingCapabilities(needed: readonly CapabilityName[]): CapabilityName[] {
  const eff = effective();
  const sysAdmin = hasCapability('CAP_SYS_ADMIN', eff);
  return needed.filter((c) => {
    if (hasCapability(c, eff)) return false;
    return !(sysAdmin && (c === 'CAP_BPF' || c === 'CAP_PERFMON'));
  });
}
