/**
 * The service map on screen (cytoscape, canvas renderer): namespaces and
 * workloads as boxes around their pods, the outside world on the left,
 * one edge per client, server, protocol and port, as wide as its bytes per
 * second (log scale). Edges with resets or drops are orange, with security
 * events red. The layout (layout.ts) is recomputed only when the set of
 * nodes changes; otherwise a refresh only updates the edges' data, so the
 * map does not jump and a refresh of 5k edges stays cheap.
 */
import cytoscape, { type Core, type ElementDefinition, type StylesheetJson } from 'cytoscape';
import { layoutPods, type LayoutPod } from './layout';
import { cssVar, onTheme } from './theme';
import type { MapEdge, MapNode, ServiceMap } from './types';

export type MapSelection =
  | { kind: 'node'; node: MapNode }
  | { kind: 'edge'; edge: MapEdge; source: MapNode | undefined; target: MapNode | undefined }
  | { kind: 'namespace'; namespace: string }
  | { kind: 'workload'; namespace: string; workload: string };

/** Above this many edges: no edge labels unless they stand out, straight cheap edges, and edges hidden while panning. */
const LARGE = 1200;

function groupOf(n: MapNode): string {
  return n.workload ? `${n.workload.kind}/${n.workload.name}` : '';
}

function edgeLabel(e: MapEdge): string {
  if (e.port === null) return e.ports > 1 ? `${e.protocol} ×${e.ports} ports` : e.protocol;
  return `${e.protocol}/${e.port}`;
}

export class ServiceMapView {
  readonly cy: Core;
  private nodeKey = '';
  private large = false;
  private fitNext = true;
  private userMoved = false;
  private nodes = new Map<string, MapNode>();
  private edges = new Map<string, MapEdge>();
  renders = 0;
  /** ms from navigation start to the first map from the agent drawn (an empty one too). */
  firstRenderMs: number | undefined;

  constructor(
    container: HTMLElement,
    private readonly onSelect: (s: MapSelection | undefined) => void,
  ) {
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
      if (kind === 'namespace') this.onSelect({ kind: 'namespace', namespace: n.data('namespace') as string });
      else if (kind === 'workload') this.onSelect({ kind: 'workload', namespace: n.data('namespace') as string, workload: n.data('workload') as string });
      else {
        const node = this.nodes.get(n.id());
        if (node) this.onSelect({ kind: 'node', node });
      }
    });
    this.cy.on('tap', 'edge', (ev) => {
      const e = this.edges.get((ev.target as cytoscape.EdgeSingular).id());
      if (e) this.onSelect({ kind: 'edge', edge: e, source: this.nodes.get(e.source), target: this.nodes.get(e.target) });
    });
    this.cy.on('tap', (ev) => {
      if (ev.target === this.cy) this.onSelect(undefined);
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

  update(map: ServiceMap): void {
    this.nodes = new Map(map.nodes.map((n) => [n.id, n]));
    this.edges = new Map(map.edges.map((e) => [e.id, e]));
    const key = map.nodes
      .map((n) => n.id)
      .sort()
      .join('\n');
    const large = map.edges.length > LARGE;
    const maxBps = Math.max(1, ...map.edges.map((e) => e.bytesPerSec));
    const edgeData = (e: MapEdge): Record<string, unknown> => ({
      id: e.id,
      source: e.source,
      target: e.target,
      label: edgeLabel(e),
      // In steps of 1/20: a refresh restyles only the edges whose width visibly changes.
      w: Math.round((20 * Math.log10(1 + e.bytesPerSec)) / Math.log10(1 + maxBps)) / 20,
    });
    const edgeClasses = (e: MapEdge): string[] => [...(e.securityEvents > 0 ? ['sec'] : e.resets > 0 || e.drops > 0 ? ['warn'] : []), ...(large ? ['large'] : [])];
    if (key !== this.nodeKey || large !== this.large) {
      this.nodeKey = key;
      this.large = large;
      if (!this.userMoved) this.fitNext = true;
      this.rebuild(map, edgeData, edgeClasses);
    } else {
      this.cy.batch(() => {
        const seen = new Set<string>();
        for (const e of map.edges) {
          seen.add(e.id);
          const el = this.cy.getElementById(e.id);
          if (el.nonempty()) {
            const d = edgeData(e);
            if (el.data('w') !== d['w'] || el.data('label') !== d['label']) el.data(d);
            const cls = edgeClasses(e);
            if (cls.join(' ') !== el.classes().join(' ')) el.classes(cls);
          } else this.cy.add({ group: 'edges', data: edgeData(e), classes: edgeClasses(e) });
        }
        this.cy.edges().forEach((el) => {
          if (!seen.has(el.id())) el.remove();
        });
        for (const n of map.nodes) this.cy.getElementById(n.id).toggleClass('alert', n.alert);
      });
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

  private rebuild(map: ServiceMap, edgeData: (e: MapEdge) => Record<string, unknown>, edgeClasses: (e: MapEdge) => string[]): void {
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
    for (const e of map.edges) els.push({ group: 'edges', data: edgeData(e), classes: edgeClasses(e) });
    const cy = this.cy;
    cy.batch(() => {
      cy.elements().remove();
      cy.add(els);
    });
    // The big-graph settings are the renderer's options, read on each draw.
    const r = cy as unknown as { renderer: () => Record<string, unknown> };
    r.renderer()['hideEdgesOnViewport'] = this.large;
    r.renderer()['textureOnViewport'] = this.large;
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
      { selector: 'edge.warn', style: { 'line-color': warn, 'target-arrow-color': warn, opacity: 0.95, label: 'data(label)' } },
      { selector: 'edge.sec', style: { 'line-color': bad, 'target-arrow-color': bad, opacity: 1, 'line-style': 'dashed', label: 'data(label)', 'z-index': 10 } },
      { selector: '.picked', style: { 'overlay-color': pick, 'overlay-opacity': 0.25, 'overlay-padding': 4 } },
    ];
  }
}
