/** Flow rows as a table (the flow table and the map's selection panel share it). */
import { bytes, endpoint, esc, rate, time } from './format';
import type { FlowRow } from './types';

export const FLOW_HEADER = '<thead><tr><th>last seen</th><th>source</th><th>destination</th><th>proto</th><th>dir</th><th>interface</th><th class="num">packets</th><th class="num">bytes</th><th class="num">rate</th><th>state</th></tr></thead>';

export function flowRowsHtml(rows: readonly FlowRow[], compact = false): string {
  const out: string[] = [];
  for (const f of rows) {
    const k = f.key;
    const state = f.record ?? f.state ?? '';
    const flags = f.tcpFlags.includes('RST') ? ' <span class="tag warn">RST</span>' : '';
    if (compact) {
      out.push(`<tr><td>${esc(endpoint(k.srcIp, k.srcPort, f.source))}</td><td>${esc(endpoint(k.dstIp, k.dstPort, f.destination))}</td><td>${esc(k.protocol)}</td><td class="num">${esc(bytes(f.bytes))}</td></tr>`);
      continue;
    }
    out.push(
      `<tr><td>${esc(time(f.lastSeen))}</td><td>${esc(endpoint(k.srcIp, k.srcPort, f.source))}</td><td>${esc(endpoint(k.dstIp, k.dstPort, f.destination))}</td><td>${esc(k.protocol)}</td><td>${esc(k.direction)}</td><td>${esc(f.interface ?? '')}</td><td class="num">${f.packets}</td><td class="num">${esc(bytes(f.bytes))}</td><td class="num">${esc(rate(f.bytesPerSec))}</td><td>${esc(state)}${flags}</td></tr>`,
    );
  }
  return out.join('');
}

/** Newest first. */
export function newestFirst(rows: FlowRow[]): FlowRow[] {
  return rows.sort((a, b) => (a.lastSeen < b.lastSeen ? 1 : a.lastSeen > b.lastSeen ? -1 : 0));
}
