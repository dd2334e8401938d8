/**
 * The agent's configuration: one schema describes the flags, the
 * environment variables and the config file. Later sources win: defaults,
 * then the file, then the environment, then flags. Invalid config is
 * rejected at start with the field named.
 */
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { KubeNetProbeError } from '../errors.js';
import { MAIN_INTERFACE, interfaceMatcher } from './interface-watcher.js';
import { DEFAULT_DETECTOR_CONFIG, DEFAULT_ENFORCED, DETECTORS, mergeDetectorConfig, type DetectorConfig } from '../monitor/detectors.js';
import { parseCidr } from '../abi/ip.js';
import { pageSize } from '../loader/ringbuf.js';

const listen = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/, 'expected HOST:PORT, e.g. 127.0.0.1:9470')
  .refine((s) => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, 'port must be at most 65535');

const ms = (dflt: number) => z.coerce.number().int().positive().default(dflt);

const detectorName = z.enum(DETECTORS);
const cidr = z.string().superRefine((s, ctx) => {
  if (!parseCidr(s)) ctx.addIssue({ code: 'custom', message: `not a CIDR block: ${JSON.stringify(s)} (e.g. 10.0.0.0/8 or fd00::/8)` });
});
/** An http(s) URL, for otlpEndpoint. */
const otlpEndpoint = z.string().superRefine((s, ctx) => {
  let u: URL | undefined;
  try {
    u = new URL(s);
  } catch {
    // reported below
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) {
    ctx.addIssue({ code: 'custom', message: `must be an http:// or https:// URL, e.g. http://otel-collector:4318; got ${JSON.stringify(s)}` });
  }
});

const DAY_MS = 86_400_000;
/** The history store's smallest size limit (MIN_MAX_BYTES in src/history/history-store.ts, not imported: that module loads DuckDB). */
const HISTORY_MIN_BYTES = 4 * 1024 * 1024;
/** The history file: a path (DuckDB's ':memory:' is not one; the store keeps history in memory by itself when the file can't be used). */
const historyPath = z.string().superRefine((s, ctx) => {
  const fail = (why: string): void => ctx.addIssue({ code: 'custom', message: `${why}, e.g. /var/lib/kubenetprobe/history.duckdb` });
  if (s.trim() === '') fail('give a file path');
  else if (s === ':memory:' || s.includes('\0')) fail(`not a file path: ${JSON.stringify(s)}`);
  else if (s.endsWith('/') || isDirectory(s)) fail(`a file path, not a directory: ${JSON.stringify(s)}`);
});

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/**
 * Collector headers: an object in the file, "name=value" pairs (a list, or
 * comma-separated as OTEL_EXPORTER_OTLP_HEADERS, values percent-decoded)
 * from flags and the environment.
 */
const otlpHeaders = z
  .union([z.record(z.string(), z.string()), z.array(z.string()), z.string()])
  .transform((v, ctx): Record<string, string> => {
    let pairs: [string, string][];
    if (typeof v === 'object' && !Array.isArray(v)) {
      pairs = Object.entries(v);
    } else {
      pairs = [];
      for (const item of (Array.isArray(v) ? v : [v]).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean)) {
        const eq = item.indexOf('=');
        if (eq <= 0) {
          ctx.addIssue({ code: 'custom', message: `expected name=value, got ${JSON.stringify(item)}` });
          return {};
        }
        let value = item.slice(eq + 1).trim();
        try {
          value = decodeURIComponent(value);
        } catch {
          // not percent-encoded: taken as it is
        }
        pairs.push([item.slice(0, eq).trim(), value]);
      }
    }
    for (const [name, value] of pairs) {
      if (!HEADER_NAME.test(name)) ctx.addIssue({ code: 'custom', message: `not an HTTP header name: ${JSON.stringify(name)}` });
      else if (/[\r\n\0]/.test(value)) ctx.addIssue({ code: 'custom', message: `the value of ${name} has a line break or NUL` });
    }
    return Object.fromEntries(pairs);
  });

