/**
 * The service map on screen (cytoscape, canvas renderer): namespaces and
 * workloads as boxes around their pods, the outside world on the left,
 * one edge per client, server, protocol and port, as wide as its bytes per
 * second (log scale). Edges with resets or drops are orange, with security
 * events red. The layout (layout.ts) is recomputed only when the set of
 * nodes changes; otherwise a refresh applies only what changed (edges
 * added, removed, or whose width step, label or marks changed) in one batch.
 *
 * Big maps: every change redraws the whole canvas, and with software
 * rendering a redraw costs about 0.05 ms per edge drawn (5 000 edges: a
 * 250–400 ms frame). Above AGGREGATE_ABOVE pod edges the map therefore
 * draws, by default, one edge per pair of workload boxes (a pod without a
 * workload: its namespace's box; the world: itself), with the pod edges'
 * sums and marks, or, if that still leaves more than MERGED_MAX, one per
 * pair of namespaces; every pod is still drawn. Selecting a pod, a workload or
 * a namespace draws the pod edges of its group(s) instead; `edges: 'pods'`
 * (the page's "pod edges" button, `?edges=pods`) draws them all.
 */
import cytoscape, { type Core, type ElementDefinition, type StylesheetJson } from 'cytoscape';
import { layoutPods, type LayoutPod } from './layout';
import { cssVar, onTheme } from './theme';
import type { MapEdge, MapNode, ServiceMap } from './types';

export type MapSelection =
  | { kind: 'node'; node: MapNode }
  | { kind: 'edge'; edge: DrawnEdge; source: MapNode | undefined; target: MapNode | undefined }
  | { kind: 'namespace'; namespace: string }
  | { kind: 'workload'; namespace: string; workload: string };

/** An edge as drawn: a pod edge, or (`members` > 0) the sum of the pod edges between two groups, whose ends are group ids (`wl:NS/KIND/NAME`, `ns:NS`, `world`). */
export type DrawnEdge = MapEdge & { members?: number };

/** How edges are drawn: between pods, between groups when there are more than AGGREGATE_ABOVE (auto), or always between groups. */
export type EdgeMode = 'auto' | 'pods' | 'groups';

/** Above this many drawn edges: no edge labels unless they stand out, straight cheap edges, and edges hidden while panning. */
const LARGE = 1200;
/** Above this many pod edges (mode auto): edges between groups. */
export const AGGREGATE_ABOVE = 1200;
/** Merged per workload, more edges than this: merged per namespace. */
export const MERGED_MAX = 500;
/** Width steps: 8 (1 to 8 px), so a refresh restyles only edges whose width changes by a pixel. */
const WIDTH_STEPS = 7;

function groupOf(n: MapNode): string {
  return n.workload ? `${n.workload.kind}/${n.workload.name}` : '';
}

/** How far edges are merged: per workload box, or per namespace box. */
export type MergeLevel = 'workload' | 'namespace';

/** The box a node's edges are merged into: its workload's (at that level), else its namespace's; the world is its own. */
export function groupIdOf(n: MapNode | undefined, fallback: string, level: MergeLevel = 'workload'): string {
  if (!n || n.kind !== 'pod' || n.namespace === null) return fallback;
  return n.workload && level === 'workload' ? `wl:${n.namespace}/${groupOf(n)}` : `ns:${n.namespace}`;
}

function edgeLabel(e: DrawnEdge): string {
  if (e.port === null) return e.ports > 1 ? `${e.protocol} ×${e.ports} ports` : e.protocol;
  return `${e.protocol}/${e.port}`;
}

const SEVERITY_RANK = ['info', 'low', 'medium', 'high', 'critical'];

/**
 * The edges to draw: pod edges where either end's workload or namespace is
 * in `open` (group ids), the others merged per (source group, target group)
 * at `level`.
 */
