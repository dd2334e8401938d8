/**
 * A small rtnetlink client for what pod discovery asks the kernel: the
 * links of this network namespace (with each veth's peer: its ifindex and
 * the network namespace it sits in), the addresses inside a peer's network
 * namespace (IFA_TARGET_NETNSID, kernel 4.20+, so no setns and no
 * subprocess), and the route the kernel picks for an address.
 *
 * The npm `netlink` package would do this through a native addon built at
 * install time (node-gyp and a C++ compiler); the socket calls here go
 * through koffi and libc, as the rest of the loader does.
 */
import { isIP } from 'node:net';
import { lastErrno, libc } from '../ffi/native.js';
import { SystemError } from '../errors.js';
import { encodeAddress, formatIpv4, formatIpv6 } from '../abi/ip.js';

const AF_INET = 2;
const AF_INET6 = 10;
export const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_ROUTE = 0;
const SOL_NETLINK = 270;
/** Strict checking: the kernel honours the filters in a dump request (IFA_TARGET_NETNSID needs it). */
const NETLINK_GET_STRICT_CHK = 12;
export const MSG_DONTWAIT = 0x40;
export const EAGAIN = 11;
const EINTR = 4;
const POLLIN = 1;

const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
export const NLMSG_HDRLEN = 16;

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
const RTM_NEWADDR = 20;
const RTM_GETADDR = 22;
const RTM_NEWROUTE = 24;
const RTM_GETROUTE = 26;

export const IFLA_IFNAME = 3;
const IFLA_LINK = 5;
const IFLA_MASTER = 10;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;
const IFLA_LINK_NETNSID = 37;
export const IFINFOMSG_LEN = 16;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_TARGET_NETNSID = 10;
const IFADDRMSG_LEN = 8;

const RTA_DST = 1;
const RTA_OIF = 4;
const RTMSG_LEN = 12;
const RTA_TABLE = 15;
const RTN_UNICAST = 1;
const RT_TABLE_MAIN = 254;

/** How long one request may wait for the kernel's answer (it answers at once; this only bounds a bug). */
const REPLY_TIMEOUT_MS = 2000;

/** A link of this network namespace. */
export interface LinkInfo {
  ifindex: number;
  name: string;
  /** "veth", "netkit", "bridge", ... (undefined for a physical NIC or loopback). */
  kind: string | undefined;
  /** The bridge (or other master) it is a port of. */
  master: number | undefined;
  /** The peer's ifindex (veth, netkit); in `peerNetnsId`'s namespace when that is set. */
  peerIfindex: number | undefined;
  /** The id, in this namespace, of the namespace the peer sits in; undefined when the peer is here. */
  peerNetnsId: number | undefined;
}

/** An address of a link. */
export interface AddressInfo {
  ifindex: number;
  ip: string;
  prefixLen: number;
}

/** The route the kernel picks for an address. */
export interface RouteInfo {
  /** The link it goes out of. */
  oif: number | undefined;
  /** unicast, local, broadcast, ... */
  type: 'unicast' | 'other';
}

type Attrs = Map<number, Buffer>;

/** The attributes (type -> payload) in buf[start, end); a nested attribute's payload is parsed the same way. */
export function parseAttributes(buf: Buffer, start: number, end: number): Attrs {
  const out: Attrs = new Map();
  let at = start;
  while (at + 4 <= end) {
    const len = buf.readUInt16LE(at);
    const type = buf.readUInt16LE(at + 2) & 0x3fff; // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
    if (len < 4 || at + len > end) break;
    out.set(type, buf.subarray(at + 4, at + len));
    at += (len + 3) & ~3;
  }
  return out;
}

/** A NUL-terminated string attribute's text. */
export function cstr(b: Buffer | undefined): string | undefined {
  if (!b) return undefined;
  const nul = b.indexOf(0);
  return b.toString('utf8', 0, nul < 0 ? b.length : nul);
}

function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

function ipString(b: Buffer): string | undefined {
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  if (b.length === 4) return formatIpv4(v, 0);
  return b.length === 16 ? formatIpv6(v, 0) : undefined;
}

/**
 * A non-blocking rtnetlink socket; with `groups`, subscribed to those
 * multicast groups (RTMGRP_LINK for link notifications).
 */
export function openRouteSocket(groups = 0): number {
  const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE) as number;
  if (fd < 0) throw new SystemError('open rtnetlink socket', lastErrno());
  if (groups === 0) return fd;
  // struct sockaddr_nl: family@0 (u16), pad@2, pid@4 (u32), groups@8 (u32)
  const addr = Buffer.alloc(12);
  addr.writeUInt16LE(AF_NETLINK, 0);
  addr.writeUInt32LE(groups, 8);
  if ((libc.bind(fd, addr, addr.length) as number) < 0) {
    const errno = lastErrno();
    libc.close(fd);
    throw new SystemError('subscribe to rtnetlink notifications', errno);
  }
  return fd;
}