/** A whole number; its range is the detectors' own (mergeDetectorConfig), checked below. */
const whole = z.coerce.number().int();

/** Detector thresholds: the library's DetectorConfig less mode, enforce and blockTtlMs (top-level here). */
const detectorsSchema = z
  .object({
    /** Detectors that run (default: all). */
    enabled: z.array(detectorName).optional(),
    windowMs: whole.optional(),
    eventIntervalMs: whole.optional(),
    maxEventsPerSecond: whole.optional(),
    synFloodSyns: whole.optional(),
    synFloodHalfOpenPercent: whole.optional(),
    portScanPorts: whole.optional(),
    udpScanPorts: whole.optional(),
    icmpFloodPackets: whole.optional(),
    pingSweepHosts: whole.optional(),
  })
  .strict()
  .default({});

export type DetectorSettings = z.infer<typeof detectorsSchema>;

export const configSchema = z
  .object({
    /**
     * Interface names or globs to attach to; "@main" is the node's main interface (the one its default
     * route goes out of). Default: eth0, or only @main with attachPods.
     */
    interface: z.array(z.string()).optional(),
    /** Attach to each local pod's host-side interface, found from the pod's IP, as pods start and go. */
    attachPods: z
      .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])], { error: () => 'must be true or false' })
      .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes')
      .default(false),
    /** HOST:PORT the API listens on. */
    listen: listen.default('127.0.0.1:9470'),
    xdp: z.enum(['auto', 'off', 'native', 'generic']).default('auto'),
    flowTableCapacity: z.coerce.number().int().min(1).max(1 << 22).default(65536),
    packetSampleRate: z.coerce.number().int().min(0).default(100),
    intervalMs: ms(1000),
    idleTimeoutMs: ms(15000),
    /** A TCP flow that has seen a FIN or RST leaves the table once idle this long. */
    endedTimeoutMs: ms(2000),
    activeTimeoutMs: ms(60000),
    /** How many finished flows and events stay queryable in memory. */
    recentFlows: z.coerce.number().int().min(0).max(1_000_000).default(10000),
    recentEvents: z.coerce.number().int().min(0).max(1_000_000).default(1000),
    /** Pods that get metric series of their own (top by bytes); the rest are summed under pod="other". */
    podSeriesBudget: z.coerce.number().int().min(0).max(10_000).default(100),
    /** A JSON file mapping pod IPs to name, namespace and labels (identity without a cluster). */
    inventory: z.string().min(1).optional(),
    /** audit: detect and report; enforce: also drop sources the `enforce` detectors flag. */
    mode: z.enum(['audit', 'enforce']).default('audit'),
    /** In enforce mode, the detectors whose flagged sources are blocked. */
    enforce: z.array(detectorName).default([...DEFAULT_ENFORCED]),
    /** How long a blocked source stays blocked (ms); 0 = until lifted. */
    blockTtlMs: whole.default(DEFAULT_DETECTOR_CONFIG.blockTtlMs),
    /** CIDR blocks (or single addresses) that are never blocked. */
    allowlist: z.array(cidr).default([]),
    /** Interface names or globs on which frames from martian sources (loopback, multicast, reserved) are reported. */
    martians: z.array(z.string()).default([]),
    /** Security-event ring size in bytes (power of two, at least a page). */
    securityEventRingBytes: z.coerce
      .number()
      .int()
      .min(pageSize)
      .max(1 << 30)
      .refine((n) => (n & (n - 1)) === 0, 'must be a power of two')
      .default(256 << 10),
    // --- export (src/export/): JSON lines and OTLP; both off unless set ---
    /** Flow records and events as JSON lines: 'stdout' or a file path (rotated by size). */
    exportJsonLines: z.string().min(1, "give 'stdout' or a file path").optional(),
    /** The JSON lines file rotates before it would grow past this many bytes. */
    exportMaxBytes: z.coerce.number().int().min(1024).max(2 ** 40).default(100 << 20),
    /** Rotated JSON lines files kept (path.1 .. path.N); 0 keeps none. */
    exportKeepFiles: z.coerce.number().int().min(0).max(1000).default(5),
    /** OTLP/HTTP collector for the same records: a base URL (http://collector:4318) or the full /v1/logs URL. */
    otlpEndpoint: otlpEndpoint.optional(),
    /** Extra headers for the collector: {"name": "value"}, or "name=value,name=value" as OTEL_EXPORTER_OTLP_HEADERS. */
    otlpHeaders: otlpHeaders.optional(),
    /** How OTLP is encoded: protobuf (OTLP's default) or JSON. */
    otlpProtocol: z.enum(['http/protobuf', 'http/json']).default('http/protobuf'),
    // --- end export ---
    // --- flow history (src/history/): off unless set ---
    /** Flow records and security events kept in this DuckDB file, for `observe --since` and the API's time ranges. */
    history: historyPath.optional(),
    /** History rows older than this (ms) are deleted. */
    historyRetentionMs: z.coerce.number().int().min(60_000, 'must be at least 60000 (a minute)').max(100 * 365 * DAY_MS).default(7 * DAY_MS),
    /** The history file (with its WAL) is kept under this many bytes, the oldest rows deleted first. */
    historyMaxBytes: z.coerce
      .number()
      .int()
      .min(HISTORY_MIN_BYTES, `must be at least ${HISTORY_MIN_BYTES} (4 MiB)`)
      .max(2 ** 50)
      .default(1 << 30),
    // --- end history ---
    // --- Kubernetes identity (src/k8s/): off unless set ---
    /**
     * Where pod identity comes from besides the inventory: off; in-cluster (the pod's service account);
     * kubeconfig (the file in `kubeconfig`); auto (in-cluster when KUBERNETES_SERVICE_HOST is set, else the kubeconfig if given, else off).
     */
    kubernetes: z.enum(['off', 'auto', 'in-cluster', 'kubeconfig']).default('off'),
    /** A kubeconfig file, for kubernetes: kubeconfig (or auto outside a cluster). */
    kubeconfig: z.string().min(1, 'give a file path').optional(),
    /** This node's name: its pods get per-pod metrics. Default: $NODE_NAME (the DaemonSet sets it). */
    nodeName: z.string().min(1).optional(),
    /** How long the start waits for the cluster's first lists (ms) before going on without identity (it keeps trying). */
    kubernetesTimeoutMs: ms(15000),
    /** Pod label keys kept in identity (exact keys, or prefixes ending in "*"). */
    identityLabels: z.array(z.string().min(1)).default(['app', 'app.kubernetes.io/name', 'app.kubernetes.io/component', 'k8s-app']),
    // --- end Kubernetes ---
    detectors: detectorsSchema,
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.interface?.length === 0 && !c.attachPods) {
      ctx.addIssue({ code: 'custom', path: ['interface'], message: 'name at least one interface or glob (e.g. eth0 or "veth*"), or turn on attachPods' });
    }
    for (const field of ['interface', 'martians'] as const) {
      const patterns = (c[field] ?? []).filter((p) => field !== 'interface' || p !== MAIN_INTERFACE);
      if (patterns.length === 0) continue;
      try {
        interfaceMatcher(patterns);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: [field], message: firstLine(err) });
      }
    }
    // Ranges are the library's: ask it, one field at a time, so the error names the field.
    const check = (path: string[], change: Partial<DetectorConfig>): void => {
      try {
        mergeDetectorConfig(DEFAULT_DETECTOR_CONFIG, change);
      } catch (err) {
        // "detectors.portScanPorts must be ..." -> "must be ..."
        const message = firstLine(err).replace(/^detectors\.\w+:?\s*/, '');
        ctx.addIssue({ code: 'custom', path, message });
      }
    };
    if (c.kubernetes === 'kubeconfig' && c.kubeconfig === undefined) {
      ctx.addIssue({ code: 'custom', path: ['kubeconfig'], message: 'kubernetes is kubeconfig: give the kubeconfig file' });
    }
    check(['blockTtlMs'], { blockTtlMs: c.blockTtlMs });
    for (const [field, value] of Object.entries(c.detectors)) {
      if (field !== 'enabled' && value !== undefined) check(['detectors', field], { [field]: value });
    }
  });

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

