/**
 * `kubenetprobe top`: a live table of the busiest conversations (top
 * talkers), refreshed in place, sorted by bytes, packets or rate. Rates come
 * from the change between two reads of the agent's conversations.
 */
import type { TalkerGroup, TopTalker } from '../history/history-store.js';
import { formatBytes } from '../format.js';
import type { Conversation } from '../agent/conversations.js';
import { ep, table } from './render.js';
import { workloadName, type IdentityWire } from '../export/lines.js';

export type TopSort = 'bytes' | 'packets' | 'rate';

export interface TopRow {
  id: string;
  from: string;
  to: string;
  protocol: string;
  bytes: number;
  packets: number;
  bytesPerSec: number;
  state: string;
}

/** A conversation as the API sends it: each end's pod where the agent knows it (absent from older agents). */
export type ConversationWire = Conversation & {
  aIdentity?: IdentityWire | null;
  bIdentity?: IdentityWire | null;
};

/** "namespace/pod:port" where the pod is known (as hubble observe names ends), else "ip:port". */
const named = (e: { ip: string; port: number }, id: IdentityWire | null | undefined): string =>
  id ? `${id.namespace}/${id.pod}:${e.port}` : ep(e.ip, e.port);

/** Rows for one frame: totals from `now`, rates against `before` (read `seconds` earlier). */
export function topRows(before: readonly ConversationWire[], now: readonly ConversationWire[], seconds: number, sort: TopSort, limit: number): TopRow[] {
  const prev = new Map(before.map((c) => [c.id, c.aToB.bytes + c.bToA.bytes]));
  const rows = now.map((c) => {
    const bytes = c.aToB.bytes + c.bToA.bytes;
    const was = prev.get(c.id);
    return {
      id: c.id,
      from: named(c.a, c.aIdentity),
      to: named(c.b, c.bIdentity),
      protocol: c.protocol,
      bytes,
      packets: c.aToB.packets + c.bToA.packets,
      // A conversation that started between the reads: all of it is new.
      bytesPerSec: seconds > 0 ? Math.max(0, bytes - (was ?? 0)) / seconds : 0,
      state: c.state === 'none' ? '' : c.state,
    };
  });
  const key = sort === 'rate' ? 'bytesPerSec' : sort;
  return rows.sort((x, y) => y[key] - x[key] || x.id.localeCompare(y.id)).slice(0, limit);
}


export function renderTop(rows: readonly TopRow[], sort: TopSort, at: Date): string {
  const head = `kubenetprobe top — ${at.toISOString()} — ${rows.length} conversations, by ${sort}`;
  const body = table([
    ['FROM', 'TO', 'PROTO', 'BYTES', 'PACKETS', 'RATE', 'STATE'],
    ...rows.map((r) => [r.from, r.to, r.protocol, formatBytes(r.bytes), String(r.packets), `${formatBytes(r.bytesPerSec)}/s`, r.state || '-']),
  ]);
  return `${head}\n${body}`;
}

/** A top talker from the history, as the API sends it (GET /api/v1/top): the store's own row, all plain values. */
export type TalkerWire = TopTalker;

export type { TalkerGroup };

/** "namespace/pod (ip)" where the pod is known ("namespace/pod (ip, svc name)" where its service is too), else the address. */
function end(ip: string | undefined, namespace: string | null | undefined, pod: string | null | undefined, service?: string | null): string {
  if (ip === undefined) return '-';
  return namespace && pod ? `${namespace}/${pod} (${ip}${service ? `, svc ${service}` : ''})` : ip;
}

/** The json line for a talker: the fields of its ends (null where the pod is unknown; the workload as "Kind/name"), then the sums. */
export function talkerLine(t: TalkerWire): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (t.srcIp !== undefined) {
    Object.assign(out, { srcIp: t.srcIp, srcNamespace: t.srcNamespace ?? null, srcPod: t.srcPod ?? null, srcWorkload: workloadName(t.srcWorkload), srcService: t.srcService ?? null });
  }
  if (t.dstIp !== undefined) {
    Object.assign(out, { dstIp: t.dstIp, dstNamespace: t.dstNamespace ?? null, dstPod: t.dstPod ?? null, dstWorkload: workloadName(t.dstWorkload), dstService: t.dstService ?? null });
  }
  return { ...out, bytes: t.bytes, packets: t.packets, records: t.records };
}

/** `top --since`: the busiest talkers in a past range, once. */
export function renderTalkers(talkers: readonly TalkerWire[], o: { by: 'bytes' | 'packets'; group: TalkerGroup; since: string | undefined; until: string | undefined; at: Date }): string {
  const range = `${o.since ?? 'the oldest kept'} to ${o.until ?? 'now'}`;
  const what = o.group === 'pair' ? 'source -> destination' : o.group;
  const head = `kubenetprobe top — from history, ${range} (at ${o.at.toISOString()}) — ${talkers.length} talkers (${what}), by ${o.by}`;
  if (talkers.length === 0) return `${head}\nno flow records in this range`;
  const cols = o.group === 'pair' ? ['SOURCE', 'DESTINATION'] : o.group === 'source' ? ['SOURCE'] : ['DESTINATION'];
  const rows = talkers.map((t) => {
    const src = end(t.srcIp, t.srcNamespace, t.srcPod, t.srcService);
    const dst = end(t.dstIp, t.dstNamespace, t.dstPod, t.dstService);
    const ends = o.group === 'pair' ? [src, dst] : o.group === 'source' ? [src] : [dst];
    return [...ends, formatBytes(t.bytes), String(t.packets), String(t.records)];
  });
  return `${head}\n${table([[...cols, 'BYTES', 'PACKETS', 'RECORDS'], ...rows])}`;
}
