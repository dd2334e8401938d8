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
    const cap = this.maxEntries;
    // fresh: buffers of this call's own, for a caller that keeps them, sized
    // from the last read (and grown if the map grew) rather than the capacity.
    let size = opts.fresh ? Math.min(cap, Math.ceil(this.lastCount * 1.1) + 1024) : cap;
    let keys = opts.fresh ? Buffer.allocUnsafe(size * this.keySize) : (this.batchKeys ??= Buffer.alloc(cap * this.keySize));
    let values = opts.fresh ? Buffer.allocUnsafe(size * this.valueStride) : (this.batchValues ??= Buffer.alloc(cap * this.valueStride));
    const inBatch = Buffer.alloc(8);
    const outBatch = Buffer.alloc(8);
    const count = new Uint32Array(1);
    let total = 0;
    let first = true;
    let step = Math.min(batchSize, cap);
    // More entries than the last read had: double, keeping what was read
    // (the batch token carries on where it was).
    const grow = (): void => {
      size = Math.min(cap, size * 2);
      const k = Buffer.allocUnsafe(size * this.keySize);
      const v = Buffer.allocUnsafe(size * this.valueStride);
      keys.copy(k, 0, 0, total * this.keySize);
      values.copy(v, 0, 0, total * this.valueStride);
      keys = k;
      values = v;
    };
    for (;;) {
      if (size - total <= 0 && size < cap) grow();
      const room = size - total;
      if (room <= 0) break;
      count[0] = Math.min(step, room);
      const rc = libbpf.bpf_map_lookup_batch(
        this.fd,
        first ? null : inBatch,
        outBatch,
        keys.subarray(total * this.keySize),
        values.subarray(total * this.valueStride),
        count,
        null,
      ) as number;
      if (rc === -ENOSPC && count[0] === 0) {
        // A hash bucket holds more entries than we asked for: ask for more,
        // growing the buffer if it must; at capacity the map changed under us.
        if (step >= room) {
          if (size >= cap) break;
          grow();
        }
        step = Math.min(step * 2, cap);
        continue;
      }
      if (rc < 0 && rc !== -ENOENT) throw new SystemError(`batch lookup in map ${this.name}`, rc);
      total += count[0]!;
      if (rc === -ENOENT) break;
      outBatch.copy(inBatch);
      first = false;
    }
    this.lastCount = total;
    return { count: total, keys, values, keySize: this.keySize, valueStride: this.valueStride };
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
