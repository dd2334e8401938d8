#!/usr/bin/env -S node --max-semi-space-size=8
/**
 * The kubenetprobe command. One error hierarchy becomes exit codes and
 * messages here, in one place: a KubeNetProbeError prints its message and
 * hint (exit 2), anything else is a bug and prints its stack (exit 70).
 *
 * The node flags on the first line are how the agent is meant to run (the
 * image's entrypoint and scripts/demo.sh pass the same; bench/overhead reads
 * them from here; test/node-flags.test.ts holds them together): V8's young
 * generation, left to grow, reaches 32 MB a semi-space under connection
 * churn and the agent's RSS peaked at 146–159 MB; at 8 MB it peaked at
 * 124–126 MB for the same CPU (docs/performance.md).
 */
import { Command, Option } from 'commander';
import { KubeNetProbeError } from '../errors.js';
import { DEFAULT_SERVER, apiGet, apiSend, apiText, followEvents, openStream } from './client.js';
import {
  blockChangeCompact,
  blockChangeLine,
  flowLine,
  lostCompact,
  lostLine,
  renderBlocks,
  renderFlows,
  renderHistoryFlows,
  renderSecurityEvents,
  renderStats,
  securityCompact,
  securityLine,
  type BlockChangeWire,
  type BlockWire,
  type FlowWire,
  type HistoryFlowWire,
  type LostWire,
  type OutputFormat,
  type SecurityEventWire,
} from './render.js';
import type { AgentStats } from '../agent/agent.js';
import { SECURITY_EVENT_TYPES } from '../agent/security-filter.js';
import { DEFAULT_DETECTOR_CONFIG, DEFAULT_ENFORCED } from '../monitor/detectors.js';
import { parseTimeRange } from '../history/time-range.js';
import { formatBytes } from '../format.js';

const program = new Command()
  .name('kubenetprobe')
  .description('eBPF network monitor for Kubernetes nodes')
  .showHelpAfterError()
  // A command's options go after its name (`blocks -o json`, `blocks lift IP --server URL`).
  .enablePositionalOptions()
  // Usage errors exit 2, as every other usage error here does; help exits 0.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

function output(value: string): OutputFormat {
  if (value !== 'table' && value !== 'json' && value !== 'compact') {
    throw new KubeNetProbeError('INVALID_ARGUMENT', `--output must be table, json or compact, got ${value}`);
  }
  return value;
}

program
  .command('doctor')
  .description('check privileges, kernel, BTF, bpffs, TCX, ring buffers, libbpf, memlock and XDP per interface; exit 1 when the agent cannot run')
  .option('-o, --output <format>', 'table or json', 'table')
  .action(async (opts: { output: string }) => {
    if (opts.output !== 'table' && opts.output !== 'json') throw new KubeNetProbeError('INVALID_ARGUMENT', `--output must be table or json, got ${opts.output}`);
    const { formatChecks, runChecks } = await import('./doctor.js');
    const checks = await runChecks();
    process.stdout.write(opts.output === 'json' ? `${JSON.stringify(checks)}\n` : `${formatChecks(checks)}\n`);
    process.exitCode = checks.some((c) => c.status === 'fail') ? 1 : 0;
  });

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];
/** A list flag: repeat it, or give several comma-separated. */
const collectList = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), ...v.split(',').map((s) => s.trim()).filter(Boolean)];

/** A whole number flag from `min`. */
function whole(flag: string, value: string, min: number): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < min) throw new KubeNetProbeError('INVALID_ARGUMENT', `${flag} must be a whole number from ${min}, got ${value}`);
  return Number(value);
}

/** 7 d, 36 h, 90 min, 45 s: the largest unit that divides it, else hours. */
function span(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['min', 60_000], ['s', 1000]] as const) if (ms % size === 0) return `${ms / size} ${unit}`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** --since and --until, as every history command takes them. */
interface TimeOpts {
  since?: string;
  until?: string;
}

const TIME_HELP = 'a duration back from now (30s, 10m, 1h, 2d), now, or an ISO 8601 time';

/**
 * The --since/--until query for the API, or undefined when neither is given.
 * Checked here first, so a bad value is a usage error naming the flag.
 * Durations and "now" go as they are (the agent counts back from its own
 * clock, the one its records are stamped with); a time without a zone is
 * local time here, so times go as UTC.
 */