export function aggregateEdges(map: ServiceMap, open: ReadonlySet<string>, level: MergeLevel = 'workload'): DrawnEdge[] {
  const nodes = new Map(map.nodes.map((n) => [n.id, n]));
  const out: DrawnEdge[] = [];
  const groups = new Map<string, { e: DrawnEdge; protocols: Set<string>; ports: Set<number>; merged: number; types: Set<string> }>();
  for (const e of map.edges) {
    const sn = nodes.get(e.source);
    const tn = nodes.get(e.target);
    const sg = groupIdOf(sn, e.source, level);
    const tg = groupIdOf(tn, e.target, level);
    if (open.size > 0 && (open.has(groupIdOf(sn, e.source)) || open.has(groupIdOf(tn, e.target)) || open.has(groupIdOf(sn, e.source, 'namespace')) || open.has(groupIdOf(tn, e.target, 'namespace')))) {
      out.push(e);
      continue;
    }
    const id = `grp:${sg}>${tg}`;
    const g = groups.get(id);
    if (!g) {
      groups.set(id, {
        e: { ...e, id, source: sg, target: tg, securityTypes: [], members: 1 },
        protocols: new Set([e.protocol]),
        ports: new Set(e.port === null ? [] : [e.port]),
        merged: e.port === null ? e.ports : 0,
        types: new Set(e.securityTypes),
      });
      continue;
    }
    const a = g.e;
    g.protocols.add(e.protocol);
    if (e.port === null) g.merged += e.ports;
    else g.ports.add(e.port);
    for (const t of e.securityTypes) g.types.add(t);
    a.members = (a.members ?? 0) + 1;
    a.bytesPerSec += e.bytesPerSec;
    a.packetsPerSec += e.packetsPerSec;
    a.bytes += e.bytes;
    a.packets += e.packets;
    a.connections += e.connections;
    a.resets += e.resets;
    a.drops += e.drops;
    a.securityEvents += e.securityEvents;
    if (e.severity !== null && (a.severity === null || SEVERITY_RANK.indexOf(e.severity) > SEVERITY_RANK.indexOf(a.severity))) a.severity = e.severity;
  }
  for (const { e, protocols, ports, merged, types } of groups.values()) {
    e.protocol = [...protocols].sort().join('+');
    e.port = ports.size === 1 && merged === 0 ? e.port : null;
    e.ports = ports.size + merged;
    e.securityTypes = [...types].sort();
    out.push(e);
  }
  return out;
}

export class ServiceMapView {
  readonly cy: Core;
  private nodeKey = '';
  private large = false;
  private fitNext = true;
  private userMoved = false;
  private nodes = new Map<string, MapNode>();
  /** The edges drawn now, by id (pod edges, or merged ones). */
  private edges = new Map<string, DrawnEdge>();
  private map: ServiceMap | undefined;
  /** The groups whose pod edges are drawn while edges are merged (the selection's). */
  private open = new Set<string>();
  /** The bytes per second drawn widest; moves only when the busiest edge leaves [max/2, max], so noise does not restyle every edge. */
  private scaleMax = 0;
  private mode: EdgeMode;
  /** Edges are merged between groups now. */
  aggregated = false;
  renders = 0;
  /** ms from navigation start to the first map from the agent drawn (an empty one too). */
  firstRenderMs: number | undefined;

  constructor(
    container: HTMLElement,
    private readonly onSelect: (s: MapSelection | undefined) => void,
    mode: EdgeMode = 'auto',
  ) {
    this.mode = mode;
    this.cy = cytoscape({
      container,
      elements: [],
      layout: { name: 'preset' },
      style: this.style(),
      minZoom: 0.05,
      maxZoom: 4,
      pixelRatio: 1,
      boxSelectionEnabled: false,
      autoungrabify: true,
    });
    this.cy.on('tap', 'node', (ev) => {
      const n = ev.target as cytoscape.NodeSingular;
      const kind = n.data('kind') as string;
      if (kind === 'namespace') {
        this.openGroups([n.id()]);
        this.onSelect({ kind: 'namespace', namespace: n.data('namespace') as string });
      } else if (kind === 'workload') {
        this.openGroups([n.id()]);
        this.onSelect({ kind: 'workload', namespace: n.data('namespace') as string, workload: n.data('workload') as string });
      } else {
        const node = this.nodes.get(n.id());
        this.openGroups(node?.kind === 'pod' ? [groupIdOf(node, node.id)] : []);
        if (node) this.onSelect({ kind: 'node', node });
      }
    });
    this.cy.on('tap', 'edge', (ev) => {
      const e = this.edges.get((ev.target as cytoscape.EdgeSingular).id());
      if (e) this.onSelect({ kind: 'edge', edge: e, source: this.nodes.get(e.source), target: this.nodes.get(e.target) });
    });
    this.cy.on('tap', (ev) => {
      if (ev.target === this.cy) {
        this.openGroups([]);
        this.onSelect(undefined);
      }
    });
    onTheme(() => this.cy.style(this.style()));
    // Until the user pans or zooms, every new set of nodes is fitted to the screen.
    this.cy.on('dragpan scrollzoom pinchzoom', () => (this.userMoved = true));
  }

