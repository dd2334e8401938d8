/**
 * XDP attach as a bpf_link, so the kernel detaches it if the process dies.
 * Every kernel we load on (>= 5.18) has XDP links, so there is no netlink
 * fallback here.
 */
import { KernelUnsupportedError } from '../errors.js';
import { kernelFeatures } from '../loader/features.js';
import type { BpfProgram } from '../loader/object.js';
import { AttachType, LinkAttachment, linkCreate } from './link-fd.js';
import type { Attachment } from './attachment.js';
import { attachFailure } from './failure.js';

export type XdpMode = 'native' | 'generic';

const XDP_FLAGS_SKB_MODE = 1 << 1;
const XDP_FLAGS_DRV_MODE = 1 << 2;

export interface XdpAttachOptions {
  mode: XdpMode;
}

export function attachXdp(prog: BpfProgram, iface: string, ifindex: number, opts: XdpAttachOptions): Attachment {
  if (!kernelFeatures().xdpLink) throw new KernelUnsupportedError('XDP links', `kernel ${kernelFeatures().release} predates 5.9`);
  const flags = opts.mode === 'native' ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
  const fd = linkCreate(prog.fd, ifindex, AttachType.XDP, flags);
  if (fd < 0) {
    const errno = -fd;
    let detail: string | undefined;
    if (errno === 95) detail = `driver of ${iface} has no native XDP; use xdp: 'generic'`;
    else if (errno === 16 || errno === 17) detail = `another XDP program is attached to ${iface}`;
    else if (errno === 34) detail = `MTU of ${iface} or its peer is too large for XDP`;
    throw attachFailure(`xdp (${opts.mode})`, iface, errno, detail);
  }
  return new LinkAttachment('xdp', opts.mode === 'native' ? 'xdp-native' : 'xdp-generic', iface, ifindex, fd);
}

