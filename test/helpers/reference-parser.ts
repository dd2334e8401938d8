/**
 * A reference classifier: what bpf/monitor.bpf.c makes of a frame, written
 * again in TypeScript from the C, check for check and in the same order, so
 * the fuzz test can compare the kernel's counters with it frame by frame.
 *
 * It mirrors the C, bugs included; it is not a description of what a parser
 * should do. Each function names the C function it mirrors. Offsets are byte
 * offsets into the frame; `end` plays the role of data_end (the linear part
 * the program can read), `frameLen` that of skb->len / bpf_xdp_get_buff_len()
 * (the whole frame, non-linear part included).
 */

export type RefOutcome = 'parsed' | 'nonIp' | 'truncated' | 'malformed';

export const REF_OUTCOMES: readonly RefOutcome[] = ['parsed', 'nonIp', 'truncated', 'malformed'];

/** The flow key fields the parser fills (ifindex and direction come from the hook). */
export interface RefKey {
  family: 'ipv4' | 'ipv6';
  srcIp: string;
  dstIp: string;
  srcPort: number;
  dstPort: number;
  protocolNumber: number;
}

export interface RefResult {
  outcome: RefOutcome;
  /** Present when outcome is 'parsed'. */
  key?: RefKey;
  /** IP header + payload bytes the flow is charged (struct parsed.ip_len); 0 unless parsed. */
  ipLen: number;
}

// Constants as the C spells them.
const ETH_HLEN = 14;
const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;
const IPPROTO_HOPOPTS = 0;
const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_ROUTING = 43;
const IPPROTO_FRAGMENT = 44;
const IPPROTO_AH = 51;
const IPPROTO_ICMPV6 = 58;
const IPPROTO_NONE = 59;
const IPPROTO_DSTOPTS = 60;
const ICMP_ECHOREPLY = 0;
const ICMP_ECHO = 8;
const ICMPV6_ECHO_REQUEST = 128;
const ICMPV6_ECHO_REPLY = 129;
const IPV6_MAX_EXT_HEADERS = 6; // #define IPV6_MAX_EXT_HEADERS
const SIZEOF_IPHDR = 20;
const SIZEOF_IPV6HDR = 40;
const SIZEOF_TCPHDR = 20;
const SIZEOF_UDPHDR = 8;
const SIZEOF_ICMP4_HDR = 8; // struct icmp4_hdr
const SIZEOF_ICMP6HDR = 8; // struct icmp6hdr
const SIZEOF_IPV6_OPT_HDR = 2; // struct ipv6_opt_hdr
const SIZEOF_IPV6_FRAG_HDR = 8; // struct ipv6_frag_hdr
const SIZEOF_VLAN_HDR = 4; // struct vlan_hdr

/** The parts of `struct parsed` that leave the parser (tcp_flags/is_tcp are not compared). */
interface Parsed {
  family: 4 | 6 | 0;
  saddr: number; // offset of the source address in the frame
  daddr: number;
  sport: number;
  dport: number;
  proto: number;
  ipLen: number;
}

const be16 = (b: Uint8Array, off: number): number => (b[off]! << 8) | b[off + 1]!;
const u8 = (b: Uint8Array, off: number): number => b[off]!;

/** Mirrors parse_l4(). `cur` may be anywhere after the IP header. */
function parseL4(b: Uint8Array, cur: number, end: number, proto: number, p: Parsed): RefOutcome {
  switch (proto) {
    case IPPROTO_TCP:
      if (cur + SIZEOF_TCPHDR > end) return 'truncated';
      if (u8(b, cur + 12) >> 4 < 5) return 'malformed'; // th->doff < 5
      p.sport = be16(b, cur);
      p.dport = be16(b, cur + 2);
      return 'parsed';
    case IPPROTO_UDP:
      if (cur + SIZEOF_UDPHDR > end) return 'truncated';
      p.sport = be16(b, cur);
      p.dport = be16(b, cur + 2);
      return 'parsed';
    case IPPROTO_ICMP: {
      if (cur + SIZEOF_ICMP4_HDR > end) return 'truncated';
      const type = u8(b, cur);
      p.dport = (type << 8) | u8(b, cur + 1);
      if (type === ICMP_ECHO || type === ICMP_ECHOREPLY) p.sport = be16(b, cur + 4); // ih->id
      return 'parsed';
    }
    case IPPROTO_ICMPV6: {
      if (cur + SIZEOF_ICMP6HDR > end) return 'truncated';
      const type = u8(b, cur);
      p.dport = (type << 8) | u8(b, cur + 1);
      if (type === ICMPV6_ECHO_REQUEST || type === ICMPV6_ECHO_REPLY) p.sport = be16(b, cur + 4); // icmp6_identifier
      return 'parsed';
    }
    default:
      // Another IP protocol: a flow without ports.
      return 'parsed';
  }
}

