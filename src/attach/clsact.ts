/**
 * TC attach through netlink on a clsact qdisc: the fallback for kernels
 * without TCX (< 6.6). Unlike a link it survives the process if it dies, so
 * close() must run. The qdisc is removed only if we created it and neither of
 * our filters is left on it (libbpf cannot list other filters; a qdisc we
 * created on a kernel this old rarely holds any).
 */
import { libbpf } from '../ffi/native.js';
import type { BpfProgram } from '../loader/object.js';
import type { Attachment } from './attachment.js';
import { attachFailure } from './failure.js';
import type { TcDirection } from './tcx.js';

const BPF_TC_INGRESS = 1;
const BPF_TC_EGRESS = 2;
const EEXIST = 17;
const ENOENT = 2;
// Our filters sit at this handle and priority, so detach finds exactly them.
const HANDLE = 0x4b4e; // "KN"
const PRIORITY = 0xc1; // 193

/** struct bpf_tc_hook: sz@0, ifindex@8, attach_point@12, parent@16; 24 bytes. */
function hookStruct(ifindex: number, point: number): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(24n, 0);
  b.writeInt32LE(ifindex, 8);
  b.writeUInt32LE(point, 12);
  return b;
}

const BPF_TC_F_REPLACE = 1;

/** struct bpf_tc_opts: sz@0, prog_fd@8, flags@12, prog_id@16, handle@20, priority@24; 32 bytes. */
function optsStruct(progFd: number, handle: number, priority: number, flags = 0): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(32n, 0);
  b.writeInt32LE(progFd, 8);
  b.writeUInt32LE(flags, 12);
  b.writeUInt32LE(handle, 20);
  b.writeUInt32LE(priority, 24);
  return b;
}

/** Interfaces whose clsact qdisc this process created (by ifindex). */
const createdQdiscs = new Set<number>();

/** Ensures a clsact qdisc on the interface, remembering whether we made it. */
function ensureClsact(iface: string, ifindex: number): void {
  const rc = libbpf.bpf_tc_hook_create(hookStruct(ifindex, BPF_TC_INGRESS)) as number;
  if (rc === 0) createdQdiscs.add(ifindex);
  else if (rc !== -EEXIST) throw attachFailure('tc clsact', iface, -rc);
}

class ClsactAttachment implements Attachment {
  readonly link = false;
  readonly mode = 'clsact' as const;
  private attached = true;

  constructor(
    readonly hook: 'tc-ingress' | 'tc-egress',
    readonly iface: string,
    readonly ifindex: number,
    private readonly point: number,
  ) {}

  get interface(): string {
    return this.iface;
  }

  close(): void {
    if (!this.attached) return;
    this.attached = false;
    // bpf_tc_detach wants prog_fd, prog_id and flags all zero.
    const rc = libbpf.bpf_tc_detach(hookStruct(this.ifindex, this.point), optsStruct(0, HANDLE, PRIORITY)) as number;
    if (rc < 0 && rc !== -ENOENT && rc !== -19) {
      process.emitWarning(`detach tc ${this.iface}: errno ${-rc}`);
    }
    removeQdiscIfEmpty(this.ifindex);
  }
}

function hasFilter(ifindex: number, point: number): boolean {
  // libbpf can only query a filter by handle and priority, so this sees ours.
  const opts = optsStruct(0, HANDLE, PRIORITY);
  return (libbpf.bpf_tc_query(hookStruct(ifindex, point), opts) as number) === 0;
}

function removeQdiscIfEmpty(ifindex: number): void {
  if (!createdQdiscs.has(ifindex)) return;
  // Destroying the hook with INGRESS|EGRESS removes the whole qdisc, other
  // programs' filters included, so only do it when ours were the last.
  if (hasFilter(ifindex, BPF_TC_INGRESS) || hasFilter(ifindex, BPF_TC_EGRESS)) return;
  libbpf.bpf_tc_hook_destroy(hookStruct(ifindex, BPF_TC_INGRESS | BPF_TC_EGRESS));
  createdQdiscs.delete(ifindex);
}

export function attachClsact(prog: BpfProgram, iface: string, ifindex: number, direction: TcDirection): Attachment {
  ensureClsact(iface, ifindex);
  const point = direction === 'ingress' ? BPF_TC_INGRESS : BPF_TC_EGRESS;
  // REPLACE: a filter at our handle can only be ours, left by a process
  // that died without detaching (clsact filters outlive their owner).
  const rc = libbpf.bpf_tc_attach(hookStruct(ifindex, point), optsStruct(prog.fd, HANDLE, PRIORITY, BPF_TC_F_REPLACE)) as number;
  if (rc < 0) {
    removeQdiscIfEmpty(ifindex);
    throw attachFailure(`tc ${direction} (clsact)`, iface, -rc);
  }
  return new ClsactAttachment(direction === 'ingress' ? 'tc-ingress' : 'tc-egress', iface, ifindex, point);
}

