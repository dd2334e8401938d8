/**
 * Traffic charts (uPlot): bytes and packets per second per interface (the
 * busiest 8, from the agent's TC counters both ways), bytes per second of
 * the busiest pods (in + out, from the service map), and the agent's health:
 * flow table fill and coverage in percent, and events lost per interval.
 * The page keeps the last 10 minutes from when it was opened.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { bytes, count } from './format';
import { cssVar, onTheme } from './theme';
import type { ServiceMap, Stats } from './types';

const KEEP = 300;
const TOP = 8;
const PALETTE = ['#2563eb', '#16a34a', '#dc2626', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];

/** Named series over time: a value per name per sample (missing: null). */
class Series {
  readonly t: number[] = [];
  readonly values = new Map<string, (number | null)[]>();

  push(t: number, sample: Map<string, number>): void {
    this.t.push(t);
    for (const name of sample.keys()) {
      if (!this.values.has(name)) this.values.set(name, new Array<number | null>(this.t.length - 1).fill(null));
    }
    for (const [name, arr] of this.values) arr.push(sample.get(name) ?? null);
    if (this.t.length > KEEP) {
      this.t.shift();
      for (const arr of this.values.values()) arr.shift();
    }
    for (const [name, arr] of this.values) if (arr.every((v) => v === null)) this.values.delete(name);
  }

  /** The busiest names over the kept window. */
  top(n: number): string[] {
    const sum = (a: (number | null)[]): number => a.reduce<number>((s, v) => s + (v ?? 0), 0);
    return [...this.values.entries()]
      .sort((a, b) => sum(b[1]) - sum(a[1]))
      .slice(0, n)
      .map(([k]) => k)
      .sort();
  }
}

interface ChartSpec {
  el: HTMLElement;
  format: (v: number) => string;
  /** A second axis (on the right) for the series named here. */
  right?: { names: string[]; format: (v: number) => string };
}

class Chart {
  private plot: uPlot | undefined;
  private names = '';

  constructor(private readonly spec: ChartSpec) {}

  draw(series: Series, names: string[]): void {
    const el = this.spec.el;
    const width = el.clientWidth;
    if (width === 0) return; // not shown now
    const key = names.join('\n');
    if (!this.plot || key !== this.names) {
      this.plot?.destroy();
      this.names = key;
      const fg = cssVar('--fg');
      const grid = cssVar('--border');
      const right = this.spec.right;
      const axis = (fmt: (v: number) => string, side?: 1): uPlot.Axis => ({
        stroke: fg,
        grid: { stroke: grid, width: 1 },
        ticks: { stroke: grid, width: 1 },
        values: (_u, vals) => vals.map((v) => (v === null ? '' : fmt(v))),
        size: 70,
        ...(side ? { side, scale: 'r', grid: { show: false } } : {}),
      });
      this.plot = new uPlot(
        {
          width,
          height: 230,
          legend: { show: true },
          cursor: { drag: { x: false, y: false } },
          scales: { x: { time: true }, ...(right ? { r: { auto: true } } : {}) },
          axes: [{ stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } }, axis(this.spec.format), ...(right ? [axis(right.format, 1)] : [])],
          series: [
            {},
            ...names.map((n, i) => ({
              label: n,
              stroke: PALETTE[i % PALETTE.length]!,
              width: 1.5,
              spanGaps: false,
              value: (_u: uPlot, v: number | null) => (v === null ? '–' : right?.names.includes(n) ? right.format(v) : this.spec.format(v)),
              ...(right?.names.includes(n) ? { scale: 'r' } : {}),
            })),
          ],
        },
        [series.t, ...names.map((n) => series.values.get(n) ?? [])] as uPlot.AlignedData,
        el,
      );
      return;
    }
    if (this.plot.width !== width) this.plot.setSize({ width, height: 230 });
    this.plot.setData([series.t, ...names.map((n) => series.values.get(n) ?? [])] as uPlot.AlignedData);
  }

  reset(): void {
    this.plot?.destroy();
    this.plot = undefined;
    this.names = '';
  }
}

