/**
 * A throwaway "node" for kernel tests: a bridge in the root namespace and
 * one network namespace per pod, each joined by a veth whose host end is a
 * bridge port (the layout of the bridge CNI). Names are unique per run and
 * everything is removed by close(), which also runs on process exit.
 *
 * Addresses come from 198.18.0.0/15 (RFC 2544, benchmarking) and fd00::/8,
 * so test traffic never looks like anything else's.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { spawnUntilReady } from '../../src/demo/spawn-ready.js';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { NetworkMonitor, type NetworkMonitorOptions } from 'kubenetprobe';

export interface Pod {
  name: string;
  netns: string;
  /** Host-side veth (in the root namespace): where the monitor attaches. */
  hostIf: string;
  ipv4: string;
  ipv6: string;
}

export function sh(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input: opts.input, timeout: opts.timeoutMs ?? 30000 });
}

function trySh(cmd: string, args: string[]): void {
  try {
    sh(cmd, args);
  } catch {
    /* cleanup of something already gone */
  }
}

const TRAFFIC = fileURLToPath(new URL('../../../tools/traffic.mjs', import.meta.url));
const RAWSEND = fileURLToPath(new URL('../../../tools/rawsend.mjs', import.meta.url));

const live = new Set<TestNet>();
process.on('exit', () => {
  for (const n of live) n.closeSync();
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const n of live) n.closeSync();
    process.exit(130);
  });
}

export class TestNet {
  readonly id: string;
  readonly bridge: string;
  readonly pods: Pod[] = [];
  private children = new Set<ChildProcess>();
  private closed = false;
  /** Host-side veths get interface numbers from here on (pod i: from + i); undefined: the kernel's next. */
  private hostIfIndexFrom: number | undefined;

  private constructor(id: string) {
    this.id = id;
    this.bridge = `kb${id}`;
  }

  /**
   * Creates a bridge and `podCount` pods. ipv6: false turns IPv6 off in the
   * pods (quieter links); hostIfIndexFrom numbers the host-side veths from
   * there (e.g. above the programs' per-ifindex array slots).
   */
  static create(podCount = 2, opts: { ipv6?: boolean; hostIfIndexFrom?: number } = {}): TestNet {
    const net = new TestNet(randomBytes(3).toString('hex'));
    net.hostIfIndexFrom = opts.hostIfIndexFrom;
    live.add(net);
    try {
      net.setup(podCount, opts.ipv6 ?? true);
    } catch (err) {
      net.closeSync();
      throw err;
    }
    return net;
  }

