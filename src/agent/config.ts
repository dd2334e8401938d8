/**
 * The agent's configuration: one schema describes the flags, the
 * environment variables and the config file. Later sources win: defaults,
 * then the file, then the environment, then flags. Invalid config is
 * rejected at start with the field named.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { KubeNetProbeError } from '../errors.js';
import { interfaceMatcher } from './interface-watcher.js';

const listen = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/, 'expected HOST:PORT, e.g. 127.0.0.1:9470')
  .refine((s) => Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, 'port must be at most 65535');

const ms = (dflt: number) => z.coerce.number().int().positive().default(dflt);

export const configSchema = z
  .object({
    /** Interface names or globs to attach to. */
    interface: z.array(z.string()).min(1, 'name at least one interface or glob').default(['eth0']),
    /** HOST:PORT the API listens on. */
    listen: listen.default('127.0.0.1:9470'),
    xdp: z.enum(['auto', 'off', 'native', 'generic']).default('auto'),
    flowTableCapacity: z.coerce.number().int().min(1).max(1 << 22).default(65536),
    packetSampleRate: z.coerce.number().int().min(0).default(100),
    intervalMs: ms(1000),
    idleTimeoutMs: ms(15000),
    activeTimeoutMs: ms(60000),
    /** How many finished flows and events stay queryable in memory. */
    recentFlows: z.coerce.number().int().min(0).max(1_000_000).default(10000),
    recentEvents: z.coerce.number().int().min(0).max(1_000_000).default(1000),
    /** A JSON file mapping pod IPs to name, namespace and labels (identity without a cluster). */
    inventory: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    try {
      interfaceMatcher(c.interface);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['interface'], message: (err as Error).message });
    }
  });

export type AgentConfig = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** Environment variables, by config field. */
export const ENV: Record<keyof AgentConfig, string> = {
  interface: 'KUBENETPROBE_INTERFACE',
  listen: 'KUBENETPROBE_LISTEN',
  xdp: 'KUBENETPROBE_XDP',
  flowTableCapacity: 'KUBENETPROBE_FLOW_TABLE_CAPACITY',
  packetSampleRate: 'KUBENETPROBE_PACKET_SAMPLE_RATE',
  intervalMs: 'KUBENETPROBE_INTERVAL_MS',
  idleTimeoutMs: 'KUBENETPROBE_IDLE_TIMEOUT_MS',
  activeTimeoutMs: 'KUBENETPROBE_ACTIVE_TIMEOUT_MS',
  recentFlows: 'KUBENETPROBE_RECENT_FLOWS',
  recentEvents: 'KUBENETPROBE_RECENT_EVENTS',
  inventory: 'KUBENETPROBE_INVENTORY',
};

export class ConfigError extends KubeNetProbeError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message, { hint: 'see `kubenetprobe agent --help` for every setting' });
  }
}

function fromEnv(env: NodeJS.ProcessEnv): Partial<Record<keyof AgentConfig, unknown>> {
  const out: Partial<Record<keyof AgentConfig, unknown>> = {};
  for (const [field, name] of Object.entries(ENV) as [keyof AgentConfig, string][]) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    out[field] = field === 'interface' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v;
  }
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

/** Merges the sources and validates them; throws ConfigError naming the field. */
export function loadConfig(sources: { flags?: Record<string, unknown>; env?: NodeJS.ProcessEnv; file?: string }): AgentConfig {
  const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  const merged = {
    ...(sources.file ? fromFile(sources.file) : {}),
    ...fromEnv(sources.env ?? {}),
    ...defined(sources.flags ?? {}),
  };
  const r = configSchema.safeParse(merged);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : 'config');
    throw new ConfigError(`invalid config: ${field}: ${issue.message}`);
  }
  return r.data;
}

export function parseListen(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}
