/**
 * A loaded BPF map, by file descriptor: element reads and writes, whole-map
 * reads with batch lookup, and per-CPU value handling.
 */
import { libbpf } from '../ffi/native.js';
import { SystemError } from '../errors.js';

const ENOENT = 2;
const ENOSPC = 28;

/** enum bpf_map_type values we care about. */
export const MapType = {
  HASH: 1,
  ARRAY: 2,
  PERCPU_HASH: 5,
  PERCPU_ARRAY: 6,
  LRU_HASH: 9,
  LRU_PERCPU_HASH: 10,
  RINGBUF: 27,
} as const;

const PERCPU_TYPES = new Set<number>([MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH]);

export const UpdateFlags = { ANY: 0, NOEXIST: 1, EXIST: 2 } as const;

/** A __u32 key or value, as the kernel lays it out (little-endian here). */
export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

let possibleCpusCache: number | undefined;
export function possibleCpus(): number {
  if (possibleCpusCache === undefined) {
    const n = libbpf.libbpf_num_possible_cpus() as number;
    if (n <= 0) throw new SystemError('libbpf_num_possible_cpus', -n);
    possibleCpusCache = n;
  }
  return possibleCpusCache;
}

export interface MapInfo {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

/** The result of reading a whole map: keys and values packed back to back. */
export interface MapDump {
  count: number;
  keys: Buffer;
  values: Buffer;
  keySize: number;
  /** Bytes per entry in `values` (for per-CPU maps: all CPUs' values). */
  valueStride: number;
}

export class BpfMap {
  readonly name: string;
  readonly fd: number;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly perCpu: boolean;
  /** Bytes of one lookup result: value size, or rounded value size x CPUs. */
  readonly valueStride: number;
  private batchKeys: Buffer | undefined;
  private batchValues: Buffer | undefined;
  /** Entries the last dump found (sizes the next fresh one). */
  private lastCount = 0;

  constructor(info: MapInfo, fd: number) {
    this.name = info.name;
    this.fd = fd;
    this.type = info.type;
    this.keySize = info.keySize;
    this.valueSize = info.valueSize;
    this.maxEntries = info.maxEntries;
    this.perCpu = PERCPU_TYPES.has(info.type);
    this.valueStride = this.perCpu ? Math.ceil(info.valueSize / 8) * 8 * possibleCpus() : info.valueSize;
  }

  /** The value for `key`, or undefined when absent. Per-CPU maps return all CPUs' values. */
  lookup(key: Uint8Array, into?: Buffer): Buffer | undefined {
    const value = into ?? Buffer.alloc(this.valueStride);
    const rc = libbpf.bpf_map_lookup_elem(this.fd, key, value) as number;
    if (rc === -ENOENT) return undefined;
    if (rc < 0) throw new SystemError(`lookup in map ${this.name}`, rc);
    return value;
  }

  update(key: Uint8Array, value: Uint8Array, flags: number = UpdateFlags.ANY): void {
    const rc = libbpf.bpf_map_update_elem(this.fd, key, value, flags) as number;
    if (rc < 0) throw new SystemError(`update map ${this.name}`, rc);
  }

  /**
   * Removes `key` and returns its value as it was at removal, in one step
   * (per-CPU maps: every CPU's). Undefined when it was absent.
   */
  lookupAndDelete(key: Uint8Array, into?: Buffer): Buffer | undefined {
    const value = into ?? Buffer.alloc(this.valueStride);
    const rc = libbpf.bpf_map_lookup_and_delete_elem(this.fd, key, value) as number;
    if (rc === -ENOENT) return undefined;
    if (rc < 0) throw new SystemError(`lookup and delete in map ${this.name}`, rc);
    return value;
  }

  /** Every key, one get_next_key call each (for maps without batch reads, such as LPM tries). */
  keys(): Buffer[] {
    const out: Buffer[] = [];
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keySize);
      const rc = libbpf.bpf_map_get_next_key(this.fd, prev, next) as number;
      if (rc === -ENOENT) return out;
      if (rc < 0) throw new SystemError(`next key in map ${this.name}`, rc);
      out.push(next);
      prev = next;
    }
  }

  /** Deletes `key`; false when it was absent. */
  delete(key: Uint8Array): boolean {
    const rc = libbpf.bpf_map_delete_elem(this.fd, key) as number;
    if (rc === -ENOENT) return false;
    if (rc < 0) throw new SystemError(`delete from map ${this.name}`, rc);
    return true;
  }

  /**
   * Reads every entry with BPF_MAP_LOOKUP_BATCH. The buffers are reused
   * between calls (copy what you keep before the next dump) unless `fresh`.
   */
  dump(batchSize = 8192, opts: { fresh?: boolean } = {}): MapDump {
    const read = new BatchRead(this, batchSize, opts.fresh ? undefined : this.reusable());
    while (read.prepare()) {
      read.finish(libbpf.bpf_map_lookup_batch(...read.args()) as number);
    }
    return this.done(read);
  }

  /**
   * dump() off the event loop, with buffers of its own: each batch runs on a
   * libuv worker thread, and while the kernel copies out the next batch,
   * `onChunk` gets the entries of the one just read (entries `start` to
   * `start + count` of the buffers it is passed, valid during the call).
   * Whoever closes the map's fd aborts `signal` and waits for the read to end
   * first: a batch in flight on a closed (and reused) fd would read another map.
   */
  async dumpAsync(
    batchSize = 8192,
    onChunk?: (keys: Buffer, values: Buffer, start: number, count: number) => void,
    /** Checked between batches: stop (throwing its reason) once aborted. */
    signal?: AbortSignal,
  ): Promise<MapDump> {
    const read = new BatchRead(this, batchSize, undefined);
    const call = (): Promise<number> =>
      new Promise((resolve, reject) => {
        libbpf.bpf_map_lookup_batch.async(...read.args(), (err: unknown, rc: number) => (err ? reject(err) : resolve(rc)));
      });
    let inFlight = read.prepare() ? call() : undefined;
    while (inFlight) {
      const chunk = read.finish(await inFlight);
      signal?.throwIfAborted();
      // Next batch first, then this one's entries: the two overlap.
      inFlight = read.prepare() ? call() : undefined;
      if (chunk && chunk.count > 0 && onChunk) {
        try {
          onChunk(read.keys, read.values, chunk.start, chunk.count);
        } catch (err) {
          await inFlight?.catch(() => {}); // never leave the kernel writing into buffers we drop
          throw err;
        }
      }
    }
    return this.done(read);
  }

  private reusable(): { keys: Buffer; values: Buffer } {
    this.batchKeys ??= Buffer.alloc(this.maxEntries * this.keySize);
    this.batchValues ??= Buffer.alloc(this.maxEntries * this.valueStride);
    return { keys: this.batchKeys, values: this.batchValues };
  }

  private done(read: BatchRead): MapDump {
    this.lastCount = read.total;
    return { count: read.total, keys: read.keys, values: read.values, keySize: this.keySize, valueStride: this.valueStride };
  }

  /** Entries the last read found. */
  get lastReadCount(): number {
    return this.lastCount;
  }

  /** Deletes the given keys (packed back to back); returns how many were deleted. */
  deleteBatch(keys: Buffer, n: number): number {
    if (n === 0) return 0;
    const count = new Uint32Array([n]);
    const rc = libbpf.bpf_map_delete_batch(this.fd, keys, count, null) as number;
    if (rc < 0 && rc !== -ENOENT) throw new SystemError(`batch delete from map ${this.name}`, rc);
    return count[0]!;
  }
}

