/** A bounded buffer of the most recent items: the oldest fall out. */
export class Recent<T> {
  private readonly items: T[] = [];
  private start = 0;
  /** Items that fell out because the buffer was full. */
  dropped = 0;

  constructor(readonly limit: number) {}

  push(item: T): void {
    if (this.limit === 0) {
      this.dropped++;
      return;
    }
    if (this.items.length < this.limit) {
      this.items.push(item);
      return;
    }
    this.items[this.start] = item;
    this.start = (this.start + 1) % this.limit;
    this.dropped++;
  }

  /** Oldest first. */
  toArray(): T[] {
    return [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
  }

  get size(): number {
    return this.items.length;
  }
}
