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
  name: string;
  namespace: string;
  labels: Record<string, string>;
  netns: string;
  hostIf: string;
  ip: string;
}

/** The pods of the demo: a small shop, its database and DNS, a client, an attacker. */
export const DEMO_PODS: readonly Pick<DemoPod, 'name' | 'namespace' | 'labels'>[] = [
  { name: 'frontend', namespace: 'shop', labels: { app: 'frontend' } },
  { name: 'api', namespace: 'shop', labels: { app: 'api' } },
  { name: 'db', namespace: 'data', labels: { app: 'postgres' } },
  { name: 'dns', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' } },
  { name: 'client', namespace: 'default', labels: { app: 'client' } },
  { name: 'attacker', namespace: 'default', labels: { app: 'attacker' } },
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
      const pod: DemoPod = { ...p, netns: `kdemo-${this.id}-${p.name}`, hostIf: `kd${this.id}${i}`, ip: `198.18.${sub}.${10 + i}` };
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

  pod(name: string): DemoPod {
    const p = this.pods.find((x) => x.name === name);
    if (!p) throw new Error(`no demo pod ${name}`);
    return p;
  }

  /** ip -> pod, for naming what the flows show. */
  inventory(): Map<string, DemoPod> {
    return new Map(this.pods.map((p) => [p.ip, p]));
  }

  /** Writes the inventory as JSON (the static identity source without a cluster). */
  writeInventory(dir: string): string {
    const path = join(dir, `kubenetprobe-demo-${this.id}-inventory.json`);
    writeFileSync(path, JSON.stringify({ pods: this.pods.map(({ name, namespace, labels, ip }) => ({ name, namespace, labels, ip })) }, null, 2));
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
