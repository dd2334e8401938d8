/**
 * Finds each local pod's host-side interface from the pod's IP, the way
 * CNIs lay pods out on a node:
 *
 * - Every common CNI joins a pod to the node with a veth (or netkit) pair:
 *   Calico's cali*, Cilium's lxc*, the bridge plugin's veth* (a port of
 *   cni0). The pod's IP sits on the peer, inside the pod's network
 *   namespace. So the first way is to read the addresses of each peer's
 *   namespace (through netlink, by namespace id) and match the IP: it works
 *   whatever the routing looks like, Cilium's included (its routes go
 *   through cilium_host, not the pod's lxc).
 * - Where that finds nothing (the IP is on another device of the pod, or
 *   the namespace can't be read), the route the kernel would take to the
 *   IP names the interface, when it is a link into another namespace:
 *   Calico and Cilium's native routing add a /32 route to each pod's veth.
 *
 * The address dumps are cached per namespace and made again only when the
 * links into that namespace change, or the cache is older than FULL_REFRESH_MS.
 */
import type { LinkInfo, RtNetlink } from '../netlink/rtnetlink.js';

/** How a pod's interface was found. */
export type FoundBy = 'peer-address' | 'route';

export interface PodInterface {
  ifindex: number;
  name: string;
  foundBy: FoundBy;
}

/** The netlink queries the finder makes (RtNetlink has them). */
export type NetlinkQueries = Pick<RtNetlink, 'links' | 'addresses' | 'routeTo'>;

/** An IP the route did not place on a pod's interface is not asked about again for this long. */
const ROUTE_MISS_MS = 10_000;

/**
 * Route lookups per look, at most: where the pods to find are the whole
 * cluster's (no node name), the misses are asked about a batch at a time.
 */
const MAX_ROUTE_LOOKUPS = 256;

/** Address dumps older than this are made again even when the links did not change (an IP changed in place). */
const FULL_REFRESH_MS = 60_000;

interface NamespaceAddresses {
  /** The links into the namespace when it was read ("host:peer,..."): a change means a new read. */
  signature: string;
  readAt: number;
  /** Peer ifindex -> its addresses. */
  byPeer: Map<number, string[]>;
}

export class PodInterfaceFinder {
  private readonly namespaces = new Map<number, NamespaceAddresses>();
  /** IPs whose route led to no pod interface, until when: pods of other nodes are asked about once in a while, not every sync. */
  private readonly routeMisses = new Map<string, number>();
  /** Namespace ids that could not be read, with the reason (shown once by the caller). */
  readonly unreadable = new Map<number, string>();

  constructor(
    private readonly netlink: NetlinkQueries,
    private readonly now: () => number = Date.now,
  ) {}

  /** The host-side interface of each of `ips` that is found; the rest are not on this node (or not yet). */
  find(ips: Iterable<string>): Map<string, PodInterface> {
    const links = this.netlink.links();
    const byIndex = new Map(links.map((l) => [l.ifindex, l]));
    const intoNamespace = new Map<number, LinkInfo[]>();
    for (const l of links) {
      if (l.peerNetnsId === undefined || l.peerIfindex === undefined) continue;
      const list = intoNamespace.get(l.peerNetnsId) ?? [];
      list.push(l);
      intoNamespace.set(l.peerNetnsId, list);
    }
    for (const id of this.namespaces.keys()) if (!intoNamespace.has(id)) this.namespaces.delete(id);
    for (const id of this.unreadable.keys()) if (!intoNamespace.has(id)) this.unreadable.delete(id);

    // IP -> host link, from the peers' addresses.
    const byIp = new Map<string, LinkInfo>();
    for (const [nsid, hostLinks] of intoNamespace) {
      const ns = this.addressesOf(nsid, hostLinks);
      if (!ns) continue;
      for (const l of hostLinks) {
        for (const ip of ns.byPeer.get(l.peerIfindex!) ?? []) byIp.set(ip, l);
      }
    }

    const out = new Map<string, PodInterface>();
    const now = this.now();
    for (const [ip, until] of this.routeMisses) if (until <= now) this.routeMisses.delete(ip);
    let routeLookups = 0;
    for (const ip of ips) {
      const l = byIp.get(ip);
      if (l) {
        out.set(ip, { ifindex: l.ifindex, name: l.name, foundBy: 'peer-address' });
        continue;
      }
      if (this.routeMisses.has(ip) || routeLookups >= MAX_ROUTE_LOOKUPS) continue;
      routeLookups++;
      const r = this.netlink.routeTo(ip);
      const via = r?.type === 'unicast' && r.oif !== undefined ? byIndex.get(r.oif) : undefined;
      // Only a link into another namespace is a pod's own: a bridge, cilium_host or eth0 is shared.
      if (via && via.peerNetnsId !== undefined) out.set(ip, { ifindex: via.ifindex, name: via.name, foundBy: 'route' });
      else this.routeMisses.set(ip, now + ROUTE_MISS_MS);
    }
    return out;
  }

  private addressesOf(nsid: number, hostLinks: LinkInfo[]): NamespaceAddresses | undefined {
    const signature = hostLinks
      .map((l) => `${l.ifindex}:${l.peerIfindex}`)
      .sort()
      .join(',');
    const cached = this.namespaces.get(nsid);
    const now = this.now();
    // A namespace whose peers had no address yet is read again: the CNI sets the address after it moves the veth in.
    const complete = cached && hostLinks.every((l) => (cached.byPeer.get(l.peerIfindex!) ?? []).length > 0);
    if (cached && cached.signature === signature && complete && now - cached.readAt < FULL_REFRESH_MS) return cached;
    let addresses;
    try {
      addresses = this.netlink.addresses(nsid);
    } catch (err) {
      this.unreadable.set(nsid, (err as Error).message.split('\n')[0]!);
      this.namespaces.delete(nsid);
      return undefined;
    }
    this.unreadable.delete(nsid);
    const byPeer = new Map<number, string[]>();
    for (const a of addresses) {
      // Link-local addresses are every pod's: they name no one.
      if (a.ip.startsWith('fe80:')) continue;
      const list = byPeer.get(a.ifindex) ?? [];
      list.push(a.ip);
      byPeer.set(a.ifindex, list);
    }
    const entry = { signature, readAt: now, byPeer };
    this.namespaces.set(nsid, entry);
    return entry;
  }
}
