/**
 * Reads a BPF ring buffer straight from shared memory: no FFI call per
 * event, and a budget per turn so the event loop never blocks (libbpf
 * 1.1's ring_buffer__poll loops until the ring is empty, which under
 * sustained load is never).
 *
 * Layout (kernel/bpf/ringbuf.c): page 0 is the consumer position (we write
 * it); page 1 the producer position; the data area follows, mapped twice in
 * a row so a record that wraps reads as one piece. Each record has an 8-byte
 * header (u32 length with BUSY and DISCARD bits, u32 page offset) and is
 * padded to 8 bytes.
 */
import { koffi, libc, MAP_FAILED, MAP_SHARED, PROT_READ, PROT_WRITE, isNull, lastErrno, viewOf, type Ptr } from '../ffi/native.js';
import { ClosedError, SystemError } from '../errors.js';
import type { BpfMap } from './map.js';

const BUSY = 0x80000000;
const DISCARD = 0x40000000;
const HDR = 8;

export const pageSize: number = libc.getpagesize() as number;

/** Called per record with a view over the mapping; valid only during the call. */
export type RecordHandler = (view: DataView, offset: number, length: number) => void;

export class RingBufferReader {
  readonly name: string;
  private readonly fd: number;
  private readonly size: number;
  private readonly mask: number;
  private consumerPtr: Ptr | null;
  private producerPtr: Ptr | null;
  private consumerPos: BigUint64Array;
  private producerPos: BigUint64Array;
  private words: Uint32Array;
  private view: DataView;
  private poller: ReturnType<typeof koffi.node.poll> | null = null;
  private resumeTimer: NodeJS.Timeout | null = null;
  private scheduled = false;
  private draining = false;
  private cons: number;
  /** Records consumed since creation (discarded ones excluded). */
  records = 0;

  constructor(
    map: BpfMap,
    private readonly onRecord: RecordHandler,
  ) {
    this.name = map.name;
    this.fd = map.fd;
    this.size = map.maxEntries;
    this.mask = this.size - 1;
    const c = libc.mmap(null, pageSize, PROT_READ | PROT_WRITE, MAP_SHARED, map.fd, 0) as Ptr;
    if (isNull(c) || c === MAP_FAILED) throw new SystemError(`mmap consumer page of ring ${map.name}`, lastErrno());
    const p = libc.mmap(null, pageSize + 2 * this.size, PROT_READ, MAP_SHARED, map.fd, pageSize) as Ptr;
    if (isNull(p) || p === MAP_FAILED) {
      const errno = lastErrno();
      libc.munmap(c, pageSize);
      throw new SystemError(`mmap data pages of ring ${map.name}`, errno);
    }
    this.consumerPtr = c;
    this.producerPtr = p;
    this.consumerPos = new BigUint64Array(viewOf(c, pageSize), 0, 1);
    const data = viewOf(p, pageSize + 2 * this.size);
    this.producerPos = new BigUint64Array(data, 0, 1);
    this.words = new Uint32Array(data);
    this.view = new DataView(data);
    this.cons = Number(Atomics.load(this.consumerPos, 0));
  }

  /** Bytes written by the kernel and not yet consumed. */
  get pending(): number {
    if (this.producerPtr === null) return 0;
    return Number(Atomics.load(this.producerPos, 0)) - this.cons;
  }

  /**
   * Consumes up to `budget` records. Returns how many were handed to the
   * handler. A record the kernel is still writing ends the turn.
   */
  drain(budget = Number.POSITIVE_INFINITY): number {
    if (this.producerPtr === null) throw new ClosedError(`ring buffer ${this.name}`);
    // A handler that drains again (directly or through pollEvents) would
    // re-read records this turn has not released yet.
    if (this.draining) return 0;
    this.draining = true;
    const prod = Number(Atomics.load(this.producerPos, 0));
    let cons = this.cons;
    let n = 0;
    try {
      while (cons < prod && n < budget) {
        const at = pageSize + (cons & this.mask);
        const len = Atomics.load(this.words, at >>> 2);
        if (len & BUSY) break;
        const size = len & ~(BUSY | DISCARD);
        // Step past the record before handing it out: a handler that throws
        // must not see it again. The space is released to the kernel only in
        // `finally`, after the handler has read it.
        cons += (size + HDR + 7) & ~7;
        if (!(len & DISCARD)) {
          n++;
          this.onRecord(this.view, at + HDR, size);
          if (this.producerPtr === null) break; // the handler closed us
        }
      }
    } finally {
      if (cons !== this.cons) {
        this.cons = cons;
        // Release the space to the producer.
        Atomics.store(this.consumerPos, 0, BigInt(cons));
      }
      this.records += n;
      this.draining = false;
    }
    return n;
  }

  /**
   * Starts reading whenever the kernel signals data (epoll on the map fd),
   * `budget` records per event-loop turn; the rest waits for the next turn.
   *
   * `minWakeIntervalMs` > 0 batches wakeups: after a wakeup the reader drains
   * at once, then ignores the fd for that long and drains again before it
   * listens anew. The first record after a quiet spell is still read at once,
   * but a busy ring wakes the process at most 1000 / minWakeIntervalMs times
   * a second instead of once per record the reader catches up on (each wakeup
   * is a context switch, and in the kernel an irq_work). The ring must hold
   * what arrives meanwhile.
   */
  start(budget = 65536, onError?: (err: unknown) => void, options: { minWakeIntervalMs?: number } = {}): void {
    if (this.producerPtr === null) throw new ClosedError(`ring buffer ${this.name}`);
    if (this.poller) return;
    const hold = options.minWakeIntervalMs ?? 0;
    const turn = (): void => {
      this.scheduled = false;
      if (this.producerPtr === null || !this.poller) return;
      try {
        this.drain(budget);
      } catch (err) {
        onError?.(err);
      }
      if (this.pending > 0 && !this.scheduled) {
        this.scheduled = true;
        setImmediate(turn);
      }
    };
    const schedule = (): void => {
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(turn);
      }
    };
    const onReadable = (): void => {
      if (hold > 0 && this.poller && !this.resumeTimer) {
        this.poller.stop();
        this.resumeTimer = setTimeout(() => {
          this.resumeTimer = null;
          if (!this.poller) return;
          this.poller.start({ readable: true }, onReadable);
          schedule(); // what came while the fd was ignored
        }, hold);
      }
      schedule();
    };
    this.poller = koffi.node.poll(this.fd, { readable: true }, onReadable);
    // Anything already queued before the first wakeup.
    this.scheduled = true;
    setImmediate(turn);
  }

  stop(): void {
    if (this.resumeTimer) {
      clearTimeout(this.resumeTimer);
      this.resumeTimer = null;
    }
    if (this.poller) {
      this.poller.stop();
      this.poller.close();
      this.poller = null;
    }
  }

  close(): void {
    this.stop();
    if (this.producerPtr !== null) {
      // Drop the views first: touching them after munmap would crash the process.
      const empty = new ArrayBuffer(8);
      this.consumerPos = new BigUint64Array(empty);
      this.producerPos = new BigUint64Array(empty);
      this.words = new Uint32Array(empty);
      this.view = new DataView(empty);
      libc.munmap(this.producerPtr, pageSize + 2 * this.size);
      libc.munmap(this.consumerPtr, pageSize);
      this.producerPtr = null;
      this.consumerPtr = null;
    }
  }
}