  private setup(podCount: number, ipv6: boolean): void {
    const sub = parseInt(this.id.slice(0, 2), 16); // spreads concurrent runs over 198.18.x
    sh('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    sh('sysctl', ['-qw', `net.ipv6.conf.${this.bridge}.disable_ipv6=1`]);
    sh('ip', ['link', 'set', this.bridge, 'up']);
    for (let i = 0; i < podCount; i++) {
      const letter = String.fromCharCode(97 + i);
      const pod: Pod = {
        name: letter,
        netns: `knp-${this.id}-${letter}`,
        hostIf: `kv${this.id}${letter}`,
        ipv4: `198.18.${sub}.${i + 1}`,
        ipv6: `fd00:${sub.toString(16)}::${i + 1}`,
      };
      this.pods.push(pod);
      sh('ip', ['netns', 'add', pod.netns]);
      this.exec(pod, 'ip', ['link', 'set', 'lo', 'up']);
      // `default` covers the eth0 made next (and any later one), `all` what exists.
      if (!ipv6) this.exec(pod, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
      this.wire(pod, ipv6);
    }
  }

  /** The pod's veth: host end on the bridge, eth0 in the pod with its addresses. */
  private wire(pod: Pod, ipv6: boolean): void {
    const index = this.hostIfIndexFrom === undefined ? [] : ['index', String(this.hostIfIndexFrom + this.pods.indexOf(pod))];
    sh('ip', ['link', 'add', pod.hostIf, ...index, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.netns]);
    sh('sysctl', ['-qw', `net.ipv6.conf.${pod.hostIf}.disable_ipv6=1`]);
    sh('ip', ['link', 'set', pod.hostIf, 'master', this.bridge]);
    sh('ip', ['link', 'set', pod.hostIf, 'up']);
    this.exec(pod, 'ip', ['addr', 'add', `${pod.ipv4}/24`, 'dev', 'eth0']);
    if (ipv6) this.exec(pod, 'ip', ['addr', 'add', `${pod.ipv6}/64`, 'dev', 'eth0', 'nodad']);
    this.exec(pod, 'ip', ['link', 'set', 'eth0', 'up']);
  }

  /** Deletes the pod's veth, as a CNI does when a pod goes. */
  unplug(pod: Pod): void {
    sh('ip', ['link', 'del', pod.hostIf]);
  }

  /** Gives the pod a new veth with the same names and addresses. */
  replug(pod: Pod, opts: { ipv6?: boolean } = {}): void {
    this.wire(pod, opts.ipv6 ?? true);
  }

  pod(name: string): Pod {
    const p = this.pods.find((x) => x.name === name);
    if (!p) throw new Error(`no pod ${name}`);
    return p;
  }

  /** Runs a command inside a pod's namespace (argument vector, never a shell). */
  exec(pod: Pod, cmd: string, args: string[], opts: { timeoutMs?: number } = {}): string {
    return sh('ip', ['netns', 'exec', pod.netns, cmd, ...args], opts);
  }

  /** Runs the traffic helper (test/helpers/traffic.mjs) in a pod and waits for it. */
  traffic(pod: Pod, args: string[], timeoutMs = 60000): string {
    return this.exec(pod, process.execPath, [TRAFFIC, ...args], { timeoutMs });
  }

  /** Arguments that run the traffic helper with node: [script, ...args]. */
  trafficArgs(args: string[]): string[] {
    return [TRAFFIC, ...args];
  }

  /** Starts the traffic helper in the background; resolves once it prints "ready". */
  async background(pod: Pod, args: string[]): Promise<ChildProcess> {
    return spawnUntilReady('ip', ['netns', 'exec', pod.netns, process.execPath, TRAFFIC, ...args], `traffic ${args.join(' ')}`, (child) => {
      this.children.add(child);
      child.on('exit', () => this.children.delete(child));
    }, 'inherit');
  }

  /** Sends crafted Ethernet frames out of the pod's eth0 (AF_PACKET), each `count` times. */
  rawSend(pod: Pod, count: number, frames: Buffer[]): string {
    return this.exec(pod, process.execPath, this.rawSendArgs(count, frames));
  }

  /** Arguments that run the raw sender with node: [script, ...args]. */
  rawSendArgs(count: number, frames: Buffer[]): string[] {
    return [RAWSEND, 'eth0', String(count), ...frames.map((f) => f.toString('hex'))];
  }

  /** The MAC address of the pod's eth0. */
  mac(pod: Pod): string {
    const [link] = JSON.parse(this.exec(pod, 'ip', ['-j', 'link', 'show', 'eth0'])) as { address: string }[];
    return link!.address;
  }

  /** Interface statistics from sysfs (root namespace). */
  ifStat(ifname: string, stat: 'rx_packets' | 'tx_packets' | 'rx_bytes' | 'tx_bytes'): number {
    return Number(sh('cat', [`/sys/class/net/${ifname}/statistics/${stat}`]).trim());
  }

  closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    live.delete(this);
    for (const c of this.children) c.kill('SIGKILL');
    for (const p of this.pods) {
      trySh('ip', ['link', 'del', p.hostIf]);
      trySh('ip', ['netns', 'del', p.netns]);
    }
    trySh('ip', ['link', 'del', this.bridge]);
  }

  async close(): Promise<void> {
    this.closeSync();
  }
}

/**
 * Runs `fn` on a fresh node (pods a and b, and more if asked) with a fresh
 * monitor, and closes both whatever happens.
 */
export async function onTestNode(
  node: { pods?: number; ipv6?: boolean; hostIfIndexFrom?: number },
  monitorOptions: NetworkMonitorOptions,
  fn: (n: { net: TestNet; mon: NetworkMonitor; a: Pod; b: Pod }) => Promise<void>,
): Promise<void> {
  const net = TestNet.create(node.pods ?? 2, { ipv6: node.ipv6 ?? true, hostIfIndexFrom: node.hostIfIndexFrom });
  try {
    const mon = await NetworkMonitor.create(monitorOptions);
    try {
      await fn({ net, mon, a: net.pod('a'), b: net.pod('b') });
    } finally {
      await mon.close();
    }
  } finally {
    await net.close();
  }
}