export class RtNetlink {
  private fd: number;
  private seq = 0;
  private readonly buf = Buffer.alloc(64 * 1024);
  private readonly pollfd = Buffer.alloc(8);

  private constructor(fd: number) {
    this.fd = fd;
  }

  static open(): RtNetlink {
    const fd = openRouteSocket();
    const on = Buffer.alloc(4);
    on.writeInt32LE(1);
    if ((libc.setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, on, 4) as number) < 0) {
      const errno = lastErrno();
      libc.close(fd);
      throw new SystemError('rtnetlink: turn on strict checking (kernel 4.20 or later)', errno);
    }
    return new RtNetlink(fd);
  }

  /** Every link of this network namespace. */
  links(): LinkInfo[] {
    const out: LinkInfo[] = [];
    const body = Buffer.alloc(IFINFOMSG_LEN);
    for (const { type, msg, start, end } of this.request(RTM_GETLINK, NLM_F_DUMP, body, 'list links')) {
      if (type !== RTM_NEWLINK) continue;
      const ifindex = msg.readInt32LE(start + 4);
      const a = parseAttributes(msg, start + IFINFOMSG_LEN, end);
      const info = a.get(IFLA_LINKINFO);
      const kind = info ? cstr(parseAttributes(info, 0, info.length).get(IFLA_INFO_KIND)) : undefined;
      const peer = a.get(IFLA_LINK)?.readInt32LE(0);
      out.push({
        ifindex,
        name: cstr(a.get(IFLA_IFNAME)) ?? `if${ifindex}`,
        kind,
        master: a.get(IFLA_MASTER)?.readInt32LE(0),
        // IFLA_LINK is the link itself for devices without a peer.
        peerIfindex: peer !== undefined && peer !== ifindex && peer > 0 ? peer : undefined,
        peerNetnsId: a.get(IFLA_LINK_NETNSID)?.readInt32LE(0),
      });
    }
    return out;
  }

  /**
   * The IPv4 and IPv6 addresses of the network namespace whose id (in this
   * namespace) is `netnsId`, or of this one when it is undefined.
   */
  addresses(netnsId?: number): AddressInfo[] {
    const out: AddressInfo[] = [];
    for (const family of [AF_INET, AF_INET6]) {
      const hdr = Buffer.alloc(IFADDRMSG_LEN);
      hdr.writeUInt8(family, 0);
      let body = hdr;
      if (netnsId !== undefined) {
        const id = Buffer.alloc(4);
        id.writeInt32LE(netnsId);
        body = Buffer.concat([hdr, attr(IFA_TARGET_NETNSID, id)]);
      }
      const what = netnsId === undefined ? 'list addresses' : `list addresses in network namespace id ${netnsId}`;
      for (const { type, msg, start, end } of this.request(RTM_GETADDR, NLM_F_DUMP, body, what)) {
        if (type !== RTM_NEWADDR) continue;
        const prefixLen = msg.readUInt8(start + 1);
        const ifindex = msg.readUInt32LE(start + 4);
        const a = parseAttributes(msg, start + IFADDRMSG_LEN, end);
        // IFA_LOCAL is the interface's own address on point-to-point links; IFA_ADDRESS elsewhere.
        const raw = a.get(IFA_LOCAL) ?? a.get(IFA_ADDRESS);
        const ip = raw && ipString(raw);
        if (ip !== undefined) out.push({ ifindex, ip, prefixLen });
      }
    }
    return out;
  }

  /** The route the kernel would take to `ip` (`ip route get`); undefined where there is none. */
  routeTo(ip: string): RouteInfo | undefined {
    const fam = isIP(ip);
    if (fam === 0) return undefined;
    const addr = encodeAddress(ip);
    // encodeAddress gives 16 bytes, IPv4 mapped: its last four are the IPv4 address.
    const dst = Buffer.from(fam === 4 ? addr!.subarray(12) : addr!);
    const hdr = Buffer.alloc(RTMSG_LEN);
    hdr.writeUInt8(fam === 4 ? AF_INET : AF_INET6, 0);
    hdr.writeUInt8(fam === 4 ? 32 : 128, 1);
    let reply: RouteInfo | undefined;
    try {
      for (const { type, msg, start, end } of this.request(RTM_GETROUTE, 0, Buffer.concat([hdr, attr(RTA_DST, dst)]), `route to ${ip}`)) {
        if (type !== RTM_NEWROUTE) continue;
        const a = parseAttributes(msg, start + RTMSG_LEN, end);
        reply = { oif: a.get(RTA_OIF)?.readInt32LE(0), type: msg.readUInt8(start + 7) === RTN_UNICAST ? 'unicast' : 'other' };
      }
    } catch (err) {
      // No route (ENETUNREACH, EHOSTUNREACH) is an answer, not a failure.
      if (err instanceof SystemError && (err.errno === 101 || err.errno === 113)) return undefined;
      throw err;
    }
    return reply;
  }

  /**
   * The links the default routes of the main table go out of (IPv4 and
   * IPv6): the node's main interface, as `ip route show default` names it.
   */
  defaultRouteLinks(): number[] {
    const out = new Set<number>();
    for (const family of [AF_INET, AF_INET6]) {
      const hdr = Buffer.alloc(RTMSG_LEN);
      hdr.writeUInt8(family, 0);
      for (const { type, msg, start, end } of this.request(RTM_GETROUTE, NLM_F_DUMP, hdr, 'list routes')) {
        if (type !== RTM_NEWROUTE) continue;
        const dstLen = msg.readUInt8(start + 1);
        const routeType = msg.readUInt8(start + 7);
        const a = parseAttributes(msg, start + RTMSG_LEN, end);
        const table = a.get(RTA_TABLE)?.readUInt32LE(0) ?? msg.readUInt8(start + 4);
        const oif = a.get(RTA_OIF)?.readInt32LE(0);
        if (dstLen === 0 && routeType === RTN_UNICAST && table === RT_TABLE_MAIN && oif !== undefined) out.add(oif);
      }
    }
    return [...out];
  }

  /** Sends one request and collects its answer: every message up to NLMSG_DONE (a dump) or the one reply. */
  private request(type: number, flags: number, body: Buffer, what: string): { type: number; msg: Buffer; start: number; end: number }[] {
    if (this.fd < 0) throw new SystemError(`rtnetlink: ${what}`, 9 /* EBADF: closed */);
    const seq = ++this.seq;
    const msg = Buffer.alloc(NLMSG_HDRLEN + body.length);
    msg.writeUInt32LE(msg.length, 0);
    msg.writeUInt16LE(type, 4);
    msg.writeUInt16LE(NLM_F_REQUEST | flags, 6);
    msg.writeUInt32LE(seq, 8);
    body.copy(msg, NLMSG_HDRLEN);
    if (Number(libc.send(this.fd, msg, msg.length, 0)) < 0) throw new SystemError(`rtnetlink: ${what}`, lastErrno());
    const dump = (flags & NLM_F_DUMP) !== 0;
    const out: { type: number; msg: Buffer; start: number; end: number }[] = [];
    for (;;) {
      const n = this.receive(what);
      let off = 0;
      while (off + NLMSG_HDRLEN <= n) {
        const len = this.buf.readUInt32LE(off);
        const t = this.buf.readUInt16LE(off + 4);
        const s = this.buf.readUInt32LE(off + 8);
        if (len < NLMSG_HDRLEN || off + len > n) break;
        if (s === seq) {
          if (t === NLMSG_DONE) return out;
          if (t === NLMSG_ERROR) {
            const errno = -this.buf.readInt32LE(off + NLMSG_HDRLEN);
            if (errno === 0 && !dump) return out; // an ack
            if (errno !== 0) throw new SystemError(`rtnetlink: ${what}`, errno);
          } else {
            // Copied out: the receive buffer is reused for the next datagram.
            const copy = Buffer.from(this.buf.subarray(off, off + len));
            out.push({ type: t, msg: copy, start: NLMSG_HDRLEN, end: len });
            if (!dump) return out;
          }
        }
        off += (len + 3) & ~3;
      }
    }
  }

  private receive(what: string): number {
    const deadline = Date.now() + REPLY_TIMEOUT_MS;
    for (;;) {
      const n = Number(libc.recv(this.fd, this.buf, this.buf.length, MSG_DONTWAIT));
      if (n >= 0) return n;
      const errno = lastErrno();
      if (errno !== EAGAIN && errno !== EINTR) throw new SystemError(`rtnetlink: ${what}`, errno);
      const left = deadline - Date.now();
      if (left <= 0) throw new SystemError(`rtnetlink: ${what}: no answer within ${REPLY_TIMEOUT_MS} ms`, 110 /* ETIMEDOUT */);
      // struct pollfd: fd@0 (i32), events@4 (i16), revents@6 (i16)
      this.pollfd.writeInt32LE(this.fd, 0);
      this.pollfd.writeInt16LE(POLLIN, 4);
      this.pollfd.writeInt16LE(0, 6);
      libc.poll(this.pollfd, 1, left);
    }
  }

  close(): void {
    if (this.fd < 0) return;
    libc.close(this.fd);
    this.fd = -1;
  }
}
