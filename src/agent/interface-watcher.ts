/**
 * Follows network interfaces as they come and go (pods' veths churn all
 * day), from rtnetlink link notifications: an event source, not a polling
 * loop. Emits 'added' and 'removed' for interfaces whose names match the
 * patterns (names or globs such as "veth*", "lxc*", "cali*").
 */
import { EventEmitter } from 'node:events';
import picomatch from 'picomatch';
import { koffi, lastErrno, libc } from '../ffi/native.js';
import { EAGAIN, IFINFOMSG_LEN, IFLA_IFNAME, MSG_DONTWAIT, NLMSG_HDRLEN, RTM_DELLINK, RTM_NEWLINK, cstr, openRouteSocket, parseAttributes } from '../netlink/rtnetlink.js';
import { InvalidArgumentError, SystemError } from '../errors.js';
import { interfaceIndex, listInterfaces } from '../netif.js';

const RTMGRP_LINK = 1;
const ENOBUFS = 105;

/** One interface: its name and index in this network namespace. */
export interface InterfaceRef {
  name: string;
  ifindex: number;
}

export interface InterfaceWatcherEvents {
  added: [InterfaceRef];
  removed: [InterfaceRef];
  error: [Error];
}

/** The pattern that names the node's main interface: the one its default route goes out of. */
export const MAIN_INTERFACE = '@main';

/** Interface-name patterns: a name, or a glob of *, ? and [...] over name characters. */
const PATTERN = /^[A-Za-z0-9_.@+\-*?[\]!]{1,64}$/;

export function interfaceMatcher(patterns: readonly string[]): (name: string) => boolean {
  if (patterns.length === 0) throw new InvalidArgumentError('no interface patterns given', 'name at least one interface or glob, e.g. eth0 or "veth*"');
  for (const p of patterns) {
    if (!PATTERN.test(p)) throw new InvalidArgumentError(`invalid interface pattern ${JSON.stringify(p)}`, 'use interface names and the globs *, ? and [...], e.g. "veth*"');
  }
  return picomatch(patterns as string[], { nobrace: true, noextglob: true, noglobstar: true });
}

/** Reads the link messages in one netlink datagram. */
export function parseLinkMessages(buf: Buffer, len: number): { type: 'new' | 'del'; ifindex: number; name: string | undefined }[] {
  const out: { type: 'new' | 'del'; ifindex: number; name: string | undefined }[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= len) {
    const msgLen = buf.readUInt32LE(off);
    const type = buf.readUInt16LE(off + 4);
    if (msgLen < NLMSG_HDRLEN || off + msgLen > len) break;
    if ((type === RTM_NEWLINK || type === RTM_DELLINK) && msgLen >= NLMSG_HDRLEN + IFINFOMSG_LEN) {
      const ifindex = buf.readInt32LE(off + NLMSG_HDRLEN + 4);
      const name = cstr(parseAttributes(buf, off + NLMSG_HDRLEN + IFINFOMSG_LEN, off + msgLen).get(IFLA_IFNAME));
      out.push({ type: type === RTM_NEWLINK ? 'new' : 'del', ifindex, name });
    }
    off += (msgLen + 3) & ~3;
  }
  return out;
}

export class InterfaceWatcher extends EventEmitter<InterfaceWatcherEvents> {
  private fd: number;
  private poller: { stop(): void; close(): void } | null = null;
  private readonly known = new Map<number, string>();
  private readonly buf = Buffer.alloc(64 * 1024);

  private constructor(
    private readonly matches: (name: string) => boolean,
    fd: number,
  ) {
    super();
    this.fd = fd;
  }

  /**
   * Subscribes to link notifications, then lists what is already there
   * (in that order, so nothing that appears in between is missed). The
   * interfaces present now are in `current()`; later ones arrive as events.
   */
  static start(patterns: readonly string[]): InterfaceWatcher {
    const matches = interfaceMatcher(patterns);
    const fd = openRouteSocket(RTMGRP_LINK);
    const w = new InterfaceWatcher(matches, fd);
    for (const name of listInterfaces()) {
      if (!matches(name)) continue;
      try {
        w.known.set(interfaceIndex(name), name);
      } catch {
        /* gone between the listing and the lookup */
      }
    }
    w.poller = koffi.node.poll(fd, { readable: true }, () => w.read());
    return w;
  }

  /** The matching interfaces present now. */
  current(): InterfaceRef[] {
    return [...this.known].map(([ifindex, name]) => ({ name, ifindex }));
  }

  private read(): void {
    for (;;) {
      const n = Number(libc.recv(this.fd, this.buf, this.buf.length, MSG_DONTWAIT));
      if (n < 0) {
        const errno = lastErrno();
        if (errno === EAGAIN) return;
        if (errno === ENOBUFS) {
          // The kernel dropped notifications: rebuild the picture from a listing.
          this.resync();
          continue;
        }
        this.emit('error', new SystemError('read rtnetlink', errno));
        return;
      }
      if (n === 0) return;
      for (const m of parseLinkMessages(this.buf, n)) this.apply(m.type, m.ifindex, m.name);
    }
  }

  private apply(type: 'new' | 'del', ifindex: number, name: string | undefined): void {
    const had = this.known.get(ifindex);
    if (type === 'del') {
      if (had === undefined) return;
      this.known.delete(ifindex);
      this.emit('removed', { name: had, ifindex });
      return;
    }
    if (name === undefined || had === name) return; // a state change of a known link
    if (had !== undefined) {
      // Renamed: the old name is gone, the new one may match.
      this.known.delete(ifindex);
      this.emit('removed', { name: had, ifindex });
    }
    if (this.matches(name)) {
      this.known.set(ifindex, name);
      this.emit('added', { name, ifindex });
    }
  }

  private resync(): void {
    const now = new Map<number, string>();
    for (const name of listInterfaces()) {
      if (!this.matches(name)) continue;
      try {
        now.set(interfaceIndex(name), name);
      } catch {
        /* gone meanwhile */
      }
    }
    for (const [ifindex, name] of [...this.known]) if (now.get(ifindex) !== name) this.apply('del', ifindex, undefined);
    for (const [ifindex, name] of now) if (this.known.get(ifindex) !== name) this.apply('new', ifindex, name);
  }

  close(): void {
    if (this.fd < 0) return;
    this.poller?.stop();
    this.poller?.close();
    this.poller = null;
    libc.close(this.fd);
    this.fd = -1;
  }
}
