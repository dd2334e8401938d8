/** A bpf_link held by file descriptor: closing the fd detaches it. */
import { libbpf, libc } from '../ffi/native.js';
import type { AttachHook, AttachMode, Attachment } from './attachment.js';

/** enum bpf_attach_type values. */
export const AttachType = { XDP: 37, TCX_INGRESS: 46, TCX_EGRESS: 47 } as const;

// struct bpf_link_create_opts (libbpf 1.1): size_t sz; __u32 flags; then a
// 32-byte union. Only sz and flags are set here.
const LINK_CREATE_OPTS_SIZE = 48;

/** bpf_link_create(); returns the link fd or a negative errno. */
export function linkCreate(progFd: number, ifindex: number, attachType: number, flags = 0): number {
  const opts = Buffer.alloc(LINK_CREATE_OPTS_SIZE);
  opts.writeBigUInt64LE(BigInt(LINK_CREATE_OPTS_SIZE), 0);
  opts.writeUInt32LE(flags, 8);
  return libbpf.bpf_link_create(progFd, ifindex, attachType, opts) as number;
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
