/**
 * Conversations: the two directions of one connection merged into one
 * record, with packets and bytes each way and the TCP state as far as the
 * flags tell it. The kernel counts a packet once per node, where it entered
 * (pod a's veth ingress, not again at pod b's veth egress), but where a
 * direction has several observations (both ends of one veth pair watched)
 * it is counted from the one that saw the most of it, never summed.
 */
import type { FlowStats } from '../types.js';

export interface Endpoint {
  ip: string;
  port: number;
}

export type TcpState = 'open' | 'closing' | 'closed' | 'reset' | 'syn-sent' | 'none';

export interface DirectionCounts {
  packets: number;
  bytes: number;
  /** Interface and hook the counts come from, e.g. "kv12ab34a ingress". */
  observedAt: string | undefined;
}

export interface Conversation {
  /** Stable id: protocol and both endpoints, client first where known. */
  id: string;
  protocol: string;
  /** The client where TCP flags tell it (the side that sent a SYN without ACK), else the side with the higher port. */
  a: Endpoint;
  b: Endpoint;
  aToB: DirectionCounts;
  bToA: DirectionCounts;
  /** TCP only; 'none' for other protocols. */
  state: TcpState;
  synCount: number;
  finCount: number;
  rstCount: number;
  firstSeen: Date;
  lastSeen: Date;
  /** Every interface that saw part of it. */
  interfaces: string[];
}

function endpointText(e: Endpoint): string {
  return e.ip.includes(':') ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`;
}

function compareEndpoints(x: Endpoint, y: Endpoint): number {
  return x.ip < y.ip ? -1 : x.ip > y.ip ? 1 : x.port - y.port;
}

/** The one observation of a direction that saw the most packets. */
function best(flows: readonly FlowStats[]): FlowStats | undefined {
  let top: FlowStats | undefined;
  for (const f of flows) if (!top || f.packets > top.packets || (f.packets === top.packets && f.bytes > top.bytes)) top = f;
  return top;
}

function tcpState(fwd: FlowStats | undefined, rev: FlowStats | undefined): TcpState {
  const flags = (f: FlowStats | undefined): readonly string[] => f?.tcpFlags ?? [];
  if ((fwd?.rstCount ?? 0) + (rev?.rstCount ?? 0) > 0) return 'reset';
  const finF = (fwd?.finCount ?? 0) > 0;
  const finR = (rev?.finCount ?? 0) > 0;
  if (finF && finR) return 'closed';
  if (finF || finR) return 'closing';
  if (flags(fwd).includes('SYN') && !rev) return 'syn-sent';
  return 'open';
}

/** Merges flows (any interfaces, any direction) into conversations. */
export function toConversations(flows: readonly FlowStats[]): Conversation[] {
  // Group observations by the directional 5-tuple, then pair the directions.
  const byTuple = new Map<string, FlowStats[]>();
  for (const f of flows) {
    const k = f.key;
    const t = `${k.protocolNumber} ${endpointText({ ip: k.srcIp, port: k.srcPort })} ${endpointText({ ip: k.dstIp, port: k.dstPort })}`;
    let list = byTuple.get(t);
    if (!list) byTuple.set(t, (list = []));
    list.push(f);
  }
  const out = new Map<string, Conversation>();
  for (const observations of byTuple.values()) {
    const f = best(observations)!;
    const k = f.key;
    const src = { ip: k.srcIp, port: k.srcPort };
    const dst = { ip: k.dstIp, port: k.dstPort };
    const lo = compareEndpoints(src, dst) <= 0 ? src : dst;
    const hi = lo === src ? dst : src;
    const pairKey = `${k.protocolNumber} ${endpointText(lo)} ${endpointText(hi)}`;
    if (out.has(pairKey)) continue; // built from the other direction already
    const revTuple = `${k.protocolNumber} ${endpointText(dst)} ${endpointText(src)}`;
    const rev = best(byTuple.get(revTuple) ?? []);
    // The client: the direction that sent a SYN without ACK; else the side
    // with the higher port (services listen on the lower, well-known one);
    // with equal ports, the lower endpoint.
    const fwdIsA = f.opened ? true : rev?.opened ? false : src.port !== dst.port ? src.port > dst.port : lo === src;
    const ab = fwdIsA ? f : rev;
    const ba = fwdIsA ? rev : f;
    const a = fwdIsA ? src : dst;
    const b = fwdIsA ? dst : src;
    const counts = (x: FlowStats | undefined): DirectionCounts => ({
      packets: x?.packets ?? 0,
      bytes: x?.bytes ?? 0,
      observedAt: x ? `${x.interface ?? `ifindex ${x.key.ifindex}`} ${x.key.direction}` : undefined,
    });
    const all = [...observations, ...(byTuple.get(revTuple) ?? [])];
    const isTcp = k.protocol === 'TCP';
    out.set(pairKey, {
      id: `${k.protocol} ${endpointText(a)} ${endpointText(b)}`,
      protocol: k.protocol,
      a,
      b,
      aToB: counts(ab),
      bToA: counts(ba),
      state: isTcp ? tcpState(ab, ba) : 'none',
      synCount: (ab?.synCount ?? 0) + (ba?.synCount ?? 0),
      finCount: (ab?.finCount ?? 0) + (ba?.finCount ?? 0),
      rstCount: (ab?.rstCount ?? 0) + (ba?.rstCount ?? 0),
      firstSeen: new Date(Math.min(...all.map((x) => x.firstSeen.getTime()))),
      lastSeen: new Date(Math.max(...all.map((x) => x.lastSeen.getTime()))),
      interfaces: [...new Set(all.map((x) => x.interface ?? `ifindex ${x.key.ifindex}`))].sort(),
    });
  }
  return [...out.values()];
}
