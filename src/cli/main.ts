#!/usr/bin/env node
/**
 * The kubenetprobe command. One error hierarchy becomes exit codes and
 * messages here, in one place: a KubeNetProbeError prints its message and
 * hint (exit 2), anything else is a bug and prints its stack (exit 70).
 */
import { Command, Option } from 'commander';
import { KubeNetProbeError } from '../errors.js';
import { DEFAULT_SERVER, apiGet, followEvents, request } from './client.js';
import { flowLine, renderFlows, renderStats, type FlowWire, type OutputFormat } from './render.js';
import type { AgentStats } from '../agent/agent.js';

const program = new Command()
  .name('kubenetprobe')
  .description('eBPF network monitor for Kubernetes nodes')
  .showHelpAfterError();

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
  .option('--recent-events <n>', 'security events kept queryable in memory')
  .option('--inventory <file>', 'JSON file of pods (name, namespace, labels, ip): identity without a cluster')
  .addHelpText('after', '\nEvery setting can also come from the environment (KUBENETPROBE_INTERFACE=veth*,eth0, KUBENETPROBE_LISTEN, ...) or the config file; flags win over the environment, which wins over the file.')
  .action(async (opts: Record<string, unknown>) => {
    // Loaded here, not at the top: the other commands need no kernel access.
    const { loadConfig, parseListen } = await import('../agent/config.js');
    const { Agent } = await import('../agent/agent.js');
    const { startApiServer } = await import('../api/server.js');
    const config = loadConfig({ flags: { ...opts, config: undefined }, env: process.env, ...(typeof opts['config'] === 'string' ? { file: opts['config'] } : {}) });
    const agent = await Agent.start(config);
    let api;
    try {
      api = await startApiServer(agent, parseListen(config.listen));
    } catch (err) {
      await agent.close();
      throw err;
    }
    agent.on('error', (e) => process.stderr.write(`kubenetprobe agent: ${e.message}\n`));
    const attached = agent.stats().interfaces.filter((i) => i.attached).map((i) => i.name);
    process.stdout.write(`kubenetprobe agent: watching ${config.interface.join(', ')}; attached to ${attached.join(', ') || 'nothing yet'}\n`);
    process.stdout.write(`kubenetprobe agent: API at ${api.url}\n`);
    const stop = (sig: string): void => {
      process.stdout.write(`kubenetprobe agent: ${sig}, detaching\n`);
      void api.close().then(() => agent.close()).then(() => process.exit(0));
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
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
    .option('-f, --follow', 'then keep printing flow records and security events as they come')
    .option('-o, --output <format>', 'table, json (one object per line) or compact', 'table'),
).action(async (opts: FilterOpts & { last: string; follow?: boolean; output: string }) => {
  const format = output(opts.output);
  const { flows } = await apiGet<{ flows: FlowWire[] }>(opts.server, '/api/v1/flows', { ...filterQuery(opts), limit: opts.last });
  if (flows.length) process.stdout.write(`${renderFlows(flows, format)}\n`);
  if (!opts.follow) return;
  const res = await request(opts.server, '/api/v1/events', filterQuery(opts));
  await followEvents(res, (event, data) => {
    if (event === 'flow') {
      const r = JSON.parse(data) as { reason: string; flow: FlowWire; deltaPackets: number; deltaBytes: number };
      process.stdout.write(
        format === 'json'
          ? `${JSON.stringify(flowLine(r.flow, { record: r.reason, deltaPackets: r.deltaPackets, deltaBytes: r.deltaBytes }))}\n`
          : `${renderFlows([{ ...r.flow, state: r.reason }], 'compact')}\n`,
      );
    } else if (event === 'security') {
      const e = JSON.parse(data) as { timestamp: string; severity: string; type: string; description: string; attacker: { ip: string; port: number }; target: { ip: string; port: number }; interface?: string };
      process.stdout.write(
        format === 'json'
          ? `${JSON.stringify({ time: e.timestamp, event: 'security', type: e.type, severity: e.severity, attacker: e.attacker, target: e.target, interface: e.interface ?? null, description: e.description })}\n`
          : `${e.timestamp} SECURITY ${e.severity} ${e.type} ${e.attacker.ip}:${e.attacker.port} -> ${e.target.ip}:${e.target.port} on ${e.interface ?? '?'}\n`,
      );
    }
  });
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