export type AgentConfig = Omit<z.infer<typeof configSchema>, 'interface'> & { interface: string[] };
export type ConfigInput = z.input<typeof configSchema>;

type TopField = Exclude<keyof AgentConfig, 'detectors'>;
type DetectorField = keyof DetectorSettings;

/** Environment variables, by config field. */
export const ENV: Record<TopField, string> = {
  interface: 'KUBENETPROBE_INTERFACE',
  attachPods: 'KUBENETPROBE_ATTACH_PODS',
  listen: 'KUBENETPROBE_LISTEN',
  xdp: 'KUBENETPROBE_XDP',
  flowTableCapacity: 'KUBENETPROBE_FLOW_TABLE_CAPACITY',
  packetSampleRate: 'KUBENETPROBE_PACKET_SAMPLE_RATE',
  intervalMs: 'KUBENETPROBE_INTERVAL_MS',
  idleTimeoutMs: 'KUBENETPROBE_IDLE_TIMEOUT_MS',
  endedTimeoutMs: 'KUBENETPROBE_ENDED_TIMEOUT_MS',
  activeTimeoutMs: 'KUBENETPROBE_ACTIVE_TIMEOUT_MS',
  recentFlows: 'KUBENETPROBE_RECENT_FLOWS',
  recentEvents: 'KUBENETPROBE_RECENT_EVENTS',
  podSeriesBudget: 'KUBENETPROBE_POD_SERIES_BUDGET',
  inventory: 'KUBENETPROBE_INVENTORY',
  mode: 'KUBENETPROBE_MODE',
  enforce: 'KUBENETPROBE_ENFORCE',
  blockTtlMs: 'KUBENETPROBE_BLOCK_TTL_MS',
  allowlist: 'KUBENETPROBE_ALLOWLIST',
  martians: 'KUBENETPROBE_MARTIANS',
  securityEventRingBytes: 'KUBENETPROBE_SECURITY_EVENT_RING_BYTES',
  exportJsonLines: 'KUBENETPROBE_EXPORT_JSON_LINES',
  exportMaxBytes: 'KUBENETPROBE_EXPORT_MAX_BYTES',
  exportKeepFiles: 'KUBENETPROBE_EXPORT_KEEP_FILES',
  otlpEndpoint: 'KUBENETPROBE_OTLP_ENDPOINT',
  otlpHeaders: 'KUBENETPROBE_OTLP_HEADERS',
  otlpProtocol: 'KUBENETPROBE_OTLP_PROTOCOL',
  history: 'KUBENETPROBE_HISTORY',
  historyRetentionMs: 'KUBENETPROBE_HISTORY_RETENTION_MS',
  historyMaxBytes: 'KUBENETPROBE_HISTORY_MAX_BYTES',
  kubernetes: 'KUBENETPROBE_KUBERNETES',
  kubeconfig: 'KUBENETPROBE_KUBECONFIG',
  kubernetesTimeoutMs: 'KUBENETPROBE_KUBERNETES_TIMEOUT_MS',
  nodeName: 'KUBENETPROBE_NODE_NAME',
  identityLabels: 'KUBENETPROBE_IDENTITY_LABELS',
};

