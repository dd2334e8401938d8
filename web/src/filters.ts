/**
 * The filter bar: the flow filters of `observe` (namespace, workload, label,
 * pod, service, ip, cidr, port, protocol, direction, interface). They narrow
 * the map, the flow table and the top pods; the agent validates them (a bad
 * one is a 400 naming it, shown beside the bar). Kept in the page's URL.
 */
import type { Query } from './api';

export const FILTER_NAMES = ['namespace', 'workload', 'label', 'pod', 'service', 'ip', 'cidr', 'port', 'protocol', 'direction', 'interface'] as const;

export class Filters {
  private value: Query = {};
  private readonly listeners: (() => void)[] = [];

  constructor(private readonly form: HTMLFormElement) {
    const params = new URLSearchParams(location.search);
    for (const n of FILTER_NAMES) {
      const v = params.get(n);
      if (v) this.field(n).value = v;
    }
    this.value = this.read();
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.apply();
    });
    form.querySelector('#clear-filters')?.addEventListener('click', () => {
      for (const n of FILTER_NAMES) this.field(n).value = '';
      this.apply();
    });
    form.querySelectorAll('select').forEach((s) => s.addEventListener('change', () => this.apply()));
  }

  private field(n: string): HTMLInputElement | HTMLSelectElement {
    return this.form.elements.namedItem(n) as HTMLInputElement | HTMLSelectElement;
  }

  private read(): Query {
    const q: Query = {};
    for (const n of FILTER_NAMES) {
      const v = this.field(n).value.trim();
      if (v) q[n] = v;
    }
    return q;
  }

  /** Sets some filters (e.g. from a click on the map) and applies them. */
  set(q: Query): void {
    for (const n of FILTER_NAMES) if (n in q) this.field(n).value = q[n] ?? '';
    this.apply();
  }

  private apply(): void {
    this.value = this.read();
    const params = new URLSearchParams(location.search);
    for (const n of FILTER_NAMES) {
      const v = this.value[n];
      if (v) params.set(n, v);
      else params.delete(n);
    }
    const qs = params.toString();
    history.replaceState(null, '', `${location.pathname}${qs ? `?${qs}` : ''}`);
    this.error('');
    for (const l of this.listeners) l();
  }

  get(): Query {
    return { ...this.value };
  }

  onChange(l: () => void): void {
    this.listeners.push(l);
  }

  /** Shows what the agent said about a filter ('' clears it). */
  error(message: string, parameter?: string): void {
    const el = this.form.querySelector('#filter-error')!;
    el.textContent = message;
    for (const n of FILTER_NAMES) this.field(n).classList.toggle('bad', n === parameter);
  }

  namespaces(list: readonly string[]): void {
    const dl = document.getElementById('namespaces')!;
    const have = [...dl.children].map((o) => (o as HTMLOptionElement).value).join('\n');
    if (have === list.join('\n')) return;
    dl.replaceChildren(...list.map((n) => Object.assign(document.createElement('option'), { value: n })));
  }
}