/** Mirrors parse_ipv4(). `l3Avail`: frame bytes at and after the IP header. */
function parseIpv4(b: Uint8Array, cur: number, end: number, l3Avail: number, p: Parsed): RefOutcome {
  if (cur + SIZEOF_IPHDR > end) return 'truncated';
  const version = u8(b, cur) >> 4;
  const ihl = u8(b, cur) & 0x0f;
  if (version !== 4 || ihl < 5) return 'malformed';
  const hlen = ihl * 4;
  let tot = be16(b, cur + 2);
  // BIG TCP: tot_len 0 over 64 KiB means "the frame length".
  if (tot === 0 && l3Avail > 0xffff) tot = l3Avail;
  if (tot < hlen) return 'malformed';
  if (tot > l3Avail) return 'truncated';
  if (cur + hlen > end) return 'truncated'; // options must be present in full

  p.family = 4;
  p.proto = u8(b, cur + 9);
  p.saddr = cur + 12;
  p.daddr = cur + 16;
  p.ipLen = tot;

  // Non-first fragments carry no L4 header: ip->frag_off & htons(0x1fff).
  if (be16(b, cur + 6) & 0x1fff) return 'parsed';
  // PAST_IP(): headers after the IP header must also end within tot_len.
  return parseL4(b, cur + hlen, Math.min(end, cur + tot), p.proto, p);
}

/** Mirrors parse_ipv6(), extension-header loop included. */
function parseIpv6(b: Uint8Array, cur: number, end: number, l3Avail: number, p: Parsed): RefOutcome {
  if (cur + SIZEOF_IPV6HDR > end) return 'truncated';
  if (u8(b, cur) >> 4 !== 6) return 'malformed';
  let tot = SIZEOF_IPV6HDR + be16(b, cur + 4);
  // Jumbograms (and BIG TCP) carry payload_len 0.
  if (tot === SIZEOF_IPV6HDR && l3Avail > 0xffff + SIZEOF_IPV6HDR) tot = l3Avail;
  if (tot > l3Avail) return 'truncated';

  p.family = 6;
  p.saddr = cur + 8;
  p.daddr = cur + 24;
  p.ipLen = tot;

  let nexthdr = u8(b, cur + 6);
  // PAST_IP(): extension and upper-layer headers must end within the packet.
  end = Math.min(end, cur + tot);
  cur += SIZEOF_IPV6HDR;
  // One pass per extension header, plus one for the upper-layer header.
  for (let i = 0; i < IPV6_MAX_EXT_HEADERS + 1; i++) {
    switch (nexthdr) {
      case IPPROTO_HOPOPTS:
      case IPPROTO_ROUTING:
      case IPPROTO_DSTOPTS:
        if (cur + SIZEOF_IPV6_OPT_HDR > end) return 'truncated';
        nexthdr = u8(b, cur);
        cur += (u8(b, cur + 1) + 1) * 8;
        break;
      case IPPROTO_AH:
        if (cur + SIZEOF_IPV6_OPT_HDR > end) return 'truncated';
        nexthdr = u8(b, cur);
        cur += (u8(b, cur + 1) + 2) * 4;
        break;
      case IPPROTO_FRAGMENT:
        if (cur + SIZEOF_IPV6_FRAG_HDR > end) return 'truncated';
        p.proto = u8(b, cur);
        // Non-first fragment (fh->frag_off & htons(0xfff8)): no L4 header follows.
        if (be16(b, cur + 2) & 0xfff8) return 'parsed';
        nexthdr = u8(b, cur);
        cur += SIZEOF_IPV6_FRAG_HDR;
        break;
      case IPPROTO_NONE:
        p.proto = IPPROTO_NONE;
        return 'parsed';
      default:
        p.proto = nexthdr;
        return parseL4(b, cur, end, nexthdr, p);
    }
  }
  // A longer chain than any real stack sends.
  return 'malformed';
}