/** Environment variables for the `detectors` fields. */
export const DETECTOR_ENV: Record<DetectorField, string> = {
  enabled: 'KUBENETPROBE_DETECTORS',
  windowMs: 'KUBENETPROBE_WINDOW_MS',
  eventIntervalMs: 'KUBENETPROBE_EVENT_INTERVAL_MS',
  maxEventsPerSecond: 'KUBENETPROBE_MAX_EVENTS_PER_SECOND',
  synFloodSyns: 'KUBENETPROBE_SYN_FLOOD_SYNS',
  synFloodHalfOpenPercent: 'KUBENETPROBE_SYN_FLOOD_HALF_OPEN_PERCENT',
  portScanPorts: 'KUBENETPROBE_PORT_SCAN_PORTS',
  udpScanPorts: 'KUBENETPROBE_UDP_SCAN_PORTS',
  icmpFloodPackets: 'KUBENETPROBE_ICMP_FLOOD_PACKETS',
  pingSweepHosts: 'KUBENETPROBE_PING_SWEEP_HOSTS',
};

/** Fields that are lists: comma-separated in the environment. */
const LISTS = new Set<string>(['interface', 'enforce', 'allowlist', 'martians', 'enabled', 'identityLabels']);

export class ConfigError extends KubeNetProbeError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message, { hint: 'see `kubenetprobe agent --help` for every setting' });
  }
}

