/**
 * Traffic per pod for the pod-level metrics, under a cardinality budget.
 *
 * A pod's totals: what it sent (flows from its address) and received (flows
 * to its address). The kernel counts each packet to one flow per node, at
 * the first watched hook it passes, so a packet between two pods of this
 * node counts once for each end. Only this node's pods are given (setPods),
 * so a remote pod's traffic is left to its own node's agent.
 * Totals = the figures of flows that have ended (final records) + the live
 * flows of the latest read, which keeps them monotonic.
 *
 * The budget: at most `budget` pods get series of their own, chosen by
 * bytes; the rest are summed under "other". Counters must never go down, so
 * a pod's series counts only what it moved while it had one (a pod promoted
 * later starts from zero), and "other" counts what every pod moved while it
 * had none. A member is replaced only by a pod with 10 % more bytes.
 *
 * Workloads: every pod given with a workload also adds what it moved to its
 * workload's series (all its pods, whatever the budget), so long as the
 * workload has a pod here; bounded by the node's workloads, not its pods.
 */
import type { FlowTableView } from '../agent/flow-accounter.js';
import { encodeAddress } from '../abi/ip.js';

export interface PodCounts {
  sentBytes: number;
  sentPackets: number;
  receivedBytes: number;
  receivedPackets: number;
}

const FIELDS = ['sentBytes', 'sentPackets', 'receivedBytes', 'receivedPackets'] as const;
const zero = (): PodCounts => ({ sentBytes: 0, sentPackets: 0, receivedBytes: 0, receivedPackets: 0 });
const W = 11; // words per flow key
const V4_MAPPED = 0xffff0000; // word 2 of ::ffff:a.b.c.d, read little-endian

interface PodState {
  /** Ended flows' figures. */
  retired: PodCounts;
  /** The latest read's live flows. */
  live: PodCounts;
  /** Totals when last accounted (for the increments). */
  last: PodCounts;
  /** Series value while it has its own series; undefined: it is in "other". */
  own: PodCounts | undefined;
}

export class PodTraffic {
  private readonly pods = new Map<string, PodState>();
  private readonly other = zero();
  /** Workload key ("namespace/Kind/name") -> what its pods moved while it was here. */
  private readonly workloads = new Map<string, PodCounts>();
  /** Pod key -> its workload key. */
  private workloadOf = new Map<string, string>();
  private v4 = new Map<number, string>();
  private v6 = new Map<string, string>();
  private byIp = new Map<string, string>();

  constructor(private readonly budget: number) {}

  /**
   * Which pod each address belongs to (pod key "namespace/name"), and its
   * workload (key "namespace/Kind/name") where known; pods not given are
   * forgotten, series and all, and so are workloads none of them has.
   */
  setPods(pods: Iterable<[ip: string, pod: string, workload?: string]>): void {
    this.v4 = new Map();
    this.v6 = new Map();
    this.byIp = new Map();
    this.workloadOf = new Map();
    const present = new Set<string>();
    for (const [ip, pod, workload] of pods) {
      const a = encodeAddress(ip);
      if (!a) continue;
      present.add(pod);
      if (workload !== undefined) {
        this.workloadOf.set(pod, workload);
        if (!this.workloads.has(workload)) this.workloads.set(workload, zero());
      }
      this.byIp.set(ip, pod);
      // The flow key holds addresses as 4 little-endian words.
      const w = new Uint32Array(a.buffer, a.byteOffset, 4);
      if (w[0] === 0 && w[1] === 0 && w[2] === V4_MAPPED) this.v4.set(w[3]!, pod);
      else this.v6.set(`${w[0]},${w[1]},${w[2]},${w[3]}`, pod);
    }
    for (const pod of this.pods.keys()) if (!present.has(pod)) this.pods.delete(pod);
    const kept = new Set(this.workloadOf.values());
    for (const w of this.workloads.keys()) if (!kept.has(w)) this.workloads.delete(w);
  }

  private podAt(w: Uint32Array, at: number): string | undefined {
    if (w[at] === 0 && w[at + 1] === 0 && w[at + 2] === V4_MAPPED) return this.v4.get(w[at + 3]!);
    return this.v6.size ? this.v6.get(`${w[at]},${w[at + 1]},${w[at + 2]},${w[at + 3]}`) : undefined;
  }