/** Mirrors parse_frame(): Ethernet with up to two VLAN tags. */
function parseFrame(b: Uint8Array, end: number, frameLen: number, p: Parsed): RefOutcome {
  if (ETH_HLEN > end) return 'truncated';
  let proto = be16(b, 12);
  let cur = ETH_HLEN;
  for (let i = 0; i < 2; i++) {
    if (proto !== ETH_P_8021Q && proto !== ETH_P_8021AD) break;
    if (cur + SIZEOF_VLAN_HDR > end) return 'truncated';
    proto = be16(b, cur + 2); // vh->encap_proto
    cur += SIZEOF_VLAN_HDR;
  }
  // frame_len - (cur - data), a __u32; cur never passes data_end here.
  if (proto === ETH_P_IP) return parseIpv4(b, cur, end, frameLen - cur, p);
  if (proto === ETH_P_IPV6) return parseIpv6(b, cur, end, frameLen - cur, p);
  return 'nonIp';
}

/**
 * Classifies one frame as handle_skb() / xdp_ingress() do.
 * `linearLen`: bytes the program can read directly (data_end - data). For TC
 * test runs the whole frame is linear; XDP test runs put at most a page minus
 * headroom and skb_shared_info in the linear part and the rest in fragments.
 */
export function classifyFrame(frame: Uint8Array, linearLen: number = frame.length): RefResult {
  const p: Parsed = { family: 0, saddr: 0, daddr: 0, sport: 0, dport: 0, proto: 0, ipLen: 0 };
  const end = Math.min(linearLen, frame.length);
  const outcome = parseFrame(frame, end, frame.length, p);
  if (outcome !== 'parsed') return { outcome, ipLen: 0 };
  const family = p.family === 4 ? 'ipv4' : 'ipv6';
  return {
    outcome,
    ipLen: p.ipLen,
    key: {
      family,
      srcIp: family === 'ipv4' ? ipv4Text(frame, p.saddr) : ipv6Text(frame, p.saddr),
      dstIp: family === 'ipv4' ? ipv4Text(frame, p.daddr) : ipv6Text(frame, p.daddr),
      srcPort: p.sport,
      dstPort: p.dport,
      protocolNumber: p.proto,
    },
  };
}

/** A string identifying a key, for maps. */
export function keyString(k: RefKey): string {
  return `${k.family} ${k.srcIp} ${k.srcPort} > ${k.dstIp} ${k.dstPort} proto ${k.protocolNumber}`;
}

// ---- Address text, written independently of src/abi/ip.ts so the decoder is
// checked too. The form is the library's: dotted quad for IPv4 keys, and for
// IPv6 lower-case hex groups without leading zeros, the first longest run of
// two or more zero groups written "::" (RFC 5952), no dotted IPv4 suffix.

export function ipv4Text(b: Uint8Array, off: number): string {
  return Array.from(b.subarray(off, off + 4)).join('.');
}

export function ipv6Text(b: Uint8Array, off: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(be16(b, off + 2 * i));
  // Find the first longest run of zeros (length >= 2).
  let runStart = -1;
  let runLen = 0;
  for (let s = 0; s < 8; s++) {
    let n = 0;
    while (s + n < 8 && g[s + n] === 0) n++;
    if (n >= 2 && n > runLen) {
      runStart = s;
      runLen = n;
    }
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (runStart < 0) return hex(g);
  return `${hex(g.slice(0, runStart))}::${hex(g.slice(runStart + runLen))}`;
}

/** Hex dump of a frame, 32 bytes a line, for failure messages. */
export function hexDump(frame: Uint8Array, max = 256): string {
  const lines: string[] = [];
  const n = Math.min(frame.length, max);
  for (let off = 0; off < n; off += 32) {
    lines.push(`  ${off.toString(16).padStart(4, '0')}: ${Buffer.from(frame.subarray(off, Math.min(off + 32, n))).toString('hex').replace(/(.{8})/g, '$1 ').trim()}`);
  }
  if (frame.length > n) lines.push(`  ... ${frame.length - n} more bytes`);
  return lines.join('\n');
}
