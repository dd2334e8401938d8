/**
 * ifindex -> name, cached for a few seconds. Names of interfaces that are
 * gone are cached too (as undefined): a table full of a deleted pod's flows
 * must not cost one lookup per flow per read.
 */
import { interfaceName } from '../netif.js';

export class InterfaceNames {
  private readonly cache = new Map<number, { name: string | undefined; at: number }>();

  constructor(private readonly ttlMs = 5000) {}

  /** Records a name we already know (from an attach). */
  set(ifindex: number, name: string): void {
    this.cache.set(ifindex, { name, at: Date.now() });
  }

  get(ifindex: number, now = Date.now()): string | undefined {
    const hit = this.cache.get(ifindex);
    if (hit && now - hit.at < this.ttlMs) return hit.name;
    const name = interfaceName(ifindex);
    this.cache.set(ifindex, { name, at: now });
    return name;
  }
}