  /** The next update fits the map to the screen (after the filter changed). */
  refit(): void {
    this.fitNext = true;
    this.userMoved = false;
  }

  edgeMode(): EdgeMode {
    return this.mode;
  }

  /** Draws edges between pods, or merges them between groups (always, or above AGGREGATE_ABOVE). */
  setEdgeMode(mode: EdgeMode): void {
    if (mode === this.mode) return;
    this.mode = mode;
    if (this.map) this.update(this.map);
  }

  /** Draws the pod edges of these groups while edges are merged. */
  private openGroups(ids: string[]): void {
    const same = ids.length === this.open.size && ids.every((id) => this.open.has(id));
    if (same) return;
    this.open = new Set(ids);
    if (this.aggregated && this.map) this.update(this.map);
  }

  update(map: ServiceMap): void {
    this.map = map;
    this.nodes = new Map(map.nodes.map((n) => [n.id, n]));
    const aggregated = this.mode === 'groups' || (this.mode === 'auto' && map.edges.length > AGGREGATE_ABOVE);
    this.aggregated = aggregated;
    let drawn: DrawnEdge[] = map.edges;
    if (aggregated) {
      // Per workload; where that leaves too many (many small workloads), per namespace.
      drawn = aggregateEdges(map, this.open, 'workload');
      if (drawn.length > MERGED_MAX) drawn = aggregateEdges(map, this.open, 'namespace');
    }
    this.edges = new Map(drawn.map((e) => [e.id, e]));
    const key = map.nodes
      .map((n) => n.id)
      .sort()
      .join('\n');
    const large = aggregated || drawn.length > LARGE;
    let maxBps = 1;
    for (const e of drawn) if (e.bytesPerSec > maxBps) maxBps = e.bytesPerSec;
    if (key !== this.nodeKey || maxBps > this.scaleMax || maxBps < this.scaleMax / 2) this.scaleMax = maxBps;
    const logMax = Math.log10(1 + this.scaleMax);
    const rawWidth = (e: DrawnEdge): number => (WIDTH_STEPS * Math.log10(1 + e.bytesPerSec)) / logMax;
    const edgeData = (e: DrawnEdge): Record<string, unknown> => ({
      id: e.id,
      source: e.source,
      target: e.target,
      label: edgeLabel(e),
      // In steps of a pixel: a refresh restyles only the edges whose width visibly changes.
      w: Math.min(WIDTH_STEPS, Math.round(rawWidth(e))) / WIDTH_STEPS,
    });
    const edgeClasses = (e: DrawnEdge): string[] => [...(e.securityEvents > 0 ? ['sec'] : e.resets > 0 || e.drops > 0 ? ['warn'] : []), ...(large ? ['large'] : []), ...(e.members ? ['merged'] : [])];
    if (key !== this.nodeKey) {
      this.nodeKey = key;
      if (!this.userMoved) this.fitNext = true;
      this.rebuild(map, drawn, edgeData, edgeClasses);
    } else {
      this.cy.batch(() => {
        for (const e of drawn) {
          const el = this.cy.getElementById(e.id);
          if (el.nonempty()) {
            const d = edgeData(e);
            // Hysteresis: a width moves by a step only once the rate is most of a step away, so noise does not redraw the map.
            const w = el.data('w') as number;
            if (w !== d['w'] && Math.abs(rawWidth(e) - w * WIDTH_STEPS) < 0.8) d['w'] = w;
            if (w !== d['w'] || el.data('label') !== d['label']) el.data({ w: d['w'], label: d['label'] });
            // The selection's mark stays.
            const cls = edgeClasses(e);
            const now = el.classes().filter((c) => c !== 'picked');
            if (cls.join(' ') !== now.join(' ')) el.classes(el.hasClass('picked') ? [...cls, 'picked'] : cls);
          } else if (this.cy.getElementById(e.source).nonempty() && this.cy.getElementById(e.target).nonempty()) this.cy.add({ group: 'edges', data: edgeData(e), classes: edgeClasses(e) });
        }
        this.cy.edges().forEach((el) => {
          if (!this.edges.has(el.id())) el.remove();
        });
        for (const n of map.nodes) {
          const el = this.cy.getElementById(n.id);
          if (el.hasClass('alert') !== n.alert) el.toggleClass('alert', n.alert);
        }
      });
    }
    if (large !== this.large) {
      this.large = large;
      // The big-graph settings are the renderer's options, read on each draw.
      const r = (this.cy as unknown as { renderer: () => Record<string, unknown> }).renderer();
      r['hideEdgesOnViewport'] = large;
      r['textureOnViewport'] = large;
    }
    this.renders++;
    if (this.renders === 1) {
      // Drawn: cytoscape draws on the next animation frame; the one after it runs once that frame is done.
      requestAnimationFrame(() =>
        requestAnimationFrame(() => {
          this.firstRenderMs = performance.now();
          performance.mark('knp-map-first-render');
        }),
      );
    }
  }

