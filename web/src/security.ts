/**
 * Security events: a timeline of the last 15 minutes with a lane per
 * severity (a dot per event, attacker and target in its tooltip), the list
 * of events newest first (attacker and target by pod where known), and the
 * sources blocked now.
 */
import { getJson } from './api';
import { endpoint, esc, time } from './format';
import type { BlockRow, SecurityEventRow } from './types';

export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'] as const;
const WINDOW_MS = 15 * 60_000;
const SVG = 'http://www.w3.org/2000/svg';

export class SecurityView {
  events: SecurityEventRow[] = [];
  private readonly svg = document.getElementById('timeline') as unknown as SVGSVGElement;
  private readonly table = document.getElementById('security-table') as HTMLTableElement;
  private readonly blocks = document.getElementById('blocks-table') as HTMLTableElement;
  private readonly info = document.getElementById('security-info')!;
  private readonly severity = document.getElementById('security-severity') as HTMLSelectElement;
  private lastKey = '';

  constructor(private readonly onCount: (recentHigh: number) => void) {
    this.severity.addEventListener('change', () => void this.refresh());
  }

  async refresh(): Promise<void> {
    const [ev, bl] = await Promise.all([
      getJson<{ events: SecurityEventRow[]; lost: number }>('/api/v1/security-events', { limit: '1000', severity: this.severity.value || undefined }),
      getJson<{ blocks: BlockRow[] }>('/api/v1/blocks'),
    ]);
    this.events = ev.events;
    const now = Date.now();
    const recent = ev.events.filter((e) => now - Date.parse(e.timestamp) < 5 * 60_000 && (e.severity === 'high' || e.severity === 'critical')).length;
    this.onCount(recent);
    this.info.textContent = `${ev.events.length} event${ev.events.length === 1 ? '' : 's'} kept · ${ev.lost} lost since the agent started · ${bl.blocks.length} blocked now`;
    this.drawTimeline(now);
    const key = `${ev.events.length} ${ev.events.at(-1)?.seq ?? ''} ${ev.events.at(-1)?.cpu ?? ''}`;
    if (key !== this.lastKey) {
      this.lastKey = key;
      const rows = ev.events
        .slice(-300)
        .reverse()
        .map(
          (e) =>
            `<tr class="sev-${esc(e.severity)}"><td>${esc(time(e.timestamp))}</td><td><span class="sev">${esc(e.severity)}</span></td><td>${esc(e.type)}</td><td>${esc(endpoint(e.attacker.ip, undefined, e.attackerIdentity))}</td><td>${esc(endpoint(e.target.ip, e.target.port || undefined, e.targetIdentity))}</td><td class="num">${e.count}</td><td class="desc">${esc(e.description)}</td></tr>`,
        );
      this.table.innerHTML = `<thead><tr><th>time</th><th>severity</th><th>type</th><th>attacker</th><th>target</th><th class="num">count</th><th>description</th></tr></thead><tbody>${rows.join('') || '<tr><td colspan="7" class="hint">No security events.</td></tr>'}</tbody>`;
    }
    this.blocks.innerHTML = `<thead><tr><th>ip</th><th>reason</th><th>since</th><th>expires</th><th class="num">dropped</th></tr></thead><tbody>${
      bl.blocks.map((b) => `<tr><td>${esc(b.ip)}</td><td>${esc(b.reason)}</td><td>${esc(time(b.createdAt))}</td><td>${b.expiresAt ? esc(time(b.expiresAt)) : 'until lifted'}</td><td class="num">${b.packetsDropped}</td></tr>`).join('') ||
      '<tr><td colspan="5" class="hint">Nothing is blocked.</td></tr>'
    }</tbody>`;
  }

  /** Lanes by severity over the last 15 minutes; redrawn each refresh so the axis moves. */
  private drawTimeline(now: number): void {
    const w = this.svg.clientWidth || 1200;
    const laneH = 22;
    const left = 70;
    const h = laneH * SEVERITIES.length + 22;
    this.svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    this.svg.setAttribute('height', String(h));
    const parts: string[] = [];
    SEVERITIES.forEach((s, i) => {
      const y = i * laneH + laneH / 2;
      parts.push(`<text x="4" y="${y + 4}" class="lane-label">${s}</text><line x1="${left}" x2="${w - 8}" y1="${y}" y2="${y}" class="lane" />`);
    });
    const x = (t: number): number => left + ((t - (now - WINDOW_MS)) / WINDOW_MS) * (w - left - 8);
    for (let m = 0; m <= 15; m += 5) {
      const t = now - m * 60_000;
      parts.push(`<text x="${x(t)}" y="${h - 4}" class="tick" text-anchor="${m === 0 ? 'end' : 'middle'}">${m === 0 ? 'now' : `-${m} min`}</text>`);
    }
    for (const e of this.events) {
      const t = Date.parse(e.timestamp);
      if (now - t > WINDOW_MS) continue;
      const lane = SEVERITIES.indexOf(e.severity as (typeof SEVERITIES)[number]);
      if (lane < 0) continue;
      const tip = `${time(e.timestamp)} ${e.type}: ${endpoint(e.attacker.ip, undefined, e.attackerIdentity)} → ${endpoint(e.target.ip, e.target.port || undefined, e.targetIdentity)}`;
      parts.push(`<circle cx="${x(t).toFixed(1)}" cy="${lane * laneH + laneH / 2}" r="5" class="dot sev-${esc(e.severity)}"><title>${esc(tip)}</title></circle>`);
    }
    const g = document.createElementNS(SVG, 'g');
    g.innerHTML = parts.join('');
    this.svg.replaceChildren(g);
  }
}
