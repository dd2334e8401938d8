/**
 * The detectors' settings: thresholds, which detectors run, and audit or
 * enforce mode. They live in the kernel as `knp_detect_cfg` (struct
 * knp_detect_config in .data): set before load from the monitor's options,
 * and rewritten at run time by NetworkMonitor.configureDetectors().
 */
import { DETECT_CONFIG, SECURITY_TYPE_NUMBER, type KernelSecurityType } from '../abi/layouts.js';
import { InvalidArgumentError } from '../errors.js';

/** Every detector, by the type of event it raises. */
export const DETECTORS = [
  'tcp-null-scan',
  'tcp-xmas-scan',
  'tcp-syn-fin',
  'tcp-syn-rst',
  'tcp-fin-scan',
  'syn-flood',
  'tcp-port-scan',
  'udp-port-scan',
  'icmp-flood',
  'ping-sweep',
  'land',
  'martian-source',
] as const satisfies readonly KernelSecurityType[];
export type DetectorName = (typeof DETECTORS)[number];

/** The single-packet TCP flag checks (the old detectTcpFlagAnomalies option). */
export const TCP_FLAG_DETECTORS: readonly DetectorName[] = ['tcp-null-scan', 'tcp-xmas-scan', 'tcp-syn-fin', 'tcp-syn-rst', 'tcp-fin-scan'];

/** Blocked in enforce mode unless said otherwise: the detectors that name a real attacker. */
export const DEFAULT_ENFORCED: readonly DetectorName[] = ['tcp-port-scan', 'udp-port-scan', 'ping-sweep', 'syn-flood', 'icmp-flood'];

export interface DetectorConfig {
  /** Detectors that run. Default: all. */
  enabled: DetectorName[];
  /** 'audit' (default) reports; 'enforce' also drops sources flagged by the `enforce` detectors. */
  mode: 'audit' | 'enforce';
  /** In enforce mode, the detectors whose flagged sources are blocked. */
  enforce: DetectorName[];
  /** How long a blocked source stays blocked, ms; 0 = until lifted. Default 300000. */
  blockTtlMs: number;
  /** Detector window, ms (counts start afresh after it). Default 1000. */
  windowMs: number;
  /** At most one event per subject (source or target) and type per this, ms. Default 1000. */
  eventIntervalMs: number;
  /** Cap on security events per second per CPU, over all types and subjects. Default 1000. */
  maxEventsPerSecond: number;
  /** SYN flood: SYNs to one destination per window, */
  synFloodSyns: number;
  /** of which at least this percentage never completed the handshake. */
  synFloodHalfOpenPercent: number;
  /** TCP port scan: distinct ports one source probes per window. */
  portScanPorts: number;
  /** UDP port scan: distinct ports one source probes per window. */
  udpScanPorts: number;
  /** ICMP flood: echo requests to one destination per window. */
  icmpFloodPackets: number;
  /** Ping sweep: distinct hosts one source pings per window. */
  pingSweepHosts: number;
}

export const DEFAULT_DETECTOR_CONFIG: Readonly<DetectorConfig> = Object.freeze({
  enabled: [...DETECTORS],
  mode: 'audit',
  enforce: [...DEFAULT_ENFORCED],
  blockTtlMs: 300_000,
  windowMs: 1000,
  eventIntervalMs: 1000,
  maxEventsPerSecond: 1000,
  synFloodSyns: 1000,
  synFloodHalfOpenPercent: 80,
  portScanPorts: 20,
  udpScanPorts: 20,
  icmpFloodPackets: 1000,
  pingSweepHosts: 10,
});

