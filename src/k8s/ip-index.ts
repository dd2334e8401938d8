/**
 * IP -> owner, where several owners may claim one IP for a while.
 *
 * Pod IPs are reused: pod B can be given pod A's IP before the watch has
 * told us that A is gone. The owner of an IP is the claimant that acquired
 * it most recently; releasing an IP (delete, or an update without it) only
 * affects that claimant, and hands the IP back to an earlier claimant still
 * holding it. Re-asserting an IP already held (an update that keeps it)
 * does not take it back from a newer claimant.
 */
export class IpIndex<V> {
  /** ip -> claimants, oldest first; the owner is the last. */
  private readonly claims = new Map<string, { key: string; value: V }[]>();

  /** Sets `key`'s IPs to `ips`. Returns the IPs it newly acquired and those it released. */
  set(key: string, ips: readonly string[], value: V, previous: readonly string[]): { acquired: string[]; released: string[] } {
    const next = new Set(ips);
    const released = previous.filter((ip) => !next.has(ip));
    for (const ip of released) this.remove(ip, key);
    const acquired: string[] = [];
    for (const ip of next) {
      const list = this.claims.get(ip);
      if (!list) {
        // An exact-size array: `[]` then push() would reserve 17 slots.
        this.claims.set(ip, [{ key, value }]);
        acquired.push(ip);
        continue;
      }
      const at = list.findIndex((c) => c.key === key);
      if (at >= 0) {
        list[at]!.value = value; // keeps its place: no take-over by a re-assertion
      } else {
        list.push({ key, value });
        acquired.push(ip);
      }
    }
    return { acquired, released };
  }

  remove(ip: string, key: string): void {
    const list = this.claims.get(ip);
    if (!list) return;
    const at = list.findIndex((c) => c.key === key);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) this.claims.delete(ip);
  }

  get(ip: string): V | undefined {
    const list = this.claims.get(ip);
    return list?.[list.length - 1]?.value;
  }

  /** Whether `key` currently owns `ip`. */
  owns(ip: string, key: string): boolean {
    const list = this.claims.get(ip);
    return list !== undefined && list[list.length - 1]?.key === key;
  }

  *owners(): IterableIterator<[string, V]> {
    for (const [ip, list] of this.claims) {
      const last = list[list.length - 1];
      if (last) yield [ip, last.value];
    }
  }

  get size(): number {
    return this.claims.size;
  }

  clear(): void {
    this.claims.clear();
  }
}
