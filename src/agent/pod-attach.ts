/**
 * Follows the local pods' host-side interfaces: which interface each pod
 * known to the agent (from the cluster, or the inventory) sits behind, as
 * pods start and go. Emits 'attach' when a pod's interface appears (or the
 * pod on a known interface changes) and 'detach' when it goes; the agent
 * attaches and detaches the programs.
 *
 * It looks again every `intervalMs`, and at once when asked (syncSoon: a
 * pod was added, a link appeared). A look is a link dump and, for new
 * links only, an address dump of the pod's namespace (PodInterfaceFinder).
 */
import { EventEmitter } from 'node:events';
import { RtNetlink } from '../netlink/rtnetlink.js';
import { PodInterfaceFinder, type FoundBy, type NetlinkQueries } from './pod-interfaces.js';
import type { PodIdentity } from './inventory.js';

/** A pod's host-side interface. */
export interface PodAttachment {
  ifindex: number;
  name: string;
  /** The pod's IP it was found by (the first, where the pod has several). */
  ip: string;
  pod: PodIdentity;
  foundBy: FoundBy;
}

export interface PodAttacherEvents {
  attach: [PodAttachment];
  detach: [PodAttachment];
  error: [Error];
}

export interface PodAttacherOptions {
  /** The pods to look for, by IP (the agent's knownPods()). */
  pods: () => Iterable<[string, PodIdentity]>;
  /** How often to look again (ms). */
  intervalMs: number;
  /** Netlink queries (tests); default: an rtnetlink socket of this network namespace. */
  netlink?: NetlinkQueries & { close?(): void };
}

const samePod = (a: PodIdentity, b: PodIdentity): boolean => a.namespace === b.namespace && a.pod === b.pod;

export class PodAttacher extends EventEmitter<PodAttacherEvents> {
  private readonly current = new Map<number, PodAttachment>();
  private readonly finder: PodInterfaceFinder;
  private readonly netlink: NetlinkQueries & { close?(): void };
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Immediate | undefined;
  private closed = false;
  private lastError: string | undefined;
  /** Problems with one namespace already reported (each is said once). */
  private readonly said = new Set<string>();

  constructor(private readonly opts: PodAttacherOptions) {
    super();
    this.netlink = opts.netlink ?? RtNetlink.open();
    this.finder = new PodInterfaceFinder(this.netlink);
  }

  /** Looks once now (the pods present at start: in `attachments()` and as 'attach' events), then every intervalMs. */
  start(): this {
    this.sync();
    this.timer = setInterval(() => this.sync(), this.opts.intervalMs);
    this.timer.unref();
    return this;
  }

  /** The pods' interfaces found now. */
  attachments(): PodAttachment[] {
    return [...this.current.values()];
  }

  /** Looks again on the next turn of the event loop (several calls make one look). */
  syncSoon(): void {
    if (this.closed || this.soon) return;
    this.soon = setImmediate(() => {
      this.soon = undefined;
      this.sync();
    });
  }

  /** Looks now: emits 'attach' and 'detach' for what changed since the last look. */
  sync(): void {
    if (this.closed) return;
    let found: Map<number, PodAttachment>;
    try {
      found = this.look();
      this.lastError = undefined;
    } catch (err) {
      // Said once until it works again: a failing look is retried every interval.
      const message = `pod interfaces: ${(err as Error).message.split('\n')[0]}`;
      if (message !== this.lastError) this.emit('error', new Error(message));
      this.lastError = message;
      return;
    }
    for (const [nsid, why] of this.finder.unreadable) {
      const message = `pod interfaces: the addresses of network namespace id ${nsid} can't be read (its pods are found by route only): ${why}`;
      if (!this.said.has(message)) this.emit('error', new Error(message));
      this.said.add(message);
    }
    for (const [ifindex, had] of [...this.current]) {
      const now = found.get(ifindex);
      if (now && now.name === had.name) continue;
      this.current.delete(ifindex);
      this.emit('detach', had);
    }
    for (const [ifindex, a] of found) {
      const had = this.current.get(ifindex);
      if (had && samePod(had.pod, a.pod) && had.ip === a.ip) continue;
      this.current.set(ifindex, a);
      this.emit('attach', a);
    }
  }

  private look(): Map<number, PodAttachment> {
    const pods = new Map<string, PodIdentity>();
    for (const [ip, id] of this.opts.pods()) pods.set(ip, id);
    const out = new Map<number, PodAttachment>();
    for (const [ip, at] of this.finder.find(pods.keys())) {
      // A pod with an IPv4 and an IPv6 address is one interface: the first IP names it.
      if (out.has(at.ifindex)) continue;
      out.set(at.ifindex, { ifindex: at.ifindex, name: at.name, ip, pod: pods.get(ip)!, foundBy: at.foundBy });
    }
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    if (this.soon) clearImmediate(this.soon);
    this.netlink.close?.();
  }
}