const U32 = 0xffffffff;
const LIMITS: Record<Exclude<keyof DetectorConfig, 'enabled' | 'mode' | 'enforce'>, [min: number, max: number]> = {
  blockTtlMs: [0, 365 * 86_400_000],
  windowMs: [1, 3_600_000],
  eventIntervalMs: [0, 3_600_000],
  maxEventsPerSecond: [1, U32],
  synFloodSyns: [1, U32],
  synFloodHalfOpenPercent: [0, 100],
  portScanPorts: [1, 512],
  udpScanPorts: [1, 512],
  icmpFloodPackets: [1, U32],
  pingSweepHosts: [1, 512],
};

/** `base` with `change` applied, checked field by field; the error names the field. */
export function mergeDetectorConfig(base: Readonly<DetectorConfig>, change: Partial<DetectorConfig>): DetectorConfig {
  const out: DetectorConfig = { ...base, enabled: [...base.enabled], enforce: [...base.enforce] };
  for (const [field, value] of Object.entries(change) as [keyof DetectorConfig, unknown][]) {
    if (value === undefined) continue;
    if (field === 'enabled' || field === 'enforce') {
      if (!Array.isArray(value)) throw new InvalidArgumentError(`detectors.${field} must be a list of detector names`);
      const bad = value.find((d) => !(DETECTORS as readonly unknown[]).includes(d));
      if (bad !== undefined) throw new InvalidArgumentError(`detectors.${field}: unknown detector ${JSON.stringify(bad)}`, `detectors are: ${DETECTORS.join(', ')}`);
      out[field] = [...new Set(value as DetectorName[])];
    } else if (field === 'mode') {
      if (value !== 'audit' && value !== 'enforce') throw new InvalidArgumentError(`detectors.mode must be audit or enforce, got ${JSON.stringify(value)}`);
      out.mode = value;
    } else if (field in LIMITS) {
      const [min, max] = LIMITS[field as keyof typeof LIMITS];
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
        throw new InvalidArgumentError(`detectors.${field} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
      }
      out[field as keyof typeof LIMITS] = value;
    } else {
      throw new InvalidArgumentError(`detectors.${String(field)} is not a detector setting`, `settings are: ${Object.keys(DEFAULT_DETECTOR_CONFIG).join(', ')}`);
    }
  }
  return out;
}

const mask = (names: readonly DetectorName[]): number => names.reduce((m, n) => (m | (1 << SECURITY_TYPE_NUMBER[n])) >>> 0, 0);

/** The kernel's struct knp_detect_config for `cfg`. `checkBlocks`: look sources up in the block table. */
export function encodeDetectorConfig(cfg: DetectorConfig, checkBlocks: boolean): Buffer {
  const b = Buffer.alloc(DETECT_CONFIG.size);
  const o = DETECT_CONFIG.offsets;
  const ms = (n: number): bigint => BigInt(n) * 1_000_000n;
  b.writeBigUInt64LE(ms(cfg.windowMs), o.window_ns);
  b.writeBigUInt64LE(ms(cfg.eventIntervalMs), o.event_interval_ns);
  b.writeBigUInt64LE(ms(cfg.blockTtlMs), o.block_ttl_ns);
  b.writeUInt32LE(mask(cfg.enabled), o.enabled);
  b.writeUInt32LE(cfg.mode === 'enforce' ? mask(cfg.enforce) : 0, o.enforce);
  b.writeUInt32LE(checkBlocks ? 1 : 0, o.check_blocks);
  b.writeUInt32LE(cfg.maxEventsPerSecond, o.max_events_per_sec);
  b.writeUInt32LE(cfg.synFloodSyns, o.syn_flood_syns);
  b.writeUInt32LE(cfg.synFloodHalfOpenPercent, o.syn_flood_half_open_pct);
  b.writeUInt32LE(cfg.portScanPorts, o.port_scan_ports);
  b.writeUInt32LE(cfg.udpScanPorts, o.udp_scan_ports);
  b.writeUInt32LE(cfg.icmpFloodPackets, o.icmp_flood_packets);
  b.writeUInt32LE(cfg.pingSweepHosts, o.ping_sweep_hosts);
  return b;
}
