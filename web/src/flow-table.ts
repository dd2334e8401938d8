/**
 * The flow table: the flows of the filter bar's filters, live (refreshed
 * every 2 s, paused and resumed by a button) or from the agent's history
 * for a time range (the API's since/until: 30s, 10m, 1h, 2d back from now,
 * now, or an ISO 8601 time). The newest 500 rows, newest first.
 */
import { ApiError, getJson, type Query } from './api';
import { FLOW_HEADER, flowRowsHtml, newestFirst } from './flow-rows';
import type { FlowRow } from './types';

const ROWS = 500;

export class FlowTable {
  paused = false;
  private range: { since: string; until?: string } | undefined;
  private seq = 0;
  private readonly table = document.getElementById('flows-table') as HTMLTableElement;
  private readonly info = document.getElementById('flows-info')!;
  private readonly error = document.getElementById('flows-error')!;
  private readonly pause = document.getElementById('flows-pause') as HTMLButtonElement;
  private readonly select = document.getElementById('flows-range') as HTMLSelectElement;
  private readonly since = document.getElementById('flows-since') as HTMLInputElement;
  private readonly until = document.getElementById('flows-until') as HTMLInputElement;

  constructor(
    private readonly filters: () => Query,
    private readonly onFilterError: (err: ApiError) => void,
  ) {
    this.pause.addEventListener('click', () => {
      this.paused = !this.paused;
      this.pause.textContent = this.paused ? 'Resume' : 'Pause';
      this.pause.classList.toggle('on', this.paused);
      if (!this.paused) void this.refresh();
    });
    this.select.addEventListener('change', () => this.pickRange());
    document.getElementById('flows-go')!.addEventListener('click', () => this.pickRange());
  }

  private pickRange(): void {
    const v = this.select.value;
    const custom = v === 'custom';
    document.querySelectorAll<HTMLElement>('.custom-range').forEach((el) => (el.hidden = !custom));
    if (v === 'live') this.range = undefined;
    else if (custom) {
      const since = this.since.value.trim();
      if (!since) return;
      const until = this.until.value.trim();
      this.range = until ? { since, until } : { since };
    } else this.range = { since: v };
    this.pause.disabled = this.range !== undefined;
    void this.refresh(true);
  }

  /** Live: refreshed on a timer unless paused; a history range is read once per change. */
  get live(): boolean {
    return this.range === undefined;
  }

  async refresh(force = false): Promise<void> {
    if (!force && (this.paused || !this.live)) return;
    const mine = ++this.seq;
    const q: Query = { ...this.filters(), ...(this.range ?? {}), limit: this.range ? '5000' : '10000' };
    try {
      const r = await getJson<{ flows: FlowRow[]; history?: unknown }>('/api/v1/flows', q);
      if (mine !== this.seq) return;
      const rows = newestFirst(r.flows).slice(0, ROWS);
      this.table.innerHTML = `${FLOW_HEADER}<tbody>${flowRowsHtml(rows)}</tbody>`;
      this.info.textContent = `${r.flows.length} flow${r.flows.length === 1 ? '' : 's'}${r.flows.length > ROWS ? `, the newest ${ROWS} shown` : ''} · ${this.range ? `history since ${this.range.since}${this.range.until ? ` until ${this.range.until}` : ''}` : this.paused ? 'paused' : 'live'}`;
      this.error.hidden = true;
    } catch (err) {
      if (mine !== this.seq) return;
      const e = err as ApiError;
      if (e.parameter && !['since', 'until', 'limit'].includes(e.parameter)) this.onFilterError(e);
      this.error.textContent = e.message;
      this.error.hidden = false;
    }
  }
}