/** Sums a u64 field over all CPUs of one per-CPU value. */
export function sumPerCpuU64(values: Buffer, entryOffset: number, valueSize: number, fieldOffset: number): bigint {
  const stride = Math.ceil(valueSize / 8) * 8;
  let sum = 0n;
  for (let cpu = 0, n = possibleCpus(); cpu < n; cpu++) {
    sum += values.readBigUInt64LE(entryOffset + cpu * stride + fieldOffset);
  }
  return sum;
}

/**
 * One whole-map batch read as a state machine, shared by the blocking and
 * the worker-thread dump: prepare() the next call (false when done), make
 * it with args(), finish() with its return code.
 */
class BatchRead {
  keys: Buffer;
  values: Buffer;
  total = 0;
  private size: number;
  private readonly cap: number;
  private step: number;
  private first = true;
  private ended = false;
  private readonly inBatch = Buffer.alloc(8);
  private readonly outBatch = Buffer.alloc(8);
  private readonly count = new Uint32Array(1);

  constructor(
    private readonly map: BpfMap,
    batchSize: number,
    reuse: { keys: Buffer; values: Buffer } | undefined,
  ) {
    this.cap = map.maxEntries;
    // Buffers of its own are sized from the last read (grown if the map
    // grew) rather than the capacity.
    this.size = reuse ? this.cap : Math.min(this.cap, Math.ceil(map.lastReadCount * 1.1) + 1024);
    this.keys = reuse?.keys ?? Buffer.allocUnsafe(this.size * map.keySize);
    this.values = reuse?.values ?? Buffer.allocUnsafe(this.size * map.valueStride);
    this.step = Math.min(batchSize, this.cap);
  }

  /** More entries than the last read had: double, keeping what was read (the batch token carries on where it was). */
  private grow(): void {
    this.size = Math.min(this.cap, this.size * 2);
    const k = Buffer.allocUnsafe(this.size * this.map.keySize);
    const v = Buffer.allocUnsafe(this.size * this.map.valueStride);
    this.keys.copy(k, 0, 0, this.total * this.map.keySize);
    this.values.copy(v, 0, 0, this.total * this.map.valueStride);
    this.keys = k;
    this.values = v;
  }

  prepare(): boolean {
    if (this.ended) return false;
    if (this.size - this.total <= 0 && this.size < this.cap) this.grow();
    const room = this.size - this.total;
    if (room <= 0) return false;
    this.count[0] = Math.min(this.step, room);
    return true;
  }

  args(): [number, Buffer | null, Buffer, Buffer, Buffer, Uint32Array, null] {
    return [
      this.map.fd,
      this.first ? null : this.inBatch,
      this.outBatch,
      this.keys.subarray(this.total * this.map.keySize),
      this.values.subarray(this.total * this.map.valueStride),
      this.count,
      null,
    ];
  }

  /** The entries the call added, if any. */
  finish(rc: number): { start: number; count: number } | undefined {
    if (rc === -ENOSPC && this.count[0] === 0) {
      // A hash bucket holds more entries than we asked for: ask for more,
      // growing the buffer if it must; at capacity the map changed under us.
      if (this.step >= this.size - this.total) {
        if (this.size >= this.cap) {
          this.ended = true;
          return undefined;
        }
        this.grow();
      }
      this.step = Math.min(this.step * 2, this.cap);
      return undefined;
    }
    if (rc < 0 && rc !== -ENOENT) throw new SystemError(`batch lookup in map ${this.map.name}`, rc);
    const start = this.total;
    this.total += this.count[0]!;
    if (rc === -ENOENT) this.ended = true;
    else {
      this.outBatch.copy(this.inBatch);
      this.first = false;
    }
    return { start, count: this.count[0]! };
  }
}
