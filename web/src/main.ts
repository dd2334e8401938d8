/**
 * The page: a service map, a flow table, security events and traffic
 * charts, read from the agent that serves it (same origin, read only). The
 * map and the stats refresh every 2 s, security events every second, the
 * flow table every 2 s while shown and live. `window.kubenetprobe` exposes
 * the views for the browser tests and the benchmark.
 */
import './style.css';
import { ApiError, getJson } from './api';
import { Filters } from './filters';
import { FlowTable } from './flow-table';
import { SecurityView } from './security';
import { SelectionPanel } from './selection';
import { AGGREGATE_ABOVE, ServiceMapView, type EdgeMode, type MapSelection } from './service-map';
import { TrafficCharts } from './charts';
import { currentTheme, initTheme, setTheme } from './theme';
import { esc, rate } from './format';
import type { ServiceMap, Stats } from './types';

type View = 'map' | 'flows' | 'security' | 'traffic';
const VIEWS: View[] = ['map', 'flows', 'security', 'traffic'];

const params = new URLSearchParams(location.search);
initTheme(params.get('theme'));
/** Refresh period of the map and stats in ms (?refresh=..., at least 250). */
const REFRESH_MS = Math.max(250, Number(params.get('refresh')) || 2000);

const filters = new Filters(document.getElementById('filters') as HTMLFormElement);
const status = document.getElementById('status')!;
const summary = document.getElementById('map-summary')!;
let view: View = VIEWS.includes(params.get('view') as View) ? (params.get('view') as View) : 'map';
let lastMap: ServiceMap | undefined;
const namespaces = new Set<string>();

const selection = new SelectionPanel(document.getElementById('selection')!, () => filters.get(), (q) => {
  filters.set(q);
  show('flows');
});
const EDGE_MODES: EdgeMode[] = ['auto', 'pods', 'groups'];
const mapView = new ServiceMapView(
  document.getElementById('map')!,
  (s: MapSelection | undefined) => {
    mapView.select(s?.kind === 'edge' ? s.edge.id : s?.kind === 'node' ? s.node.id : s?.kind === 'namespace' ? `ns:${s.namespace}` : s?.kind === 'workload' ? `wl:${s.namespace}/${s.workload}` : undefined);
    selection.set(s);
  },
  EDGE_MODES.includes(params.get('edges') as EdgeMode) ? (params.get('edges') as EdgeMode) : 'auto',
);
// "pod edges" / "edges by workload": switches how a big map draws its edges (kept in the URL as ?edges=pods).
summary.addEventListener('click', (ev) => {
  if (!(ev.target as HTMLElement).closest('[data-act="edges"]')) return;
  const mode: EdgeMode = mapView.aggregated ? 'pods' : 'auto';
  mapView.setEdgeMode(mode);
  const p = new URLSearchParams(location.search);
  if (mode === 'auto') p.delete('edges');
  else p.set('edges', mode);
  const qs = p.toString();
  history.replaceState(null, '', `${location.pathname}${qs ? `?${qs}` : ''}`);
  if (lastMap) drawSummary(lastMap);
});
const flowTable = new FlowTable(() => filters.get(), (e) => filters.error(e.message, e.parameter));
const charts = new TrafficCharts();
const security = new SecurityView((n) => {
  const badge = document.getElementById('security-badge')!;
  badge.hidden = n === 0;
  badge.textContent = String(n);
});

function show(v: View): void {
  view = v;
  for (const el of document.querySelectorAll<HTMLElement>('main > .view')) el.hidden = el.dataset['view'] !== v;
  for (const b of document.querySelectorAll<HTMLButtonElement>('.tabs button')) b.setAttribute('aria-selected', String(b.dataset['view'] === v));
  const p = new URLSearchParams(location.search);
  if (v === 'map') p.delete('view');
  else p.set('view', v);
  const qs = p.toString();
  history.replaceState(null, '', `${location.pathname}${qs ? `?${qs}` : ''}`);
  if (v === 'map') mapView.shown();
  if (v === 'flows') void flowTable.refresh(true);
  if (v === 'traffic') charts.draw();
  if (v === 'security') void security.refresh().catch(() => undefined);
}

for (const b of document.querySelectorAll<HTMLButtonElement>('.tabs button')) b.addEventListener('click', () => show(b.dataset['view'] as View));
document.getElementById('theme')!.addEventListener('click', () => setTheme(currentTheme() === 'dark' ? 'light' : 'dark'));
filters.onChange(() => {
  mapView.refit();
  void refreshMap();
  void flowTable.refresh(true);
});

function setStatus(text: string, bad = false): void {
  status.textContent = text;
  status.classList.toggle('bad', bad);
}

function drawSummary(map: ServiceMap): void {
  const pods = map.nodes.filter((n) => n.kind === 'pod').length;
  const alerts = map.edges.filter((e) => e.securityEvents > 0 || e.resets > 0 || e.drops > 0).length;
  const total = map.edges.reduce((s, e) => s + e.bytesPerSec, 0);
  const merged = mapView.aggregated
    ? `<div class="muted">edges merged between workloads or namespaces (${mapView.cy.edges().length} drawn); click a group or a pod for its pods' edges <button type="button" class="ghost small" data-act="edges">draw all pod edges</button></div>`
    : mapView.edgeMode() === 'pods' && map.edges.length > AGGREGATE_ABOVE
      ? `<div><button type="button" class="ghost small" data-act="edges">merge edges by workload</button></div>`
      : '';
  summary.innerHTML = `<b>${pods}</b> pods · <b>${map.edges.length}</b> edges${map.truncatedEdges ? ` (${map.truncatedEdges} quieter ones left out)` : ''} · ${esc(rate(total))}${alerts ? ` · <span class="tag bad">${alerts} standing out</span>` : ''}${merged}`;
}

async function refreshMap(): Promise<void> {
  // Nothing to draw for while the tab is hidden: resumed at once when it is shown again.
  if (document.hidden && lastMap) return;
  try {
    const map = await getJson<ServiceMap>('/api/v1/service-map', filters.get());
    lastMap = map;
    mapView.update(map);
    charts.pushMap(map);
    if (Object.keys(filters.get()).length === 0) for (const n of map.nodes) if (n.namespace) namespaces.add(n.namespace);
    filters.namespaces([...namespaces].sort());
    drawSummary(map);
    setStatus(`live · ${new Date(map.at).toLocaleTimeString([], { hour12: false })}`);
    if (selection.get()) void selection.refresh();
  } catch (err) {
    const e = err as ApiError;
    if (e.parameter) filters.error(e.message, e.parameter);
    else setStatus(e.message, true);
  }
}

async function refreshStats(): Promise<void> {
  charts.pushStats(await getJson<Stats>('/api/v1/stats'));
}

/** Runs `tick` every `ms`, never two at once. */
function every(ms: number, tick: () => Promise<void>): void {
  const loop = async (): Promise<void> => {
    try {
      await tick();
    } catch {
      /* shown by the tick itself, or retried next time */
    }
    setTimeout(() => void loop(), ms);
  };
  void loop();
}

every(REFRESH_MS, refreshMap);
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) void refreshMap();
});
every(REFRESH_MS, refreshStats);
every(1000, () => security.refresh());
every(2000, async () => {
  if (view === 'flows') await flowTable.refresh();
});
show(view);

declare global {
  interface Window {
    kubenetprobe: { mapView: ServiceMapView; lastMap: () => ServiceMap | undefined; security: SecurityView; flowTable: FlowTable; show: (v: View) => void };
  }
}
window.kubenetprobe = { mapView, lastMap: () => lastMap, security, flowTable, show };