function timeQuery(o: TimeOpts & { follow?: boolean }): { since?: string; until?: string } | undefined {
  if (o.since === undefined && o.until === undefined) return undefined;
  if (o.follow) {
    throw new KubeNetProbeError('INVALID_ARGUMENT', '--since/--until and --follow do not go together', {
      hint: '--since and --until read the history; --follow prints what comes from now on. Run one, then the other',
    });
  }
  const range = parseTimeRange({ since: o.since, until: o.until });
  const wire = (raw: string | undefined, d: Date | undefined): string | undefined =>
    raw === undefined || d === undefined ? undefined : /^(\d+[smhd]|now)$/i.test(raw.trim()) ? raw.trim() : d.toISOString();
  const q: { since?: string; until?: string } = {};
  const since = wire(o.since, range.since);
  const until = wire(o.until, range.until);
  if (since !== undefined) q.since = since;
  if (until !== undefined) q.until = until;
  return q;
}

/** How many rows a history command asks for: --last if given, else 1000 (and it says when there may be more). */
function historyRows(cmd: Command, last: string): { limit: number; explicit: boolean } {
  const explicit = cmd.getOptionValueSource('last') !== 'default';
  return { limit: explicit ? whole('--last', last, 1) : 1000, explicit };
}

function moreRows(shown: number, rows: { limit: number; explicit: boolean }, what: string): void {
  if (shown >= rows.limit && !rows.explicit) process.stderr.write(`kubenetprobe: showing the newest ${rows.limit} ${what} of the range; --last N shows more, a shorter range or a filter fewer\n`);
}

/**
 * Subscribes to the live stream, then prints the history, then what came
 * live meanwhile and after: nothing falls between the two.
 */
async function followAfter(server: string, query: Record<string, string | undefined>, history: () => Promise<void>, onEvent: (event: string, data: string) => void): Promise<void> {
  const res = await openStream(server, query);
  let pending: [string, string][] | undefined = [];
  let hello!: () => void;
  const subscribed = new Promise<void>((resolve) => (hello = resolve));
  const live = followEvents(res, (event, data) => {
    if (event === 'hello') hello();
    else if (pending) pending.push([event, data]);
    else onEvent(event, data);
  });
  const ended = (): KubeNetProbeError =>
    new KubeNetProbeError('SYSTEM', `the agent at ${server} ended the stream`, { hint: 'it stopped or restarted; run the command again once it is back' });
  await Promise.race([subscribed, live.catch(() => undefined)]);
  await history();
  const buffered = pending;
  pending = undefined;
  for (const [event, data] of buffered) onEvent(event, data);
  try {
    await live;
  } catch {
    throw ended();
  }
  throw ended();
}

/** Writes one event from the live stream in the chosen format; false for events it does not print. */
function printStreamEvent(event: string, data: string, format: OutputFormat): boolean {
  const line = (json: Record<string, unknown>, text: string): void => {
    process.stdout.write(`${format === 'json' ? JSON.stringify(json) : text}\n`);
  };
  if (event === 'security') {
    const e = JSON.parse(data) as SecurityEventWire;
    line(securityLine(e), securityCompact(e));
  } else if (event === 'block') {
    const c = JSON.parse(data) as BlockChangeWire;
    line(blockChangeLine(c), blockChangeCompact(c));
  } else if (event === 'lost') {
    const l = JSON.parse(data) as LostWire;
    line(lostLine(l), lostCompact(l));
  } else {
    return false;
  }
  return true;
}

