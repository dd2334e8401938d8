/**
 * The map's side panel: what was clicked (a pod, the world, a namespace, a
 * workload or an edge), its figures, and its flows, read from the agent with
 * the filter bar's filters plus the selection's own. "Show in flow table"
 * moves the selection into the filter bar.
 */
import { getJson, type Query } from './api';
import { count, esc, rate } from './format';
import { flowRowsHtml, newestFirst } from './flow-rows';
import type { MapSelection } from './service-map';
import type { FlowRow, Identity } from './types';

const nodeIdOf = (id: Identity | null): string => (id ? `pod:${id.namespace}/${id.pod}` : 'world');
/** A flow end is in a group box of the map's merged edges (`wl:NS/KIND/NAME`, `ns:NS`, `world`; service-map.ts groupIdOf). */
function inGroup(group: string, id: Identity | null): boolean {
  if (group === 'world' || !id) return group === 'world' && !id;
  if (group.startsWith('ns:')) return group === `ns:${id.namespace}`;
  return id.workload !== undefined && group === `wl:${id.namespace}/${id.workload.kind}/${id.workload.name}`;
}
/** `wl:NS/KIND/NAME` or `ns:NS` as filters; the world: none. */
function groupQuery(group: string): Query {
  const wl = /^wl:([^/]+)\/(.+)$/.exec(group);
  if (wl) return { namespace: wl[1], workload: wl[2] };
  const ns = /^ns:(.+)$/.exec(group);
  return ns ? { namespace: ns[1] } : {};
}
const groupName = (id: string): string => (id === 'world' ? 'world' : id.replace(/^(wl|ns|pod):/, ''));

/** The flows query for a selection, and a test for the rows it returns (an edge: both ends are its nodes). */
export function selectionQuery(s: MapSelection): { query: Query; keep: (f: FlowRow) => boolean } {
  const all = (): boolean => true;
  switch (s.kind) {
    case 'namespace':
      return { query: { namespace: s.namespace }, keep: all };
    case 'workload':
      return { query: { workload: s.workload, namespace: s.namespace }, keep: all };
    case 'node':
      if (s.node.kind === 'world') return { query: {}, keep: (f) => f.source === null || f.destination === null };
      return { query: { pod: `${s.node.namespace}/${s.node.pod}` }, keep: all };
    case 'edge': {
      const e = s.edge;
      if (e.members) {
        // Merged pod edges between two groups: the flows of the client group (or, from the world, the server group) between the two.
        return {
          query: e.source === 'world' ? groupQuery(e.target) : groupQuery(e.source),
          keep: (f) => (inGroup(e.source, f.source) && inGroup(e.target, f.destination)) || (inGroup(e.source, f.destination) && inGroup(e.target, f.source)),
        };
      }
      const podEnd = s.source?.kind === 'pod' ? s.source : s.target;
      const q: Query = {};
      if (podEnd?.kind === 'pod') q['pod'] = `${podEnd.namespace}/${podEnd.pod}`;
      if (e.port !== null) q['port'] = String(e.port);
      if (['TCP', 'UDP', 'ICMP', 'ICMPv6'].includes(e.protocol)) q['protocol'] = e.protocol.toLowerCase();
      const ends = new Set([e.source, e.target]);
      return {
        query: q,
        keep: (f) => ends.has(nodeIdOf(f.source)) && ends.has(nodeIdOf(f.destination)) && (e.source === e.target || nodeIdOf(f.source) !== nodeIdOf(f.destination)),
      };
    }
  }
}

function title(s: MapSelection): string {
  switch (s.kind) {
    case 'namespace':
      return `namespace <b>${esc(s.namespace)}</b>`;
    case 'workload':
      return `workload <b>${esc(s.workload)}</b> in ${esc(s.namespace)}`;
    case 'node': {
      const n = s.node;
      if (n.kind === 'world') return `<b>world</b> (addresses that are no known pod)<div class="muted">${esc(n.ips.slice(0, 8).join(', '))}${n.ips.length > 8 ? ' …' : ''}</div>`;
      const labels = Object.entries(n.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ');
      return `pod <b>${esc(n.namespace)}/${esc(n.pod)}</b><div class="muted">${esc(n.ips.join(', '))}${n.workload ? ` · ${esc(n.workload.kind)}/${esc(n.workload.name)}` : ''}${n.service ? ` · svc ${esc(n.service)}` : ''}${labels ? ` · ${esc(labels)}` : ''}</div><div>in ${esc(rate(n.bytesPerSecIn))} · out ${esc(rate(n.bytesPerSecOut))}</div>`;
    }
    case 'edge': {
      const e = s.edge;
      const name = groupName;
      const port = e.port === null ? (e.ports > 1 ? ` (${e.ports} ports)` : '') : `:${e.port}`;
      const marks = [
        e.resets ? `<span class="tag warn">${e.resets} resets</span>` : '',
        e.drops ? `<span class="tag warn">${e.drops} dropped</span>` : '',
        e.securityEvents ? `<span class="tag bad">${e.securityEvents} security (${esc(e.securityTypes.join(', '))})</span>` : '',
      ].join(' ');
      return `<b>${esc(name(e.source))}</b> → <b>${esc(name(e.target))}${esc(port)}</b> ${esc(e.protocol)}<div>${esc(rate(e.bytesPerSec))} · ${esc(count(e.packetsPerSec))} pkt/s · ${e.connections} connections${e.members ? ` · ${e.members} pod edges (click a group for them)` : ''}</div><div>${marks}</div>`;
    }
  }
}

export class SelectionPanel {
  private current: MapSelection | undefined;
  private seq = 0;

  constructor(
    private readonly el: HTMLElement,
    private readonly filters: () => Query,
    private readonly showInTable: (q: Query) => void,
  ) {}

  set(s: MapSelection | undefined): void {
    this.current = s;
    void this.refresh();
  }

  get(): MapSelection | undefined {
    return this.current;
  }

  async refresh(): Promise<void> {
    const s = this.current;
    const mine = ++this.seq;
    if (!s) {
      this.el.innerHTML = '<p class="hint">Click a pod, a group or an edge to see its flows.</p>';
      return;
    }
    const { query, keep } = selectionQuery(s);
    let body: string;
    try {
      const r = await getJson<{ flows: FlowRow[] }>('/api/v1/flows', { ...this.filters(), ...query, limit: '2000' });
      const rows = newestFirst(r.flows.filter(keep)).slice(0, 60);
      body = rows.length ? `<table class="grid small"><thead><tr><th>source</th><th>destination</th><th>proto</th><th class="num">bytes</th></tr></thead><tbody>${flowRowsHtml(rows, true)}</tbody></table>` : '<p class="hint">No flows now.</p>';
    } catch (err) {
      body = `<p class="error">${esc((err as Error).message)}</p>`;
    }
    if (mine !== this.seq) return;
    this.el.innerHTML = `<div class="sel-title">${title(s)}</div><button type="button" class="ghost small" data-act="table">Show in flow table</button><h4>Flows</h4>${body}`;
    this.el.querySelector('[data-act="table"]')?.addEventListener('click', () => this.showInTable(query));
  }
}
