/**
 * A BPF map-element iterator: an `iter/bpf_map_elem` program attached to one
 * map by a bpf_link. Each read() creates an iterator fd from the link and
 * reads it to the end, as `cat` reads a seq_file: the kernel runs the program
 * once per element, and what it writes with bpf_seq_write() is the output.
 * The reads run on libuv's thread pool, so the event loop stays free.
 */
import { read as fsRead } from 'node:fs';
import { libbpf, libc } from '../ffi/native.js';
import { linkCreate } from '../attach/link-fd.js';
import { ClosedError, SystemError } from '../errors.js';
import type { BpfMap } from './map.js';
import type { BpfProgram } from './object.js';

/** enum bpf_attach_type BPF_TRACE_ITER. */
const BPF_TRACE_ITER = 28;
/** sizeof(union bpf_iter_link_info): its largest member is the cgroup one. */
const ITER_LINK_INFO_SIZE = 16;
/** The kernel fills one seq_file buffer (8 pages) per read() call. */
const READ_CHUNK = 1 << 16;

export class MapIterator {
  private linkFd: number;

  private constructor(
    readonly program: string,
    readonly map: string,
    linkFd: number,
  ) {
    this.linkFd = linkFd;
  }

  /** Attaches `prog` to iterate `map`; throws SystemError naming both if the kernel refuses. */
  static attach(prog: BpfProgram, map: BpfMap): MapIterator {
    const info = Buffer.alloc(ITER_LINK_INFO_SIZE);
    info.writeUInt32LE(map.fd, 0); // .map.map_fd
    const fd = linkCreate(prog.fd, 0, BPF_TRACE_ITER, 0, info);
    if (fd < 0) throw new SystemError(`attach iterator ${prog.name} to map ${map.name}`, -fd);
    return new MapIterator(prog.name, map.name, fd);
  }

  /**
   * One walk of the map: everything the program wrote, in `into` when it is
   * large enough (else a larger buffer, which the result then is). Returns
   * the buffer and how many bytes of it were written.
   */
  async read(into: Buffer = Buffer.alloc(READ_CHUNK)): Promise<{ buf: Buffer; length: number }> {
    if (this.linkFd < 0) throw new ClosedError(`iterator ${this.program}`);
    const fd = libbpf.bpf_iter_create(this.linkFd) as number;
    if (fd < 0) throw new SystemError(`read iterator ${this.program} over map ${this.map}`, -fd);
    let buf = into;
    let length = 0;
    try {
      for (;;) {
        if (buf.length - length < READ_CHUNK) {
          const bigger = Buffer.allocUnsafe(Math.max(buf.length * 2, length + READ_CHUNK));
          buf.copy(bigger, 0, 0, length);
          buf = bigger;
        }
        const n = await new Promise<number>((resolve, reject) => {
          fsRead(fd, buf, length, buf.length - length, null, (err, bytes) => (err ? reject(err) : resolve(bytes)));
        });
        if (n === 0) return { buf, length };
        length += n;
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).errno;
      throw typeof code === 'number' ? new SystemError(`read iterator ${this.program} over map ${this.map}`, Math.abs(code)) : err;
    } finally {
      libc.close(fd);
    }
  }

  /** Detaches (closes the link). Safe to call twice. */
  close(): void {
    if (this.linkFd >= 0) {
      libc.close(this.linkFd);
      this.linkFd = -1;
    }
  }
}