program
  .command('agent')
  .description('run the agent: attach to the named interfaces as they come and go, keep flows, serve the API and the web page (needs root)')
  .option('-i, --interface <name|glob>', 'interface name or glob to attach to, or @main for the interface of the default route; repeat for more (default eth0, or @main with --attach-pods)', collect)
  .option('--attach-pods', "attach to each local pod's host-side interface (cali*, lxc*, a bridge port...), found from the pod's IP, as pods start and go; the pods are this node's from --kubernetes, and the --inventory's")
  .option('-l, --listen <host:port>', 'where the API and the web page listen (default 127.0.0.1:9470)')
  .option('-c, --config <file>', 'JSON config file with the same field names (interface, listen, xdp, ...)')
  .addOption(new Option('--xdp <mode>', 'XDP per interface').choices(['auto', 'off', 'native', 'generic']))
  .option('--flow-table-capacity <n>', 'flows the kernel table holds')
  .option('--packet-sample-rate <n>', 'one packet event per N packets; 0 = off')
  .option('--interval-ms <ms>', 'how often the flow table is read')
  .option('--idle-timeout-ms <ms>', 'a flow idle this long gets its final record and leaves the table')
  .option('--ended-timeout-ms <ms>', 'a TCP flow that has seen a FIN or RST leaves once idle this long (default 2000)')
  .option('--active-timeout-ms <ms>', 'a long flow gets a record at least this often')
  .option('--recent-flows <n>', 'finished flows kept queryable in memory')
  .option('--recent-events <n>', 'security events (and, as many again, block changes and lost-event reports) kept queryable in memory')
  .option('--inventory <file>', 'JSON file of pods (name, namespace, labels, ip): identity without a cluster')
  .addOption(new Option('--kubernetes <how>', "pod identity from the cluster: off, auto (in-cluster when KUBERNETES_SERVICE_HOST is set, else --kubeconfig if given), in-cluster, kubeconfig (default off)").choices(['off', 'auto', 'in-cluster', 'kubeconfig']))
  .option('--kubeconfig <file>', 'kubeconfig file for --kubernetes kubeconfig (or auto outside a cluster)')
  .option('--kubernetes-timeout-ms <ms>', 'how long the start waits for the first lists from the cluster before going on without identity; it keeps trying (default 15000)')
  .option('--node-name <name>', "this node's name: its pods get per-pod metrics (default $NODE_NAME)")
  .option('--identity-labels <keys>', 'pod label keys kept in identity (exact, or a prefix ending in *); comma-separated or repeated (default app,app.kubernetes.io/name,app.kubernetes.io/component,k8s-app)', collectList)
  .option('--pod-series-budget <n>', 'pods that get metric series of their own on /metrics, the top ones by bytes; the rest are summed under pod="other" (default 100)')
  .addOption(new Option('--mode <mode>', 'audit: detect and report; enforce: also drop sources the --enforce detectors flag (default audit)').choices(['audit', 'enforce']))
  .option('--enforce <detectors>', `in enforce mode, block sources flagged by these detectors; comma-separated or repeated (default ${DEFAULT_ENFORCED.join(',')})`, collectList)
  .option('--block-ttl-ms <ms>', `how long a source stays blocked; 0 = until lifted (default ${DEFAULT_DETECTOR_CONFIG.blockTtlMs})`)
  .option('--allowlist <cidr>', 'sources in this block are never blocked; comma-separated or repeated', collectList)
  .option('--martians <name|glob>', 'report frames from impossible source addresses (loopback, multicast, reserved) arriving on these interfaces', collectList)
  .option('--detectors <names>', 'the detectors that run (default all); comma-separated or repeated', collectList)
  .option('--port-scan-ports <n>', `TCP port scan: distinct ports one source probes per window (default ${DEFAULT_DETECTOR_CONFIG.portScanPorts})`)
  .option('--udp-scan-ports <n>', `UDP port scan: distinct ports one source probes per window (default ${DEFAULT_DETECTOR_CONFIG.udpScanPorts})`)
  .option('--syn-flood-syns <n>', `SYN flood: SYNs to one destination per window, mostly never completed (default ${DEFAULT_DETECTOR_CONFIG.synFloodSyns})`)
  .option('--icmp-flood-packets <n>', `ICMP flood: echo requests to one destination per window (default ${DEFAULT_DETECTOR_CONFIG.icmpFloodPackets})`)
  .option('--ping-sweep-hosts <n>', `ping sweep: distinct hosts one source pings per window (default ${DEFAULT_DETECTOR_CONFIG.pingSweepHosts})`)
  .option('--export-json-lines <stdout|file>', 'write flow records and events as JSON lines to stdout or to this file (rotated by size; reopened on SIGHUP)')
  .option('--export-max-bytes <n>', 'rotate the JSON lines file before it grows past this (default 104857600)')
  .option('--export-keep-files <n>', 'rotated JSON lines files kept: FILE.1 .. FILE.N (default 5)')
  .option('--otlp-endpoint <url>', 'also send them as OTLP logs to this collector, e.g. http://otel-collector:4318')
  .option('--otlp-headers <name=value>', 'headers for the collector; comma-separated or repeated', collectList)
  .addOption(new Option('--otlp-protocol <protocol>', 'OTLP encoding (default http/protobuf)').choices(['http/protobuf', 'http/json']))
  .option('--history <file>', 'keep flow records and security events in this DuckDB file, for observe/top/events --since (default: off)')
  .option('--history-retention-ms <ms>', 'delete history rows older than this (default 604800000, 7 days)')
  .option('--history-max-bytes <n>', 'keep the history file under this size, deleting the oldest rows first (default 1073741824, 1 GiB; at least 4 MiB)')
  .addHelpText(
    'after',
    [
      '',
      'Every setting can also come from the environment (KUBENETPROBE_INTERFACE=veth*,eth0, KUBENETPROBE_LISTEN, KUBENETPROBE_MODE, ...) or the',
      'config file; flags win over the environment, which wins over the file. The detector thresholds sit under "detectors" in the file',
      '({"detectors": {"portScanPorts": 30, "windowMs": 1000}}); windowMs, eventIntervalMs, maxEventsPerSecond, synFloodHalfOpenPercent and',
      'securityEventRingBytes have no flag. See docs/api.md for every field.',
    ].join('\n'),
  )
  .action(async (opts: Record<string, unknown>) => {
    // Loaded here, not at the top: the other commands need no kernel access.
    const { loadConfig, parseListen } = await import('../agent/config.js');
    const { Agent } = await import('../agent/agent.js');
    const { startApiServer } = await import('../api/server.js');
    const { detectors, portScanPorts, udpScanPorts, synFloodSyns, icmpFloodPackets, pingSweepHosts, config: file, ...rest } = opts;
    const flags = { ...rest, detectors: { enabled: detectors, portScanPorts, udpScanPorts, synFloodSyns, icmpFloodPackets, pingSweepHosts } };
    const config = loadConfig({ flags, env: process.env, ...(typeof file === 'string' ? { file } : {}) });
    // With JSON lines on stdout, stdout carries nothing else: the agent's own messages go to stderr.
    const say = config.exportJsonLines === 'stdout' ? process.stderr : process.stdout;
    const agent = await Agent.start(config);
    // What the history store had to do at start (a corrupt file moved aside, history in memory): nobody listened yet.
    for (const notice of agent.startNotices()) process.stderr.write(`kubenetprobe agent: ${notice}\n`);
    let api;
    try {
      api = await startApiServer(agent, parseListen(config.listen));
    } catch (err) {
      await agent.close();
      throw err;
    }
    agent.on('error', (e) => process.stderr.write(`kubenetprobe agent: ${e.message}\n`));
    // Signals first: whoever waits for "API at" below may stop the agent at once.
    const stop = (sig: string): void => {
      say.write(`kubenetprobe agent: ${sig}, detaching\n`);
      void api.close().then(() => agent.close()).then(() => process.exit(0));
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    const attached = agent.stats().interfaces.filter((i) => i.attached).map((i) => i.name);
    const pods = config.attachPods ? ` and the local pods' interfaces (${agent.stats().interfaces.filter((i) => i.pod).length} found)` : '';
    say.write(`kubenetprobe agent: watching ${config.interface.join(', ')}${pods}; attached to ${attached.join(', ') || 'nothing yet'}\n`);
    const h = agent.stats().history;
    if (h?.available) {
      say.write(
        `kubenetprobe agent: history in ${h.inMemory ? 'memory (until restart)' : h.path}: ${h.flows} flow records and ${h.events} events kept; ` +
          `kept for ${span(config.historyRetentionMs)}, at most ${formatBytes(config.historyMaxBytes)}\n`,
      );
    }
    const d = agent.detectorConfig();
    say.write(
      d.mode === 'enforce'
        ? `kubenetprobe agent: enforce mode: sources flagged by ${d.enforce.join(', ') || 'no detector'} are blocked ${d.blockTtlMs ? `for ${d.blockTtlMs / 1000} s` : 'until lifted'}${config.allowlist.length ? `; never ${config.allowlist.join(', ')}` : ''}\n`
        : `kubenetprobe agent: audit mode: ${d.enabled.length} detectors report; nothing is blocked but by hand (kubenetprobe blocks add)\n`,
    );
    // Last: the line tests and scripts wait for.
    say.write(`kubenetprobe agent: API at ${api.url}, web page at ${api.url}/, Prometheus metrics at ${api.url}/metrics\n`);
  });

/** The identity filters (observe, top, events): `ends` says which ends they look at. */
const identityOptions = (cmd: Command, ends: string): Command =>
  cmd
    .option('--namespace <ns>', `${ends} is a pod in this namespace (where identity is known)`)
    .option('--pod <name>', `${ends} is this pod: name or namespace/name`)
    .option('--workload <name>', `${ends} is a pod of this workload: name or kind/name, e.g. Deployment/web`)
    .option('--service <name>', `${ends} is a pod behind this service: name or namespace/name`)
    .option('--label <k=v>', `${ends} is a pod with this label, e.g. app=web (not with --since: the history keeps no labels)`);

const filterOptions = (cmd: Command): Command =>
  identityOptions(
    cmd
      .option('--ip <addr>', 'either end is this address')
      .option('--cidr <block>', 'either end is in this block, e.g. 10.0.0.0/8')
      .option('--port <n>', 'either end uses this port')
      .option('--protocol <name>', 'tcp, udp, icmp or icmpv6')
      .option('--direction <dir>', 'ingress or egress')
      .option('--interface <name>', 'seen on this interface'),
    'either end',
  ).option('--server <url>', 'the agent to ask', DEFAULT_SERVER);

interface IdentityOpts {
  namespace?: string;
  pod?: string;
  workload?: string;
  service?: string;
  label?: string;
}

const identityQuery = (o: IdentityOpts): Record<string, string | undefined> => ({
  namespace: o.namespace,
  pod: o.pod,
  workload: o.workload,
  service: o.service,
  label: o.label,
});

interface FilterOpts extends IdentityOpts {
  ip?: string;
  cidr?: string;
  port?: string;
  protocol?: string;
  direction?: string;
  interface?: string;
  server: string;
}

const filterQuery = (o: FilterOpts): Record<string, string | undefined> => ({
  ip: o.ip,
  cidr: o.cidr,
  port: o.port,
  protocol: o.protocol,
  direction: o.direction,
  interface: o.interface,
  ...identityQuery(o),
});

filterOptions(
  program
    .command('observe')
    .description('show flows from a running agent, like `hubble observe`')
    .option('-n, --last <n>', 'the last N flows (with --since: the newest N records, default 1000)', '20')
    .option('-f, --follow', 'then keep printing flow records, security events, blocks and lost-event reports as they come')
    .option('--no-security', 'with --follow: leave out security events and blocks (lost-event reports stay)')
    .option('--since <time>', `flow records from the agent's history, from this time: ${TIME_HELP}; not with --follow`)
    .option('--until <time>', 'and up to this time (default now)')
    .option('-o, --output <format>', 'table, json (one object per line) or compact', 'table')
    .addHelpText(
      'after',
      [
        '',
        'With --since or --until, observe reads the history (an agent started with --history FILE): one row per flow record,',
        'oldest first, the newest 1000 unless --last says otherwise. There packets and bytes are what each record counted (its',
        'deltaPackets and deltaBytes), so the rows of a range add up to the traffic in it; -o json adds record (active or final),',
        'deltaPackets, deltaBytes, packetsPerSec, bytesPerSec, and totalPackets and totalBytes (the flow so far).',
      ].join('\n'),
    ),
).action(async (opts: FilterOpts & TimeOpts & { last: string; follow?: boolean; security: boolean; output: string }, cmd: Command) => {
  const format = output(opts.output);
  const range = timeQuery(opts);
  if (range) {
    const rows = historyRows(cmd, opts.last);
    const { flows } = await apiGet<{ flows: HistoryFlowWire[] }>(opts.server, '/api/v1/flows', { ...filterQuery(opts), ...range, limit: String(rows.limit) });
    if (flows.length) process.stdout.write(`${renderHistoryFlows(flows, format)}\n`);
    else if (format === 'table') process.stdout.write('no flow records in this range\n');
    moreRows(flows.length, rows, 'flow records');
    return;
  }
  const history = async (): Promise<void> => {
    const { flows } = await apiGet<{ flows: FlowWire[] }>(opts.server, '/api/v1/flows', { ...filterQuery(opts), limit: opts.last });
    if (flows.length) process.stdout.write(`${renderFlows(flows, format)}\n`);
  };
  if (!opts.follow) return history();
  await followAfter(opts.server, { ...filterQuery(opts), kinds: opts.security ? 'flow,security,block,lost' : 'flow,lost' }, history, (event, data) => {
    if (event === 'flow') {
      const r = JSON.parse(data) as { reason: string; flow: FlowWire; deltaPackets: number; deltaBytes: number };
      process.stdout.write(
        format === 'json'
          ? `${JSON.stringify(flowLine(r.flow, { record: r.reason, deltaPackets: r.deltaPackets, deltaBytes: r.deltaBytes }))}\n`
          : `${renderFlows([{ ...r.flow, state: r.reason }], 'compact')}\n`,
      );
    } else {
      printStreamEvent(event, data, format);
    }
  });
});

identityOptions(
  program
    .command('events')
    .description('security events from a running agent (scans, floods, sweeps, land and martian packets, blocks), oldest first')
    .option('--type <types>', `only these types, comma-separated: ${SECURITY_EVENT_TYPES.join(', ')}`)
    .option('--severity <level>', 'at least this severity: info, low, medium, high or critical')
    .option('--source <ip|cidr>', 'only events whose attacker is this address or in this block'),
  'the attacker or the target',
)
  .option('-n, --last <n>', 'the last N events (0: none, with --follow; with --since: default 1000)', '20')
  .option('-f, --follow', 'then keep printing security events, blocks and lost-event reports as they come')
  .option('--since <time>', `security events from the agent's history, from this time: ${TIME_HELP}; not with --follow`)
  .option('--until <time>', 'and up to this time (default now)')
  .option('-o, --output <format>', 'table, json (one object per line) or compact', 'table')
  .option('--server <url>', 'the agent to ask', DEFAULT_SERVER)
  .addHelpText(
    'after',
    [
      '',
      'The identity filters (--namespace, --pod, --workload, --service, --label) keep the events whose attacker or target is',
      'such a pod: live, the pod at that address now; with --since, as the history wrote each end when the event came (it keeps',
      'no labels, so --label is refused there). With --follow, block changes are filtered by --source only.',
    ].join('\n'),
  )
  .action(async (opts: TimeOpts & IdentityOpts & { type?: string; severity?: string; source?: string; last: string; follow?: boolean; output: string; server: string }, cmd: Command) => {
    const format = output(opts.output);
    const range = timeQuery(opts);
    const filters = { type: opts.type, severity: opts.severity, source: opts.source, ...identityQuery(opts) };
    if (range) {
      const rows = historyRows(cmd, opts.last);
      const { events } = await apiGet<{ events: SecurityEventWire[] }>(opts.server, '/api/v1/security-events', {
        ...filters,
        ...range,
        limit: String(rows.limit),
      });
      if (events.length) process.stdout.write(`${renderSecurityEvents(events, format)}\n`);
      else if (format === 'table') process.stdout.write('no security events that match in this range\n');
      moreRows(events.length, rows, 'events');
      return;
    }
    const last = whole('--last', opts.last, opts.follow ? 0 : 1);
    // A security event that both the history and the live stream have (the
    // same CPU and sequence number) prints once.
    const seen = new Set<string>();
    const history = async (): Promise<void> => {
      if (last === 0) return;
      const { events, lost } = await apiGet<{ events: SecurityEventWire[]; lost: number }>(opts.server, '/api/v1/security-events', { ...filters, limit: String(last) });
      for (const e of events) seen.add(`${e.cpu}:${e.seq}`);
      if (events.length) process.stdout.write(`${renderSecurityEvents(events, format)}\n`);
      else if (format === 'table' && !opts.follow) process.stdout.write('no security events that match (yet)\n');
      if (lost > 0 && format !== 'json') process.stderr.write(`kubenetprobe: ${lost} security events were lost since the agent started (see \`kubenetprobe stats\`)\n`);
    };
    if (!opts.follow) return history();
    await followAfter(opts.server, { ...filters, kinds: 'security,block,lost' }, history, (event, data) => {
      if (event === 'security') {
        const e = JSON.parse(data) as { cpu: number; seq: string };
        if (seen.has(`${e.cpu}:${e.seq}`)) return;
      }
      printStreamEvent(event, data, format === 'table' ? 'compact' : format);
    });
  });

const blocks = program
  .command('blocks')
  .description('sources blocked now (enforce mode, or by hand): address, why, since when, until when, frames dropped; lift one, add one, or see what changed')
  .option('-o, --output <format>', 'table or json (one object per line)', 'table')
  .option('--server <url>', 'the agent to ask', DEFAULT_SERVER)
  .action(async (opts: { output: string; server: string }) => {
    if (opts.output !== 'table' && opts.output !== 'json') throw new KubeNetProbeError('INVALID_ARGUMENT', `--output must be table or json, got ${opts.output}`);
    const { blocks: list } = await apiGet<{ blocks: BlockWire[] }>(opts.server, '/api/v1/blocks');
    if (list.length) process.stdout.write(`${renderBlocks(list, opts.output)}\n`);
    else if (opts.output === 'table') process.stdout.write('nothing is blocked\n');
  });

blocks
  .command('lift <ip>')
  .description('lift the block on IP now')
  .option('--server <url>', 'the agent to ask', DEFAULT_SERVER)
  .action(async (ip: string, opts: { server: string }) => {
    const { block } = await apiSend<{ block: BlockWire }>(opts.server, 'DELETE', `/api/v1/blocks/${encodeURIComponent(ip)}`);
    process.stdout.write(`lifted the block on ${block.ip} (${block.reason}); ${block.packetsDropped} packets were dropped\n`);
  });

blocks
  .command('add <ip>')
  .description('block IP by hand: frames from it are dropped (the allowlist is refused)')
  .option('--ttl-ms <ms>', "how long; 0 = until lifted (default: the agent's blockTtlMs)")
  .option('--server <url>', 'the agent to ask', DEFAULT_SERVER)
  .action(async (ip: string, opts: { ttlMs?: string; server: string }) => {
    const ttlMs = opts.ttlMs === undefined ? undefined : whole('--ttl-ms', opts.ttlMs, 0);
    const { block } = await apiSend<{ block: BlockWire }>(opts.server, 'POST', '/api/v1/blocks', ttlMs === undefined ? { ip } : { ip, ttlMs });
    process.stdout.write(`blocked ${block.ip} ${block.expiresAt ? `until ${block.expiresAt}` : 'until lifted'}\n`);
  });

blocks
  .command('history')
  .description('recent blocks and unblocks (by a detector, by hand, expired), oldest first')
  .option('-n, --last <n>', 'the last N changes', '20')
  .option('-o, --output <format>', 'compact or json (one object per line)', 'compact')
  .option('--server <url>', 'the agent to ask', DEFAULT_SERVER)
  .action(async (opts: { last: string; output: string; server: string }) => {
    if (opts.output !== 'compact' && opts.output !== 'json') throw new KubeNetProbeError('INVALID_ARGUMENT', `--output must be compact or json, got ${opts.output}`);
    const { changes } = await apiGet<{ changes: BlockChangeWire[] }>(opts.server, '/api/v1/blocks/history', { limit: String(whole('--last', opts.last, 1)) });
    for (const c of changes) process.stdout.write(`${opts.output === 'json' ? JSON.stringify(blockChangeLine(c)) : blockChangeCompact(c)}\n`);
  });

program
  .command('demo')
  .description('build a small Kubernetes-like node here (pods in namespaces), run traffic and scans between them, and watch it with the agent (needs root)')
  .option('-s, --seconds <n>', 'stop after this long; 0 runs until Ctrl-C', '0')
  .option('-l, --listen <host:port>', 'where the agent API listens', '127.0.0.1:9470')
  .action(async (opts: { seconds: string; listen: string }) => {
    const seconds = Number(opts.seconds);
    if (!Number.isInteger(seconds) || seconds < 0) throw new KubeNetProbeError('INVALID_ARGUMENT', `--seconds must be a whole number from 0, got ${opts.seconds}`);
    const { runDemo } = await import('../demo/run-demo.js');
    // A reader that goes away (`| head`) must not crash the demo before it cleans up.
    process.stdout.on('error', () => {});
    await runDemo({
      seconds,
      listen: opts.listen,
      // A closed pipe (`| head`) stops the demo through stdout's 'error'; writes after that are dropped.
      write: (l) => {
        if (process.stdout.writable) process.stdout.write(`${l}\n`);
      },
    });
  });

filterOptions(
  program
    .command('top')
    .description('a live table of the busiest conversations (top talkers), refreshed in place; with --since, the top talkers of a past range from the history, once')
    .option('--sort <by>', 'bytes, packets or rate (default rate; with --since bytes or packets, default bytes)')
    .option('-n, --limit <n>', 'rows', '20')
    .option('--interval-ms <ms>', 'refresh period', '1000')
    .option('--once', 'print one frame (after one period, for the rates) and exit')
    .option('--since <time>', `the top talkers in the agent's history, from this time: ${TIME_HELP}; printed once`)
    .option('--until <time>', 'and up to this time (default now)')
    .option('--group <by>', 'with --since: pair (source -> destination), source or destination', 'pair')
    .option('-o, --output <format>', 'with --since: table or json (one object per line)', 'table')
    .addHelpText(
      'after',
      [
        '',
        'With --since or --until, top reads the history (an agent started with --history FILE) and prints the busiest talkers of',
        'that range once: bytes and packets summed over their flow records, each packet counted once however many watched',
        'interfaces it crossed (from the interface that saw the most of each flow), with pod names where the inventory knew them.',
      ].join('\n'),
    ),
).action(async (opts: FilterOpts & TimeOpts & { sort?: string; limit: string; intervalMs: string; once?: boolean; group: string; output: string }) => {
  const { renderTalkers, renderTop, talkerLine, topRows } = await import('./top.js');
  const range = timeQuery(opts);
  if (range) {
    const by = opts.sort ?? 'bytes';
    if (by !== 'bytes' && by !== 'packets') throw new KubeNetProbeError('INVALID_ARGUMENT', `--sort must be bytes or packets with --since (a rate needs two reads of live flows), got ${by}`);
    const group = opts.group;
    if (group !== 'pair' && group !== 'source' && group !== 'destination') throw new KubeNetProbeError('INVALID_ARGUMENT', `--group must be pair, source or destination, got ${group}`);
    if (opts.output !== 'table' && opts.output !== 'json') throw new KubeNetProbeError('INVALID_ARGUMENT', `--output must be table or json, got ${opts.output}`);
    const limit = whole('--limit', opts.limit, 1);
    const { talkers } = await apiGet<{ talkers: import('./top.js').TalkerWire[] }>(opts.server, '/api/v1/top', { ...filterQuery(opts), ...range, by, group, limit: String(limit) });
    if (opts.output === 'json') {
      for (const t of talkers) process.stdout.write(`${JSON.stringify(talkerLine(t))}\n`);
    } else {
      process.stdout.write(`${renderTalkers(talkers, { by, group, since: opts.since, until: opts.until, at: new Date() })}\n`);
    }
    return;
  }
  if (opts.output !== 'table') throw new KubeNetProbeError('INVALID_ARGUMENT', '--output json needs --since: the live table is refreshed in place');
  const sort = opts.sort ?? 'rate';
  if (sort !== 'bytes' && sort !== 'packets' && sort !== 'rate') throw new KubeNetProbeError('INVALID_ARGUMENT', `--sort must be bytes, packets or rate, got ${sort}`);
  const limit = Number(opts.limit);
  const interval = Number(opts.intervalMs);
  if (!Number.isInteger(limit) || limit < 1) throw new KubeNetProbeError('INVALID_ARGUMENT', `--limit must be a whole number from 1, got ${opts.limit}`);
  if (!Number.isFinite(interval) || interval < 100) throw new KubeNetProbeError('INVALID_ARGUMENT', `--interval-ms must be at least 100, got ${opts.intervalMs}`);
  const read = async (): Promise<{ at: number; conv: import('./top.js').ConversationWire[] }> => ({
    at: Date.now(),
    conv: (await apiGet<{ conversations: import('./top.js').ConversationWire[] }>(opts.server, '/api/v1/conversations', filterQuery(opts))).conversations,
  });
  let prev = await read();
  const tty = process.stdout.isTTY;
  for (;;) {
    await new Promise((r) => setTimeout(r, interval));
    const now = await read();
    const frame = renderTop(topRows(prev.conv, now.conv, (now.at - prev.at) / 1000, sort, limit), sort, new Date(now.at));
    // In place on a terminal; one frame after another elsewhere.
    process.stdout.write(tty ? `\x1b[H\x1b[2J${frame}\n` : `${frame}\n\n`);
    if (opts.once) return;
    prev = now;
  }
});

program
  .command('stats')
  .description('counters and health of a running agent at a glance')
  .option('-o, --output <format>', 'table or json', 'table')
  .option('--server <url>', 'the agent to ask', DEFAULT_SERVER)
  .action(async (opts: { output: string; server: string }) => {
    const s = await apiGet<AgentStats>(opts.server, '/api/v1/stats');
    process.stdout.write(`${renderStats(s, output(opts.output))}\n`);
  });

identityOptions(
  program
    .command('metrics')
    .description("a running agent's Prometheus metrics; with identity filters, only the per-pod and per-workload series of the pods that match"),
  'the pod',
)
  .option('--server <url>', 'the agent to ask', DEFAULT_SERVER)
  .addHelpText(
    'after',
    [
      '',
      'The same as GET /metrics?namespace=...&workload=... (a Prometheus scrape job can pass them as params). A filtered',
      'answer leaves out the node-wide series and pod="other", which cannot be split by pod.',
    ].join('\n'),
  )
  .action(async (opts: IdentityOpts & { server: string }) => {
    process.stdout.write(await apiText(opts.server, '/metrics', identityQuery(opts)));
  });

program.parseAsync().catch((err: unknown) => {
  if (err instanceof KubeNetProbeError) {
    process.stderr.write(`kubenetprobe: ${err.message}\n`);
    process.exitCode = 2;
  } else {
    console.error(err);
    process.exitCode = 70;
  }
});
