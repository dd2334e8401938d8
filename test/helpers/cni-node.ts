/**
 * Pods laid out on this machine the way three CNIs lay them out, for the
 * pod-attach tests. Each pod is a network namespace joined to the root
 * namespace by a veth; what differs is the host side:
 *
 * - calico: host veth "cali…" with no address, proxy ARP on, and a /32
 *   route to the pod through it; in the pod, eth0 has a /32 and a default
 *   route via 169.254.1.1 (Calico's gateway that no one owns).
 * - cilium: host veth "lxc…", no route to the pod through it: the routes go
 *   through a cilium_host/cilium_net veth pair in the root namespace, which
 *   holds the node's router address (Cilium's legacy host routing).
 * - bridge: host veth "veth…" as a port of a bridge (cni0) with the
 *   gateway address; in the pod, a /26 and a default route via it.
 *
 * Names are unique per run (6 hex digits); addresses come from
 * 198.19.0.0/16 (RFC 2544). close() removes everything, also on exit.
 */
import { randomBytes } from 'node:crypto';
import { sh } from './testnet.js';

export type Cni = 'calico' | 'cilium' | 'bridge';

export interface CniPod {
  cni: Cni;
  /** The pod's name in the inventory. */
  name: string;
  netns: string;
  /** The host-side interface the agent must find. */
  hostIf: string;
  ip: string;
  /** The address the pod sends to (its gateway); a static neighbour entry, so no ARP before the first packet. */
  gateway: string;
}

function trySh(cmd: string, args: string[]): void {
  try {
    sh(cmd, args);
  } catch {
    /* already gone */
  }
}

const live = new Set<CniNode>();
process.on('exit', () => {
  for (const n of live) n.close();
});

export class CniNode {
  readonly id = randomBytes(3).toString('hex');
  /** 198.19.<sub>.0/24 holds this run's pods. */
  private readonly sub = parseInt(this.id.slice(0, 2), 16);
  readonly pods: CniPod[] = [];
  private readonly links = new Set<string>();
  /** Each CNI's pods in a range of their own: calico .10-.63, bridge .64-.125 (gateway .126/26), cilium .130-.250 (router .129, /25). */
  private readonly nextHost: Record<Cni, number> = { calico: 10, bridge: 64, cilium: 130 };
  private ciliumHost: string | undefined;
  private bridge: string | undefined;

  constructor() {
    live.add(this);
  }

  /** An address of this run's /24. */
  address(host: number): string {
    return `198.19.${this.sub}.${host}`;
  }