  private rebuild(map: ServiceMap, drawn: readonly DrawnEdge[], edgeData: (e: DrawnEdge) => Record<string, unknown>, edgeClasses: (e: DrawnEdge) => string[]): void {
    const pods: LayoutPod[] = [];
    const extra: string[] = [];
    const els: ElementDefinition[] = [];
    const parents = new Set<string>();
    for (const n of map.nodes) {
      if (n.kind === 'world' || n.namespace === null) {
        extra.push(n.id);
        continue;
      }
      const g = groupOf(n);
      pods.push({ id: n.id, namespace: n.namespace, group: g });
      const nsId = `ns:${n.namespace}`;
      if (!parents.has(nsId)) {
        parents.add(nsId);
        els.push({ group: 'nodes', data: { id: nsId, label: n.namespace, kind: 'namespace', namespace: n.namespace }, classes: 'namespace' });
      }
      if (g) {
        const wlId = `wl:${n.namespace}/${g}`;
        if (!parents.has(wlId)) {
          parents.add(wlId);
          els.push({ group: 'nodes', data: { id: wlId, parent: nsId, label: n.service ? `${g} · svc ${n.service}` : g, kind: 'workload', namespace: n.namespace, workload: g }, classes: 'workload' });
        }
      }
    }
    const pos = layoutPods(pods, extra);
    for (const n of map.nodes) {
      const parent = n.kind === 'pod' && n.namespace !== null ? (n.workload ? `wl:${n.namespace}/${groupOf(n)}` : `ns:${n.namespace}`) : undefined;
      els.push({
        group: 'nodes',
        data: { id: n.id, label: n.kind === 'world' ? 'world' : n.label, kind: n.kind, ...(parent ? { parent } : {}) },
        position: pos.get(n.id) ?? { x: 0, y: 0 },
        classes: [n.kind, ...(n.alert ? ['alert'] : [])],
      });
    }
    // A group that is gone (an open one whose pods left) merges again.
    for (const id of this.open) if (!parents.has(id)) this.open.delete(id);
    const known = (id: string): boolean => parents.has(id) || this.nodes.has(id);
    for (const e of drawn) if (known(e.source) && known(e.target)) els.push({ group: 'edges', data: edgeData(e), classes: edgeClasses(e) });
    const cy = this.cy;
    cy.batch(() => {
      cy.elements().remove();
      cy.add(els);
    });
    this.fitIfPending();
  }