const perSec = (v: number): string => `${bytes(v)}/s`;

export class TrafficCharts {
  private readonly ifBytes = new Series();
  private readonly ifPackets = new Series();
  private readonly pods = new Series();
  private readonly health = new Series();
  private prev: { t: number; counts: Map<string, { b: number; p: number }>; lost: number } | undefined;
  private readonly charts = {
    ifBytes: new Chart({ el: document.getElementById('chart-if-bytes')!, format: perSec }),
    ifPackets: new Chart({ el: document.getElementById('chart-if-packets')!, format: (v) => `${count(v)}/s` }),
    pods: new Chart({ el: document.getElementById('chart-pods')!, format: perSec }),
    health: new Chart({ el: document.getElementById('chart-health')!, format: (v) => `${v.toFixed(v < 10 ? 1 : 0)} %`, right: { names: ['lost events'], format: (v) => count(v) } }),
  };
  private readonly now = document.getElementById('health-now')!;

  constructor() {
    onTheme(() => {
      for (const c of Object.values(this.charts)) c.reset();
      this.draw();
    });
    window.addEventListener('resize', () => this.draw());
  }

  pushStats(s: Stats, at = Date.now()): void {
    const t = at / 1000;
    const counts = new Map<string, { b: number; p: number }>();
    for (const i of s.interfaces) {
      let b = 0;
      let p = 0;
      for (const hook of ['tc-ingress', 'tc-egress']) {
        const c = i.counters[hook];
        if (c) {
          b += c.bytes.total;
          p += c.packets.total;
        }
      }
      counts.set(i.name, { b, p });
    }
    const lost = s.lost.packetEvents + s.lost.securityEvents + s.lost.securityGaps + s.lost.consumer;
    if (this.prev) {
      const dt = Math.max(0.001, t - this.prev.t);
      const bs = new Map<string, number>();
      const ps = new Map<string, number>();
      for (const [name, c] of counts) {
        const was = this.prev.counts.get(name);
        if (!was) continue;
        bs.set(name, Math.max(0, c.b - was.b) / dt);
        ps.set(name, Math.max(0, c.p - was.p) / dt);
      }
      this.ifBytes.push(t, bs);
      this.ifPackets.push(t, ps);
      this.health.push(
        t,
        new Map([
          ['flow table fill', s.flowTable.fill * 100],
          ['coverage', s.coverage.ratio * 100],
          ['lost events', Math.max(0, lost - this.prev.lost)],
        ]),
      );
    }
    this.prev = { t, counts, lost };
    this.now.textContent = `now: flow table ${s.flowTable.entries}/${s.flowTable.capacity} (${(s.flowTable.fill * 100).toFixed(1)} %), coverage ${(s.coverage.ratio * 100).toFixed(1)} %, lost events ${count(lost)} in all (packet ${s.lost.packetEvents}, security ${s.lost.securityEvents + s.lost.securityGaps}, consumer ${s.lost.consumer}), mode ${s.security.mode}`;
    this.draw();
  }

  pushMap(m: ServiceMap, at = Date.now()): void {
    const sample = new Map<string, number>();
    const byRate = m.nodes.filter((n) => n.kind === 'pod').sort((a, b) => b.bytesPerSecIn + b.bytesPerSecOut - (a.bytesPerSecIn + a.bytesPerSecOut));
    for (const n of byRate.slice(0, TOP * 2)) sample.set(`${n.namespace}/${n.pod}`, n.bytesPerSecIn + n.bytesPerSecOut);
    this.pods.push(at / 1000, sample);
  }

  /** Draws the charts that are on screen. */
  draw(): void {
    this.charts.ifBytes.draw(this.ifBytes, this.ifBytes.top(TOP));
    this.charts.ifPackets.draw(this.ifPackets, this.ifPackets.top(TOP));
    this.charts.pods.draw(this.pods, this.pods.top(TOP));
    this.charts.health.draw(this.health, ['coverage', 'flow table fill', 'lost events']);
  }
}