const splitList = (v: string): string[] => v.split(',').map((s) => s.trim()).filter(Boolean);

function fromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const read = (table: Record<string, string>): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [field, name] of Object.entries(table)) {
      const v = env[name];
      if (v === undefined || v === '') continue;
      out[field] = LISTS.has(field) ? splitList(v) : v;
    }
    return out;
  };
  const out = read(ENV);
  // The DaemonSet sets NODE_NAME from spec.nodeName.
  if (out['nodeName'] === undefined && env['NODE_NAME']) out['nodeName'] = env['NODE_NAME'];
  const detectors = read(DETECTOR_ENV);
  if (Object.keys(detectors).length) out['detectors'] = detectors;
  return out;
}

function fromFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`config file ${path}: not a JSON object (${(err as Error).message})`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const defined = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/** Later sources win, field by field; `detectors` is merged one level down. */
function mergeSources(...sources: Record<string, unknown>[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of sources) {
    for (const [k, v] of Object.entries(defined(s))) {
      out[k] = k === 'detectors' && isObject(v) && isObject(out[k]) ? { ...out[k], ...defined(v) } : v;
    }
  }
  return out;
}

/**
 * Merges the sources and validates them; throws ConfigError naming the
 * field. Flags come in the schema's shape (thresholds under `detectors`).
 */
export function loadConfig(sources: { flags?: Record<string, unknown>; env?: NodeJS.ProcessEnv; file?: string }): AgentConfig {
  const flags = { ...(sources.flags ?? {}) };
  if (isObject(flags['detectors'])) flags['detectors'] = defined(flags['detectors']);
  const merged = mergeSources(sources.file ? fromFile(sources.file) : {}, fromEnv(sources.env ?? {}), flags);
  const r = configSchema.safeParse(merged);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
    const field = path.join('.') || 'config';
    const settings = issue.path[0] === 'detectors' ? Object.keys(DETECTOR_ENV) : [...Object.keys(ENV), 'detectors'];
    throw new ConfigError(`invalid config: ${field}: ${issue.code === 'unrecognized_keys' ? `not a setting (settings here: ${settings.join(', ')})` : issue.message}`);
  }
  return { ...r.data, interface: r.data.interface ?? (r.data.attachPods ? [MAIN_INTERFACE] : ['eth0']) };
}

/**
 * How the agent reaches the cluster for identity, from `kubernetes` and
 * `kubeconfig`: undefined when it does not.
 */
export function kubernetesSource(c: AgentConfig, env: NodeJS.ProcessEnv = process.env): { inCluster: true } | { kubeconfig: string } | undefined {
  switch (c.kubernetes) {
    case 'off':
      return undefined;
    case 'in-cluster':
      return { inCluster: true };
    case 'kubeconfig':
      return c.kubeconfig !== undefined ? { kubeconfig: c.kubeconfig } : undefined;
    case 'auto':
      if (env['KUBERNETES_SERVICE_HOST']) return { inCluster: true };
      return c.kubeconfig !== undefined ? { kubeconfig: c.kubeconfig } : undefined;
  }
}

/** The library's detector settings for a config. */
export function detectorOptions(c: AgentConfig): Partial<DetectorConfig> {
  return { ...defined(c.detectors), mode: c.mode, enforce: c.enforce, blockTtlMs: c.blockTtlMs };
}

export function parseListen(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}
