/**
 * `kubenetprobe top`: a live table of the busiest conversations (top
 * talkers), refreshed in place, sorted by bytes, packets or rate. Rates come
 * from the change between two reads of the agent's conversations.
 */
import { formatBytes } from '../format.js';
import type { Conversation } from '../agent/conversations.js';
import { table } from './render.js';

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

const ep = (ip: string, port: number): string => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

/** Rows for one frame: totals from `now`, rates against `before` (read `seconds` earlier). */
export function topRows(before: readonly Conversation[], now: readonly Conversation[], seconds: number, sort: TopSort, limit: number): TopRow[] {
  const prev = new Map(before.map((c) => [c.id, c.aToB.bytes + c.bToA.bytes]));
  const rows = now.map((c) => {
    const bytes = c.aToB.bytes + c.bToA.bytes;
    const was = prev.get(c.id);
    return {
      id: c.id,
      from: ep(c.a.ip, c.a.port),
      to: ep(c.b.ip, c.b.port),
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