  /** Adds a pod laid out as `cni` lays pods out. */
  addPod(cni: Cni, name: string): CniPod {
    const n = this.pods.length;
    const letter = String.fromCharCode(97 + n);
    const hostIf = `${cni === 'calico' ? 'cali' : cni === 'cilium' ? 'lxc' : 'veth'}${this.id}${letter}`;
    const pod: CniPod = { cni, name, netns: `knp-cni-${this.id}-${letter}`, hostIf, ip: this.address(this.nextHost[cni]++), gateway: '' };
    this.pods.push(pod);
    sh('ip', ['netns', 'add', pod.netns]);
    const inPod = (...args: string[]): string => sh('ip', ['netns', 'exec', pod.netns, ...args]);
    inPod('sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
    inPod('ip', 'link', 'set', 'lo', 'up');
    sh('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.netns]);
    this.links.add(hostIf);
    sh('sysctl', ['-qw', `net.ipv6.conf.${hostIf}.disable_ipv6=1`]);
    switch (cni) {
      case 'calico':
        pod.gateway = '169.254.1.1';
        inPod('ip', 'addr', 'add', `${pod.ip}/32`, 'dev', 'eth0');
        inPod('ip', 'link', 'set', 'eth0', 'up');
        inPod('ip', 'route', 'add', pod.gateway, 'dev', 'eth0', 'scope', 'link');
        inPod('ip', 'route', 'add', 'default', 'via', pod.gateway, 'dev', 'eth0');
        sh('sysctl', ['-qw', `net.ipv4.conf.${hostIf}.proxy_arp=1`]);
        sh('ip', ['link', 'set', hostIf, 'up']);
        sh('ip', ['route', 'add', `${pod.ip}/32`, 'dev', hostIf, 'scope', 'link']);
        break;
      case 'cilium': {
        const router = this.ensureCiliumHost();
        pod.gateway = router;
        inPod('ip', 'addr', 'add', `${pod.ip}/32`, 'dev', 'eth0');
        inPod('ip', 'link', 'set', 'eth0', 'up');
        inPod('ip', 'route', 'add', router, 'dev', 'eth0', 'scope', 'link');
        inPod('ip', 'route', 'add', 'default', 'via', router, 'dev', 'eth0');
        sh('ip', ['link', 'set', hostIf, 'up']);
        break;
      }
      case 'bridge': {
        const gw = this.ensureBridge();
        pod.gateway = gw;
        inPod('ip', 'addr', 'add', `${pod.ip}/26`, 'dev', 'eth0');
        inPod('ip', 'link', 'set', 'eth0', 'up');
        inPod('ip', 'route', 'add', 'default', 'via', gw, 'dev', 'eth0');
        sh('ip', ['link', 'set', hostIf, 'master', this.bridge!]);
        sh('ip', ['link', 'set', hostIf, 'up']);
        break;
      }
    }
    // The gateway's MAC is the host veth's (or the bridge's): no ARP exchange before the test's packets.
    const mac = (JSON.parse(sh('ip', ['-j', 'link', 'show', cni === 'bridge' ? this.bridge! : hostIf])) as { address: string }[])[0]!.address;
    inPod('ip', 'neigh', 'replace', pod.gateway, 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent');
    return pod;
  }

  /** cilium_host/cilium_net: a veth pair in the root namespace, the router address on cilium_host, the pods' routes through it. */
  private ensureCiliumHost(): string {
    const router = this.address(129);
    if (this.ciliumHost) return router;
    this.ciliumHost = `kch${this.id}`;
    const net = `kcn${this.id}`;
    sh('ip', ['link', 'add', this.ciliumHost, 'type', 'veth', 'peer', 'name', net]);
    this.links.add(this.ciliumHost);
    sh('ip', ['addr', 'add', `${router}/32`, 'dev', this.ciliumHost]);
    sh('ip', ['link', 'set', this.ciliumHost, 'up']);
    sh('ip', ['link', 'set', net, 'up']);
    sh('ip', ['route', 'add', `198.19.${this.sub}.128/25`, 'dev', this.ciliumHost, 'src', router]);
    return router;
  }

  /** cni0: a bridge with the gateway address of the bridge pods. */
  private ensureBridge(): string {
    const gw = this.address(126);
    if (this.bridge) return gw;
    this.bridge = `kcb${this.id}`;
    sh('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    this.links.add(this.bridge);
    sh('sysctl', ['-qw', `net.ipv6.conf.${this.bridge}.disable_ipv6=1`]);
    sh('ip', ['addr', 'add', `${gw}/26`, 'dev', this.bridge]);
    sh('ip', ['link', 'set', this.bridge, 'up']);
    return gw;
  }

  /** Removes a pod as a CNI does when it goes: its namespace, and with it the veth. */
  removePod(pod: CniPod): void {
    trySh('ip', ['link', 'del', pod.hostIf]);
    trySh('ip', ['netns', 'del', pod.netns]);
    this.links.delete(pod.hostIf);
    this.pods.splice(this.pods.indexOf(pod), 1);
  }

  /** Runs a command in the pod's namespace (an argument vector, never a shell). */
  exec(pod: CniPod, cmd: string, args: string[]): string {
    return sh('ip', ['netns', 'exec', pod.netns, cmd, ...args]);
  }

  close(): void {
    if (!live.delete(this)) return;
    for (const p of [...this.pods]) this.removePod(p);
    for (const l of this.links) trySh('ip', ['link', 'del', l]);
    this.links.clear();
  }
}
