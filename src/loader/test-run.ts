/**
 * BPF_PROG_TEST_RUN: runs a loaded program on a frame in the kernel without
 * any interface. Used by the fuzz tests and the per-packet cost benchmark.
 */
import { koffi, libbpf, viewOf, type Ptr } from '../ffi/native.js';
import { SystemError } from '../errors.js';

// struct bpf_test_run_opts (libbpf 1.1.2, x86_64): sz@0, data_in@8,
// data_out@16, data_size_in@24, data_size_out@28, ctx_in@32, ctx_out@40,
// ctx_size_in@48, ctx_size_out@52, retval@56, repeat@60, duration@64,
// flags@68, cpu@72, batch_size@76; 80 bytes.
const OPTS_SIZE = 80;

export interface TestRunResult {
  /** 0 on success, else the negative errno (e.g. -22 for a frame the kernel won't take). */
  rc: number;
  retval: number;
  /** Average nanoseconds per run, as the kernel measured it. */
  durationNs: number;
}

// struct __sk_buff, as far as test_run reads it here: ingress_ifindex@36,
// ifindex@40. Passed only where asked for; the kernel zero-fills the rest.
const SKB_CTX_SIZE = 44;
const SKB_INGRESS_IFINDEX = 36;

export interface TestRunOptions {
  /** TC programs: the skb's ingress_ifindex (the interface a forwarded frame came in through; 0: sent by this host). */
  ingressIfindex?: number;
}

/** A reusable native buffer for frames (test_run needs a native pointer). */
export class TestRunner {
  private mem: Ptr;
  private buf: Uint8Array;
  private ctx: Ptr | undefined;
  private readonly opts = Buffer.alloc(OPTS_SIZE);
  private freed = false;

  constructor(
    private readonly progFd: number,
    readonly capacity = 16384,
  ) {
    this.mem = koffi.alloc('uint8_t', capacity) as Ptr;
    this.buf = new Uint8Array(viewOf(this.mem, capacity));
    this.opts.writeBigUInt64LE(BigInt(OPTS_SIZE), 0);
    this.opts.writeBigUInt64LE(koffi.address(this.mem), 8);
  }

  run(frame: Uint8Array, repeat = 1, options: TestRunOptions = {}): TestRunResult {
    if (this.freed) throw new Error('TestRunner is closed');
    if (frame.length > this.capacity) throw new RangeError(`frame of ${frame.length} bytes exceeds ${this.capacity}`);
    this.buf.set(frame);
    if (options.ingressIfindex !== undefined) {
      if (!this.ctx) {
        this.ctx = koffi.alloc('uint8_t', SKB_CTX_SIZE) as Ptr;
        new Uint8Array(viewOf(this.ctx, SKB_CTX_SIZE)).fill(0);
      }
      new DataView(viewOf(this.ctx, SKB_CTX_SIZE)).setUint32(SKB_INGRESS_IFINDEX, options.ingressIfindex, true);
      this.opts.writeBigUInt64LE(koffi.address(this.ctx), 32);
      this.opts.writeUInt32LE(SKB_CTX_SIZE, 48);
    } else {
      this.opts.writeBigUInt64LE(0n, 32);
      this.opts.writeUInt32LE(0, 48);
    }
    this.opts.writeUInt32LE(frame.length, 24);
    // libbpf copies data_size_out back, and the kernel would take it as the
    // size of an output buffer next time: reset it (as the kernel selftests do).
    this.opts.writeUInt32LE(0, 28);
    this.opts.writeUInt32LE(repeat, 60);
    this.opts.writeUInt32LE(0, 56);
    this.opts.writeUInt32LE(0, 64);
    const rc = libbpf.bpf_prog_test_run_opts(this.progFd, this.opts) as number;
    return { rc, retval: this.opts.readUInt32LE(56), durationNs: this.opts.readUInt32LE(64) };
  }

  /** Like run(), but throws on failure. */
  runOrThrow(frame: Uint8Array, repeat = 1, options: TestRunOptions = {}): TestRunResult {
    const r = this.run(frame, repeat, options);
    if (r.rc < 0) throw new SystemError('BPF_PROG_TEST_RUN', r.rc);
    return r;
  }

  close(): void {
    if (this.freed) return;
    this.freed = true;
    this.buf = new Uint8Array(0);
    koffi.free(this.mem);
    if (this.ctx) koffi.free(this.ctx);
  }
}

/**
 * Runs a BPF_PROG_TYPE_SYSCALL program once with `ctx` (native memory of
 * `ctxSize` bytes) as its context; the kernel copies the context back, so
 * the program's answers are in it afterwards. Returns the program's return
 * value; throws on a failed call.
 */
export function runSyscallProgram(progFd: number, name: string, ctx: Ptr, ctxSize: number, opts: Buffer = Buffer.alloc(OPTS_SIZE)): number {
  opts.fill(0);
  opts.writeBigUInt64LE(BigInt(OPTS_SIZE), 0);
  opts.writeBigUInt64LE(koffi.address(ctx), 32);
  opts.writeUInt32LE(ctxSize, 48);
  const rc = libbpf.bpf_prog_test_run_opts(progFd, opts) as number;
  if (rc < 0) throw new SystemError(`run ${name}`, rc);
  return opts.readUInt32LE(56);
}

/** Room for the options runSyscallProgram() passes, to reuse across calls. */
export function testRunOptions(): Buffer {
  return Buffer.alloc(OPTS_SIZE);
}