  /** Fits the map if a refit is due and the map is on screen (a hidden container has no size to fit to). */
  fitIfPending(): void {
    if (!this.fitNext || this.cy.container()?.clientWidth === 0) return;
    this.cy.fit(undefined, 30);
    this.fitNext = false;
  }

  /** The map tab was shown: the container may have changed size while hidden. */
  shown(): void {
    this.cy.resize();
    this.fitIfPending();
  }

  /** Marks the selected element (or none). */
  select(id: string | undefined): void {
    this.cy.batch(() => {
      this.cy.$('.picked').removeClass('picked');
      if (id) this.cy.getElementById(id).addClass('picked');
    });
  }

  private style(): StylesheetJson {
    const fg = cssVar('--fg') || '#222';
    const muted = cssVar('--muted') || '#777';
    const node = cssVar('--node') || '#3b82f6';
    const edge = cssVar('--edge') || '#8aa';
    const warn = cssVar('--warn') || '#f59e0b';
    const bad = cssVar('--bad') || '#dc2626';
    const boxNs = cssVar('--box-ns') || '#eef';
    const boxWl = cssVar('--box-wl') || '#f6f6ff';
    const border = cssVar('--border') || '#ccd';
    const pick = cssVar('--accent') || '#7c3aed';
    return [
      { selector: 'node', style: { label: 'data(label)', color: fg, 'font-size': 9, 'text-valign': 'bottom', 'text-margin-y': 3, 'text-wrap': 'ellipsis', 'text-max-width': '90px', 'min-zoomed-font-size': 6 } },
      { selector: 'node.pod', style: { width: 22, height: 22, 'background-color': node, 'border-width': 0 } },
      { selector: 'node.world', style: { width: 44, height: 44, shape: 'round-diamond', 'background-color': muted, 'font-size': 11, 'font-weight': 'bold' } },
      { selector: 'node.alert', style: { 'border-width': 3, 'border-color': bad } },
      {
        selector: 'node.namespace',
        style: { shape: 'round-rectangle', 'background-color': boxNs, 'background-opacity': 1, 'border-width': 1, 'border-color': border, 'text-valign': 'top', 'text-halign': 'center', 'text-margin-y': -4, 'font-size': 13, 'font-weight': 'bold', padding: '14px', 'text-wrap': 'none' },
      },
      {
        selector: 'node.workload',
        style: { shape: 'round-rectangle', 'background-color': boxWl, 'background-opacity': 1, 'border-width': 1, 'border-style': 'dashed', 'border-color': border, 'text-valign': 'top', 'text-halign': 'center', 'text-margin-y': -2, 'font-size': 10, color: muted, padding: '8px', 'text-wrap': 'none' },
      },
      {
        selector: 'edge',
        style: {
          width: 'mapData(w, 0, 1, 1, 8)',
          'line-color': edge,
          'target-arrow-color': edge,
          'target-arrow-shape': 'triangle',
          'arrow-scale': 0.7,
          'curve-style': 'bezier',
          opacity: 0.75,
          label: 'data(label)',
          'font-size': 8,
          color: fg,
          'text-rotation': 'autorotate',
          'text-background-color': boxWl,
          'text-background-opacity': 0.8,
          'text-background-padding': '1px',
          'min-zoomed-font-size': 7,
        },
      },
      { selector: 'edge.large', style: { 'curve-style': 'haystack', 'haystack-radius': 0, label: '', opacity: 0.35 } },
      { selector: 'edge.merged', style: { opacity: 0.5, 'z-compound-depth': 'top' } },
      { selector: 'edge.warn', style: { 'line-color': warn, 'target-arrow-color': warn, opacity: 0.95, label: 'data(label)' } },
      { selector: 'edge.sec', style: { 'line-color': bad, 'target-arrow-color': bad, opacity: 1, 'line-style': 'dashed', label: 'data(label)', 'z-index': 10 } },
      { selector: '.picked', style: { 'overlay-color': pick, 'overlay-opacity': 0.25, 'overlay-padding': 4 } },
    ];
  }
}
