/**
 * A small Kubernetes-like node on this one machine: each pod is a network
 * namespace with a name, a namespace and labels, joined to a host bridge by
 * a veth whose host end the agent watches (the bridge CNI's layout). All
 * addresses live inside the demo's own namespaces (198.18.0.0/15, RFC 2544).
 * Every command is an argument vector; nothing goes through a shell.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { spawnUntilReady } from './spawn-ready.js';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';

export interface DemoPod {
  /** A short name the demo's code uses ("frontend", "api", ...). */
  role: string;
  /** The pod's name, as a controller names it (frontend-6f7c9-x2k4q). */
  name: string;
  namespace: string;
  labels: Record<string, string>;
  /** What owns it, as the owner chain gives it (ReplicaSet -> Deployment). */
  workload: { kind: string; name: string };
  /** The service whose endpoints list it. */
  service?: string;
  netns: string;
  hostIf: string;
  ip: string;
}

/** The pods of the demo: a small shop, its database and DNS, a client, an attacker. */
export const DEMO_PODS: readonly Pick<DemoPod, 'role' | 'name' | 'namespace' | 'labels' | 'workload' | 'service'>[] = [
  { role: 'frontend', name: 'frontend-6f7c9-x2k4q', namespace: 'shop', labels: { app: 'frontend' }, workload: { kind: 'Deployment', name: 'frontend' }, service: 'frontend' },
  { role: 'api', name: 'api-58d4b-9mzt7', namespace: 'shop', labels: { app: 'api' }, workload: { kind: 'Deployment', name: 'api' }, service: 'api' },
  { role: 'db', name: 'postgres-0', namespace: 'data', labels: { app: 'postgres' }, workload: { kind: 'StatefulSet', name: 'postgres' }, service: 'postgres' },
  { role: 'dns', name: 'coredns-7db6d-lq8vw', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' }, workload: { kind: 'Deployment', name: 'coredns' }, service: 'kube-dns' },
  { role: 'client', name: 'loadgen-28731-hc2vd', namespace: 'default', labels: { app: 'loadgen' }, workload: { kind: 'CronJob', name: 'loadgen' } },
  { role: 'attacker', name: 'debug-shell', namespace: 'default', labels: { app: 'debug' }, workload: { kind: 'Pod', name: 'debug-shell' } },
];

function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function tryRun(cmd: string, args: string[]): void {
  try {
    run(cmd, args);
  } catch {
    /* already gone */
  }
}

export class DemoNode {
  readonly id = randomBytes(3).toString('hex');
  readonly bridge = `kdb${this.id}`;
  readonly pods: DemoPod[] = [];
  private readonly children = new Set<ChildProcess>();
  private closed = false;

  /** The glob that names the pods' host-side veths. */
  get interfaceGlob(): string {
    return `kd${this.id}*`;
  }

  static create(): DemoNode {
    const node = new DemoNode();
    try {
      node.build();
    } catch (err) {
      node.close();
      throw err;
    }
    return node;
  }

  private build(): void {
    const sub = parseInt(this.id.slice(0, 2), 16);
    run('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    run('sysctl', ['-qw', `net.ipv6.conf.${this.bridge}.disable_ipv6=1`]);
    run('ip', ['link', 'set', this.bridge, 'up']);
    DEMO_PODS.forEach((p, i) => {
      const pod: DemoPod = { ...p, netns: `kdemo-${this.id}-${p.role}`, hostIf: `kd${this.id}${i}`, ip: `198.18.${sub}.${10 + i}` };
      this.pods.push(pod);
      run('ip', ['netns', 'add', pod.netns]);
      run('ip', ['link', 'add', pod.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.netns]);
      run('sysctl', ['-qw', `net.ipv6.conf.${pod.hostIf}.disable_ipv6=1`]);
      run('ip', ['link', 'set', pod.hostIf, 'master', this.bridge, 'up']);
      run('ip', ['-n', pod.netns, 'link', 'set', 'lo', 'up']);
      run('ip', ['-n', pod.netns, 'addr', 'add', `${pod.ip}/24`, 'dev', 'eth0']);
      run('ip', ['-n', pod.netns, 'link', 'set', 'eth0', 'up']);
    });
  }

  /** A pod by its role ("frontend", "api", "db", "dns", "client", "attacker"). */
  pod(role: string): DemoPod {
    const p = this.pods.find((x) => x.role === role);
    if (!p) throw new Error(`no demo pod ${role}`);
    return p;
  }

  /** Writes the inventory as JSON (the static identity source without a cluster). */
  writeInventory(dir: string): string {
    const path = join(dir, `kubenetprobe-demo-${this.id}-inventory.json`);
    const pods = this.pods.map(({ name, namespace, labels, ip, workload, service }) => ({ name, namespace, labels, ip, workload, ...(service ? { service } : {}) }));
    writeFileSync(path, JSON.stringify({ pods }, null, 2));
    return path;
  }

  /** Runs tools/demo-traffic.mjs in a pod; resolves when it says it is ready. */
  async traffic(pod: DemoPod, args: string[]): Promise<void> {
    const script = join(packageRoot(), 'tools', 'demo-traffic.mjs');
    await spawnUntilReady('ip', ['netns', 'exec', pod.netns, process.execPath, script, ...args], `demo traffic ${args[0]} in ${pod.name}`, (child) => {
      this.children.add(child);
      child.on('exit', () => this.children.delete(child));
    });
  }

  /** Runs a command in a pod and waits for it (bounded by `timeoutMs`). */
  exec(pod: DemoPod, cmd: string, args: string[], timeoutMs = 10000): void {
    execFileSync('ip', ['netns', 'exec', pod.netns, cmd, ...args], { stdio: 'ignore', timeout: timeoutMs });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.children) c.kill('SIGKILL');
    for (const p of this.pods) {
      tryRun('ip', ['link', 'del', p.hostIf]);
      tryRun('ip', ['netns', 'del', p.netns]);
    }
    tryRun('ip', ['link', 'del', this.bridge]);
  }
}
