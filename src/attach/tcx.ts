/**
 * TC attach as a TCX link (kernel 6.6+): the kernel detaches it if the
 * process dies, and it coexists with other TCX programs and with clsact
 * filters. libbpf 1.1 has no TCX helper, so this calls bpf_link_create with
 * the TCX attach types directly.
 */
import type { BpfProgram } from '../loader/object.js';
import { AttachType, LinkAttachment, linkCreate } from './link-fd.js';
import type { Attachment } from './attachment.js';
import { attachFailure } from './failure.js';

export type TcDirection = 'ingress' | 'egress';

/** Returns the attachment, or a negative errno when TCX is unavailable. */
export function tryAttachTcx(prog: BpfProgram, iface: string, ifindex: number, direction: TcDirection): Attachment | number {
  const type = direction === 'ingress' ? AttachType.TCX_INGRESS : AttachType.TCX_EGRESS;
  const fd = linkCreate(prog.fd, ifindex, type);
  if (fd >= 0) return new LinkAttachment(direction === 'ingress' ? 'tc-ingress' : 'tc-egress', 'tcx', iface, ifindex, fd);
  // EINVAL: this kernel doesn't know the attach type; let the caller fall back.
  if (fd === -22) return fd;
  throw attachFailure(`tcx ${direction}`, iface, -fd);
}
