/**
 * Evicts flows in batches: the kernel's knp_flow_evict program
 * (bpf/flow-evict.bpf.h) removes every flow whose key user space wrote into
 * the memory-mapped knp_flow_evict_batch array, in one system call, and
 * leaves each one's final figures (summed over CPUs) in the same memory.
 */
import { koffi, libc, MAP_FAILED, MAP_SHARED, PROT_READ, PROT_WRITE, isNull, lastErrno, viewOf, type Ptr } from '../ffi/native.js';
import { ClosedError, KubeNetProbeError, SystemError } from '../errors.js';
import { FLOW_EVICT, FLOW_EVICT_ARGS } from '../abi/layouts.js';
import { runSyscallProgram, testRunOptions } from '../loader/test-run.js';
import type { BpfMap } from '../loader/map.js';
import { pageSize } from '../loader/ringbuf.js';

export class FlowEvictor {
  /** Flows per run (the array's entries). */
  readonly capacity: number;
  /** The batch as 32-bit words: entry j at j * FLOW_EVICT.size / 4 (struct knp_flow_evict). */
  words: Uint32Array;
  /** The same memory, for the values' 64-bit fields. */
  view: DataView;
  private readonly mem: Ptr;
  private readonly length: number;
  private readonly args: Ptr;
  private readonly argsView: DataView;
  private readonly opts = testRunOptions();
  private closed = false;

  constructor(
    private readonly progFd: number,
    map: BpfMap,
  ) {
    if (map.valueSize !== FLOW_EVICT.size) throw new KubeNetProbeError('SYSTEM', `map ${map.name}: values of ${map.valueSize} bytes, expected ${FLOW_EVICT.size}: the object and this build disagree`);
    this.capacity = map.maxEntries;
    this.length = Math.ceil((this.capacity * FLOW_EVICT.size) / pageSize) * pageSize;
    const p = libc.mmap(null, this.length, PROT_READ | PROT_WRITE, MAP_SHARED, map.fd, 0) as Ptr;
    if (isNull(p) || p === MAP_FAILED) throw new SystemError(`mmap map ${map.name}`, lastErrno());
    this.mem = p;
    const data = viewOf(p, this.length);
    this.words = new Uint32Array(data);
    this.view = new DataView(data);
    this.args = koffi.alloc('uint8_t', FLOW_EVICT_ARGS.size) as Ptr;
    this.argsView = new DataView(viewOf(this.args, FLOW_EVICT_ARGS.size));
  }

  /** Removes the flows of entries 0 .. count - 1 (keys written); returns how many were in the table. */
  run(count: number): number {
    if (this.closed) throw new ClosedError('flow evictor');
    if (count > this.capacity) throw new RangeError(`${count} flows, more than the batch holds (${this.capacity})`);
    this.argsView.setUint32(FLOW_EVICT_ARGS.offsets.count, count, true);
    this.argsView.setUint32(FLOW_EVICT_ARGS.offsets.evicted, 0, true);
    runSyscallProgram(this.progFd, 'knp_flow_evict', this.args, FLOW_EVICT_ARGS.size, this.opts);
    return this.argsView.getUint32(FLOW_EVICT_ARGS.offsets.evicted, true);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Drop the views first: touching them after munmap would crash the process.
    this.words = new Uint32Array(0);
    this.view = new DataView(new ArrayBuffer(0));
    libc.munmap(this.mem, this.length);
    koffi.free(this.args);
  }
}
