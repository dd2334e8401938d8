/**
 * `kubenetprobe demo`: builds the demo node, runs real traffic between its
 * pods (HTTP, UDP request/response, bulk TCP, and scan bursts from the
 * attacker), starts the agent on the pods' veths with the API, and prints a
 * live summary with pod names. On Ctrl-C (or after `seconds`) it removes
 * every namespace, link and program it made.
 */
import { formatBytes } from '../format.js';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DemoNode, type DemoPod } from './demo-node.js';
import { Agent } from '../agent/agent.js';
import { loadConfig, parseListen } from '../agent/config.js';
import { startApiServer, type ApiServer } from '../api/server.js';
import { table } from '../cli/render.js';

export interface DemoOptions {
  /** Stop after this long; 0 runs until SIGINT/SIGTERM. */
  seconds: number;
  listen: string;
  write: (line: string) => void;
}


export async function runDemo(opts: DemoOptions): Promise<void> {
  const node = DemoNode.create();
  let agent: Agent | undefined;
  let api: ApiServer | undefined;
  let inventoryPath: string | undefined;
  /** The demo's own directory for the flow history, removed at the end. */
  let historyDir: string | undefined;
  const timers: NodeJS.Timeout[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (why: string): Promise<void> =>
    (stopping ??= (async () => {
      for (const t of timers) clearInterval(t);
      opts.write(`demo: ${why}; removing the demo node`);
      await api?.close();
      await agent?.close();
      node.close();
      if (inventoryPath) rmSync(inventoryPath, { force: true });
      // After agent.close(): the store is flushed and its file released.
      if (historyDir) rmSync(historyDir, { recursive: true, force: true });
      opts.write(`demo: removed ${node.pods.length} pods, their veths and the bridge ${node.bridge}`);
    })());
  const onSignal = (sig: string) => () => void stop(sig);
  const sigint = onSignal('SIGINT');
  const sigterm = onSignal('SIGTERM');
  process.once('SIGINT', sigint);
  process.once('SIGTERM', sigterm);
  // Whatever ends the process (a closed pipe on stdout, an uncaught error),
  // the namespaces, links and traffic processes go with it: close() is
  // synchronous, and the agent's links are undone by the kernel.
  const onExit = (): void => {
    node.close();
    if (historyDir) rmSync(historyDir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  const onStdoutError = (): void => void stop('output closed');
  process.stdout.on('error', onStdoutError);
  try {
    // Names as the agent knows them (from the inventory the demo wrote): pod, workload, service.
    const who = (ip: string): string => {
      const id = agent?.identity(ip);
      return id ? `${id.namespace}/${id.pod}` : ip;
    };
    const owner = (ip: string): string => {
      const id = agent?.identity(ip);
      if (!id) return '';
      return ` (${[id.workload ? `${id.workload.kind}/${id.workload.name}` : '', id.service ? `svc ${id.service}` : ''].filter(Boolean).join(', ')})`;
    };
    const service = (ip: string): string => {
      const s = agent?.identity(ip)?.service;
      return s ? ` svc/${s}` : '';
    };
    inventoryPath = node.writeInventory(tmpdir());
    const p = (n: string): DemoPod => node.pod(n);
    const seconds = opts.seconds > 0 ? opts.seconds : 24 * 3600;

    // Servers first, then the agent, then the clients, so every flow is seen from its first packet.
    await node.traffic(p('frontend'), ['serve-http', '80']);
    await node.traffic(p('api'), ['serve-http', '8080']);
    await node.traffic(p('db'), ['serve-tcp', '5432']);
    await node.traffic(p('dns'), ['serve-udp', '53']);
    historyDir = mkdtempSync(join(tmpdir(), 'kubenetprobe-demo-history-'));
    const history = join(historyDir, 'history.duckdb');
    // No interface names: the agent finds each pod's veth from the pod's IP (attachPods), as on a cluster node.
    agent = await Agent.start(loadConfig({ flags: { interface: [], attachPods: true, listen: opts.listen, intervalMs: 1000, idleTimeoutMs: 10000, inventory: inventoryPath, history } }));
    for (const notice of agent.startNotices()) opts.write(`demo: ${notice}`);
    agent.on('error', (e) => opts.write(`demo: ${e.message}`));
    api = await startApiServer(agent, parseListen(opts.listen));

    opts.write('demo: pods (the agent found each one\'s veth from its IP)');
    const found = new Map(agent.stats().interfaces.filter((i) => i.pod).map((i) => [i.pod!.ip, i]));
    const rows = [['POD', 'WORKLOAD', 'SERVICE', 'IP', 'VETH', 'LABELS']];
    for (const pod of node.pods) {
      const i = found.get(pod.ip);
      rows.push([
        `${pod.namespace}/${pod.name}`,
        `${pod.workload.kind}/${pod.workload.name}`,
        pod.service ?? '-',
        pod.ip,
        i ? `${i.name}${i.attached ? '' : ' (not attached)'}` : 'not found yet',
        Object.entries(pod.labels).map(([k, v]) => `${k}=${v}`).join(','),
      ]);
    }
    for (const line of table(rows).split('\n')) opts.write(`  ${line}`);
    opts.write(`demo: inventory (pod identity) in ${inventoryPath}`);
    opts.write(`demo: flow history in ${history}, removed at the end (try: npx kubenetprobe observe --server ${api.url} --since 5m; top --since 5m)`);
    opts.write(`demo: API at ${api.url}  (try: npx kubenetprobe observe --server ${api.url} --follow)`);
    opts.write(`demo: web page at ${api.url}/  (service map, flows, security events, traffic; open it in a browser on this machine, or through ssh -L)`);

    await node.traffic(p('client'), ['client', String(seconds), `http:${p('frontend').ip}:80:500`, `udp:${p('dns').ip}:53:1000`, `bulk:${p('db').ip}:5432:4000:2000000`]);
    await node.traffic(p('frontend'), ['client', String(seconds), `http:${p('api').ip}:8080:700`]);
    await node.traffic(p('api'), ['client', String(seconds), `bulk:${p('db').ip}:5432:1500:20000`]);

    // Now and then a burst of scan traffic from the attacker: an nmap SYN scan
    // of the api pod's first 200 ports, and a few NULL and XMAS probes
    // (hping3: no flags = NULL, -F -P -U = XMAS). Each bounded in count.
    const scan = (): void => {
      const run = (cmd: string, args: string[]): void => {
        const child = spawn('ip', ['netns', 'exec', p('attacker').netns, cmd, ...args], { stdio: 'ignore' });
        child.on('error', () => opts.write(`demo: ${cmd} is missing, no scans (apt-get install ${cmd})`));
      };
      run('nmap', ['-n', '-Pn', '-sS', '-p', '1-200', '--max-retries', '0', '-T4', p('api').ip]);
      for (const [target, port, flags] of [
        [p('api'), '8080', []],
        [p('db'), '5432', ['-F', '-P', '-U']],
      ] as const) {
        run('hping3', ['-q', '-c', '3', '-i', 'u20000', ...flags, '-p', port, target.ip]);
      }
    };
    setTimeout(scan, 3000).unref();
    timers.push(setInterval(scan, 10000));

    agent.on('security', (e) => {
      opts.write(`SECURITY ${e.severity.toUpperCase()} ${e.type}: ${who(e.attacker.ip)}${owner(e.attacker.ip)} -> ${who(e.target.ip)}:${e.target.port}${owner(e.target.ip)} (${e.description})`);
    });
    // Connections grouped pod -> pod:port, the way a service map shows them.
    const summary = (): void => {
      if (!agent) return;
      const groups = new Map<string, { bytes: [number, number]; conns: number; states: Set<string> }>();
      for (const c of agent.conversations()) {
        // Pod to pod only: not the pods' IPv6 link-local chatter (router and multicast listener messages).
        if (!agent.identity(c.a.ip) || !agent.identity(c.b.ip)) continue;
        const k = `${who(c.a.ip)} -> ${who(c.b.ip)}:${c.b.port} ${c.protocol}${service(c.b.ip)}`;
        const g = groups.get(k) ?? { bytes: [0, 0], conns: 0, states: new Set<string>() };
        g.bytes[0] += c.aToB.bytes;
        g.bytes[1] += c.bToA.bytes;
        g.conns++;
        if (c.state !== 'none') g.states.add(c.state);
        groups.set(k, g);
      }
      const s = agent.stats();
      opts.write(
        `--- ${new Date().toISOString()}: ${groups.size} pod-to-pod paths, flow table ${s.flowTable.entries}/${s.flowTable.capacity}, coverage ${(s.coverage.ratio * 100).toFixed(1)} %, lost events ${s.lost.packetEvents + s.lost.securityEvents}`,
      );
      const top = [...groups].sort(([, x], [, y]) => y.bytes[0] + y.bytes[1] - (x.bytes[0] + x.bytes[1])).slice(0, 8);
      for (const [k, g] of top) {
        opts.write(`  ${k.padEnd(72)} ${formatBytes(g.bytes[0]).padStart(9)} / ${formatBytes(g.bytes[1]).padStart(9)}  ${g.conns} conn${g.conns > 1 ? 's' : ''} ${[...g.states].join(',')}`);
      }
    };
    timers.push(setInterval(summary, 2000));

    await new Promise<void>((resolve) => {
      if (opts.seconds > 0) setTimeout(resolve, opts.seconds * 1000).unref();
      void (async () => {
        // Resolve too when a signal started the stop.
        while (!stopping) await new Promise((r) => setTimeout(r, 200));
        resolve();
      })();
    });
    await stop(`${opts.seconds} s elapsed`);
  } catch (err) {
    // Setting up while a stop (a signal, a closed output) tore the node down: not an error.
    if (stopping) return await stopping;
    await stop('error');
    throw err;
  } finally {
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
    process.off('exit', onExit);
    process.stdout.off('error', onStdoutError);
  }
}
