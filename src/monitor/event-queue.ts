/**
 * A bounded queue behind an async iterator. When the consumer falls behind
 * and the queue is full, new items are dropped and counted (never silently:
 * the owner reports them as lost events).
 */
export class EventQueue<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private head = 0;
  private waiter: ((r: IteratorResult<T>) => void) | null = null;
  private done = false;
  dropped = 0;

  constructor(
    private readonly limit: number,
    private readonly onEnd: () => void,
  ) {}

  /** False when the item was dropped because the queue is full. */
  push(item: T): boolean {
    if (this.done) return false;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: item, done: false });
      return true;
    }
    if (this.items.length - this.head >= this.limit) {
      this.dropped++;
      return false;
    }
    this.items.push(item);
    return true;
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    this.onEnd();
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.items.length) {
      const value = this.items[this.head++]!;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items.splice(0, this.head);
        this.head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
