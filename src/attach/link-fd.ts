/** A bpf_link held by file descriptor: closing the fd detaches it. */
import { koffi, libbpf, libc } from '../ffi/native.js';
import type { AttachHook, AttachMode, Attachment } from './attachment.js';

/** enum bpf_attach_type values. */
export const AttachType = { XDP: 37, TCX_INGRESS: 46, TCX_EGRESS: 47 } as const;

// struct bpf_link_create_opts (libbpf 1.1): size_t sz; __u32 flags; then for
// iterators a union bpf_iter_link_info pointer and its length (at 16 and 24);
// __u32 target_btf_id; a 32-byte union: 64 bytes in all.
const LINK_CREATE_OPTS_SIZE = 64;
const OPTS_FLAGS = 8;
const OPTS_ITER_INFO = 16;
const OPTS_ITER_INFO_LEN = 24;

/** bpf_link_create(); returns the link fd or a negative errno. `iterInfo`: an iterator's union bpf_iter_link_info (read during the call only). */
export function linkCreate(progFd: number, target: number, attachType: number, flags = 0, iterInfo?: Buffer): number {
  const opts = Buffer.alloc(LINK_CREATE_OPTS_SIZE);
  opts.writeBigUInt64LE(BigInt(LINK_CREATE_OPTS_SIZE), 0);
  opts.writeUInt32LE(flags, OPTS_FLAGS);
  if (iterInfo) {
    // A Buffer's memory stays put for the call.
    opts.writeBigUInt64LE(koffi.address(iterInfo) as bigint, OPTS_ITER_INFO);
    opts.writeUInt32LE(iterInfo.length, OPTS_ITER_INFO_LEN);
  }
  return libbpf.bpf_link_create(progFd, target, attachType, opts) as number;
}

export class LinkAttachment implements Attachment {
  readonly link = true;
  private fd: number;

  constructor(
    readonly hook: AttachHook,
    readonly mode: AttachMode,
    readonly iface: string,
    readonly ifindex: number,
    fd: number,
  ) {
    this.fd = fd;
  }

  get interface(): string {
    return this.iface;
  }

  close(): void {
    if (this.fd >= 0) {
      libc.close(this.fd);
      this.fd = -1;
    }
  }
}
