/** What one attach produced; close() undoes it and is safe to call twice. */
export type AttachHook = 'xdp' | 'tc-ingress' | 'tc-egress';
/** How it is attached: a kernel link (undone by the kernel if we die) or netlink (clsact). */
export type AttachMode = 'xdp-native' | 'xdp-generic' | 'tcx' | 'clsact';

export interface Attachment {
  readonly hook: AttachHook;
  readonly mode: AttachMode;
  readonly interface: string;
  readonly ifindex: number;
  /** True when the kernel detaches it by itself if this process dies. */
  readonly link: boolean;
  close(): void;
}
