#!/usr/bin/env node
/**
 * The kubenetprobe command. One error hierarchy becomes exit codes and
 * messages here, in one place: a KubeNetProbeError prints its message and
 * hint (exit 2), anything else is a bug and prints its stack (exit 70).
 */
import { Command, Option } from 'commander';
import { KubeNetProbeError } from '../errors.js';
import { DEFAULT_SERVER, apiGet, apiSend, followEvents, openStream } from './client.js';
import {
  blockChangeCompact,
  blockChangeLine,
  flowLine,
  lostCompact,
  lostLine,
  renderBlocks,
  renderFlows,
  renderSecurityEvents,
  renderStats,
  securityCompact,
  securityLine,
  type BlockChangeWire,
  type BlockWire,
  type FlowWire,
  type LostWire,
  type OutputFormat,
  type SecurityEventWire,
} from './render.js';
import type { AgentStats } from '../agent/agent.js';
import { SECURITY_EVENT_TYPES } from '../agent/security-filter.js';
import { DEFAULT_DETECTOR_CONFIG, DEFAULT_ENFORCED } from '../monitor/detectors.js';

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
  .description('run the agent: attach to the named interfaces as they come and go, keep flows, serve the API (needs root)')
  .option('-i, --interface <name|glob>', 'interface name or glob to attach to; repeat for more (default eth0)', collect)
  .option('-l, --listen <host:port>', 'where the API listens (default 127.0.0.1:9470)')
  .option('-c, --config <file>', 'JSON config file with the same field names (interface, listen, xdp, ...)')
  .addOption(new Option('--xdp <mode>', 'XDP per interface').choices(['auto', 'off', 'native', 'generic']))
  .option('--flow-table-capacity <n>', 'flows the kernel table holds')
  .option('--packet-sample-rate <n>', 'one packet event per N packets; 0 = off')
  .option('--interval-ms <ms>', 'how often the flow table is read')
  .option('--idle-timeout-ms <ms>', 'a flow idle this long gets its final record and leaves the table')
  .option('--active-timeout-ms <ms>', 'a long flow gets a record at least this often')
  .option('--recent-flows <n>', 'finished flows kept queryable in memory')
  .option('--recent-events <n>', 'security events (and, as many again, block changes and lost-event reports) kept queryable in memory')
  .option('--inventory <file>', 'JSON file of pods (name, namespace, labels, ip): identity without a cluster')
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
    say.write(`kubenetprobe agent: watching ${config.interface.join(', ')}; attached to ${attached.join(', ') || 'nothing yet'}\n`);
    const d = agent.detectorConfig();
    say.write(
      d.mode === 'enforce'
        ? `kubenetprobe agent: enforce mode: sources flagged by ${d.enforce.join(', ') || 'no detector'} are blocked ${d.blockTtlMs ? `for ${d.blockTtlMs / 1000} s` : 'until lifted'}${config.allowlist.length ? `; never ${config.allowlist.join(', ')}` : ''}\n`
        : `kubenetprobe agent: audit mode: ${d.enabled.length} detectors report; nothing is blocked but by hand (kubenetprobe blocks add)\n`,
    );
    // Last: the line tests and scripts wait for.
    say.write(`kubenetprobe agent: API at ${api.url}, Prometheus metrics at ${api.url}/metrics\n`);
  });

const filterOptions = (cmd: Command): Command =>
  cmd
    .option('--ip <addr>', 'either end is this address')
    .option('--cidr <block>', 'either end is in this block, e.g. 10.0.0.0/8')
    .option('--port <n>', 'either end uses this port')
    .option('--protocol <name>', 'tcp, udp, icmp or icmpv6')
    .option('--direction <dir>', 'ingress or egress')
    .option('--interface <name>', 'seen on this interface')
    .option('--namespace <ns>', 'either end is a pod in this namespace (where identity is known)')
    .option('--pod <name>', 'either end is this pod: name or namespace/name')
    .option('--server <url>', 'the agent to ask', DEFAULT_SERVER);

interface FilterOpts {
  namespace?: string;
  pod?: string;
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
  namespace: o.namespace,
  pod: o.pod,
});

filterOptions(
  program
    .command('observe')
    .description('show flows from a running agent, like `hubble observe`')
    .option('-n, --last <n>', 'the last N flows', '20')
    .option('-f, --follow', 'then keep printing flow records, security events, blocks and lost-event reports as they come')
    .option('--no-security', 'with --follow: leave out security events and blocks (lost-event reports stay)')
    .option('-o, --output <format>', 'table, json (one object per line) or compact', 'table'),
).action(async (opts: FilterOpts & { last: string; follow?: boolean; security: boolean; output: string }) => {
  const format = output(opts.output);
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

program
  .command('events')
  .description('security events from a running agent (scans, floods, sweeps, land and martian packets, blocks), oldest first')
  .option('--type <types>', `only these types, comma-separated: ${SECURITY_EVENT_TYPES.join(', ')}`)
  .option('--severity <level>', 'at least this severity: info, low, medium, high or critical')
  .option('--source <ip|cidr>', 'only events whose attacker is this address or in this block')
  .option('-n, --last <n>', 'the last N events (0: none, with --follow)', '20')
  .option('-f, --follow', 'then keep printing security events, blocks and lost-event reports as they come')
  .option('-o, --output <format>', 'table, json (one object per line) or compact', 'table')
  .option('--server <url>', 'the agent to ask', DEFAULT_SERVER)
  .action(async (opts: { type?: string; severity?: string; source?: string; last: string; follow?: boolean; output: string; server: string }) => {
    const format = output(opts.output);
    const last = whole('--last', opts.last, opts.follow ? 0 : 1);
    const filters = { type: opts.type, severity: opts.severity, source: opts.source };
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
    .description('a live table of the busiest conversations (top talkers), refreshed in place')
    .option('--sort <by>', 'bytes, packets or rate', 'rate')
    .option('-n, --limit <n>', 'rows', '20')
    .option('--interval-ms <ms>', 'refresh period', '1000')
    .option('--once', 'print one frame (after one period, for the rates) and exit'),
).action(async (opts: FilterOpts & { sort: string; limit: string; intervalMs: string; once?: boolean }) => {
  const { renderTop, topRows } = await import('./top.js');
  if (opts.sort !== 'bytes' && opts.sort !== 'packets' && opts.sort !== 'rate') throw new KubeNetProbeError('INVALID_ARGUMENT', `--sort must be bytes, packets or rate, got ${opts.sort}`);
  const sort = opts.sort;
  const limit = Number(opts.limit);
  const interval = Number(opts.intervalMs);
  if (!Number.isInteger(limit) || limit < 1) throw new KubeNetProbeError('INVALID_ARGUMENT', `--limit must be a whole number from 1, got ${opts.limit}`);
  if (!Number.isFinite(interval) || interval < 100) throw new KubeNetProbeError('INVALID_ARGUMENT', `--interval-ms must be at least 100, got ${opts.intervalMs}`);
  const read = async (): Promise<{ at: number; conv: import('../agent/conversations.js').Conversation[] }> => ({
    at: Date.now(),
    conv: (await apiGet<{ conversations: import('../agent/conversations.js').Conversation[] }>(opts.server, '/api/v1/conversations', filterQuery(opts))).conversations,
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

program.parseAsync().catch((err: unknown) => {
  if (err instanceof KubeNetProbeError) {
    process.stderr.write(`kubenetprobe: ${err.message}\n`);
    process.exitCode = 2;
  } else {
    console.error(err);
    process.exitCode = 70;
  }
});