  private state(pod: string): PodState {
    let s = this.pods.get(pod);
    if (!s) {
      s = { retired: zero(), live: zero(), last: zero(), own: undefined };
      this.pods.set(pod, s);
    }
    return s;
  }

  private add(c: PodCounts, sent: boolean, packets: number, bytes: number): void {
    if (sent) {
      c.sentPackets += packets;
      c.sentBytes += bytes;
    } else {
      c.receivedPackets += packets;
      c.receivedBytes += bytes;
    }
  }

  /**
   * A flow that ended (a final record), with its last figures. Call it for
   * a read's final records before read(): the read no longer has them.
   */
  ended(flow: { srcIp: string; dstIp: string }, packets: number, bytes: number): void {
    this.retire(this.byIp.get(flow.srcIp), this.byIp.get(flow.dstIp), packets, bytes);
  }

  /** ended() for a flow given by its kernel key (11 words from `at`): no address decoded. */
  endedAt(keyWords: Uint32Array, at: number, packets: number, bytes: number): void {
    this.retire(this.podAt(keyWords, at), this.podAt(keyWords, at + 4), packets, bytes);
  }

  private retire(src: string | undefined, dst: string | undefined, packets: number, bytes: number): void {
    if (src) this.add(this.state(src).retired, true, packets, bytes);
    if (dst) this.add(this.state(dst).retired, false, packets, bytes);
  }

  /** Takes a read of the table (flows marked removed have ended and come through ended()), then accounts. */
  read(view: FlowTableView): void {
    for (const s of this.pods.values()) s.live = zero();
    const w = view.keyWords;
    for (let i = 0; i < view.count; i++) {
      if (view.removed[i]) continue;
      const at = i * W;
      const src = this.podAt(w, at);
      const dst = this.podAt(w, at + 4);
      if (!src && !dst) continue;
      const packets = view.packetsAt(i);
      const bytes = view.bytesAt(i);
      if (src) this.add(this.state(src).live, true, packets, bytes);
      if (dst) this.add(this.state(dst).live, false, packets, bytes);
    }
    this.account();
  }

  private total(s: PodState): PodCounts {
    const t = zero();
    for (const f of FIELDS) t[f] = s.retired[f] + s.live[f];
    return t;
  }

  /** Re-chooses the members by their new totals, then moves each pod's increment to its own series or to "other". */
  private account(): void {
    const totals = new Map<PodState, PodCounts>();
    for (const s of this.pods.values()) totals.set(s, this.total(s));
    this.choose((s) => {
      const t = totals.get(s)!;
      return t.sentBytes + t.receivedBytes;
    });
    for (const [pod, s] of this.pods) {
      const t = totals.get(s)!;
      const w = this.workloadOf.get(pod);
      const workload = w === undefined ? undefined : this.workloads.get(w);
      for (const f of FIELDS) {
        const d = Math.max(0, t[f] - s.last[f]);
        if (s.own) s.own[f] += d;
        else this.other[f] += d;
        if (workload) workload[f] += d;
      }
      s.last = t;
    }
  }

  private choose(bytes: (s: PodState) => number): void {
    const members = [...this.pods.values()].filter((s) => s.own);
    const rest = [...this.pods.values()].filter((s) => !s.own && bytes(s) > 0).sort((a, b) => bytes(b) - bytes(a));
    for (const s of rest) {
      if (members.length < this.budget) {
        s.own = zero();
        members.push(s);
        continue;
      }
      // Replace the smallest member only for a clear winner (no flapping).
      let min = members[0];
      for (const m of members) if (min && bytes(m) < bytes(min)) min = m;
      if (!min || bytes(s) <= bytes(min) * 1.1) break;
      min.own = undefined;
      s.own = zero();
      members[members.indexOf(min)] = s;
    }
  }

  /** Series values: pods with their own, "other", and each workload with a pod here. */
  series(): { pods: Map<string, PodCounts>; other: PodCounts; workloads: Map<string, PodCounts> } {
    const pods = new Map<string, PodCounts>();
    for (const [pod, s] of this.pods) if (s.own) pods.set(pod, { ...s.own });
    const workloads = new Map<string, PodCounts>();
    for (const [w, c] of this.workloads) workloads.set(w, { ...c });
    return { pods, other: { ...this.other }, workloads };
  }
}
