/**
 * Differential fuzzing of the kernel parser: deterministic pseudo-random
 * frames (garbage, valid templates, mutated templates, oversize frames, long
 * IPv6 extension-header chains) go through tc_ingress and xdp_ingress with
 * BPF_PROG_TEST_RUN, and the kernel's per-interface outcome counters and flow
 * table must equal, exactly, what the TypeScript mirror of the parser
 * (helpers/reference-parser.ts) says. On a mismatch the failing chunk or
 * flows are re-run frame by frame and the disagreeing frames printed in hex.
 *
 * Facts about BPF_PROG_TEST_RUN this relies on, found on kernel 6.18 (x86_64,
 * 4 KiB pages) and checked by the second test:
 *   - frames shorter than ETH_HLEN (14 bytes) are refused with -EINVAL and
 *     the program does not run;
 *   - skb (TC) runs also refuse, with -EINVAL, a frame whose EtherType is
 *     IPv4 (IPv6) but that is shorter than 14 + 20 (14 + 40) bytes; VLAN
 *     tags are not looked through;
 *   - TC frames must fit one linear buffer: at most PAGE_SIZE - NET_SKB_PAD
 *     - SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) = 3712 bytes; longer
 *     ones get -EINVAL and the program does not run;
 *   - XDP frames may be longer (xdp.frags, tested up to 16 KiB): the first
 *     PAGE_SIZE - XDP_PACKET_HEADROOM - skb_shared_info = 3520 bytes are
 *     linear (what data_end covers; the test pins it to 3520..3523), the rest
 *     goes into fragments, and the run returns 0;
 *   - the skb's device and the xdp_md's ingress_ifindex are the netns
 *     loopback, ifindex 1;
 *   - libbpf copies data_size_out back from the kernel, and the kernel takes
 *     a non-zero data_size_out as the size of the caller's output buffer, so
 *     TestRunner resets it on every run; every frame that runs returns 0,
 *     frames over a page included (a regression test below checks it).
 *
 * Seed and frame counts can be overridden for local exploration with
 * KNP_FUZZ_SEED (number) and KNP_FUZZ_SCALE (multiplier of the frame counts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkMonitor, type FlowStats, type InterfaceCounters } from '../src/index.js';
import { TestRunner, type TestRunResult } from '../src/loader/test-run.js';
import { REF_OUTCOMES, classifyFrame, hexDump, keyString, type RefOutcome, type RefResult } from './helpers/reference-parser.js';

// ---- Kernel facts (see the header comment; the first test checks them).

const ETH_HLEN = 14;
const TC_MAX_FRAME = 3712;
const XDP_LINEAR = 3520;
const EINVAL = 22;
const LO_IFINDEX = 1;
const TC_ACT_UNSPEC = 0xffffffff; // -1 as the u32 retval
const XDP_PASS = 2;

// ---- Sizes of the run.

const SEED = Number(process.env.KNP_FUZZ_SEED ?? 0x4b4e5031) >>> 0;
const SCALE = Number(process.env.KNP_FUZZ_SCALE ?? 1);
const TC_FRAMES = Math.round(500_000 * SCALE);
const XDP_FRAMES = Math.round(200_000 * SCALE);
/** Counters are read every CHUNK frames, so a disagreement can be narrowed down. */
const CHUNK = 4096;
/** Test-run buffer, and the longest frame generated (longer ones are cut). */
const RUNNER_CAPACITY = 16384;

type Target = 'tc' | 'xdp';

function etherTypeOf(frame: Uint8Array): number {
  return frame.length >= ETH_HLEN ? (frame[12]! << 8) | frame[13]! : -1;
}

/**
 * skb test runs also refuse (-EINVAL) a frame whose EtherType is IPv4 or
 * IPv6 but which is too short for that header (found on 6.18; VLAN-tagged
 * frames are not looked into). So TC never sees an untagged IP frame cut
 * inside the IP header here; XDP and VLAN-tagged frames cover that path.
 */
function skbMinL3(etherType: number): number {
  return etherType === 0x0800 ? 20 : etherType === 0x86dd ? 40 : 0;
}

interface TargetSpec {
  target: Target;
  prog: 'tc_ingress' | 'xdp_ingress';
  hook: InterfaceCounters['hook'];
  frames: number;
  stream: number;
  retval: number;
  /** What data_end covers for a frame of `len` bytes. */
  linear: (len: number) => number;
  /** Whether BPF_PROG_TEST_RUN runs the program on this frame at all. */
  accepts: (frame: Uint8Array) => boolean;
}

const TC: TargetSpec = {
  target: 'tc',
  prog: 'tc_ingress',
  hook: 'tc-ingress',
  frames: TC_FRAMES,
  stream: 0x7463,
  retval: TC_ACT_UNSPEC,
  linear: (len) => len,
  accepts: (frame) => frame.length >= ETH_HLEN && frame.length <= TC_MAX_FRAME && frame.length >= ETH_HLEN + skbMinL3(etherTypeOf(frame)),
};

const XDP: TargetSpec = {
  target: 'xdp',
  prog: 'xdp_ingress',
  hook: 'xdp',
  frames: XDP_FRAMES,
  stream: 0x786470,
  retval: XDP_PASS,
  linear: (len) => Math.min(len, XDP_LINEAR),
  accepts: (frame) => frame.length >= ETH_HLEN,
};

// ---- Deterministic randomness: mulberry32, one stream per frame.

class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** mulberry32 */
  u32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
  }

  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  /** Picks by weight: [[weight, value], ...]. */
  weighted<T>(xs: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [w] of xs) total += w;
    let r = this.int(total);
    for (const [w, v] of xs) {
      if (r < w) return v;
      r -= w;
    }
    return xs[xs.length - 1]![1];
  }

  fill(b: Uint8Array, from = 0, to = b.length): void {
    for (let i = from; i < to; i += 4) {
      const x = this.u32();
      b[i] = x & 0xff;
      if (i + 1 < to) b[i + 1] = (x >>> 8) & 0xff;
      if (i + 2 < to) b[i + 2] = (x >>> 16) & 0xff;
      if (i + 3 < to) b[i + 3] = x >>> 24;
    }
  }
}

/** A 32-bit seed for frame `i` of a stream (murmur3's finalizer over both). */
function frameSeed(stream: number, i: number): number {
  let h = (SEED ^ Math.imul(stream, 0x27d4eb2d) ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

// ---- Frame generation.

/** A growable byte buffer to build frames in. */
class FrameWriter {
  private buf = new Uint8Array(256);
  len = 0;

  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.len++] = v & 0xff;
  }

  u16(v: number): void {
    this.u8(v >>> 8);
    this.u8(v);
  }

  bytes(b: readonly number[] | Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  random(rng: Rng, n: number): void {
    this.room(n);
    rng.fill(this.buf, this.len, this.len + n);
    this.len += n;
  }

  set8(off: number, v: number): void {
    this.buf[off] = v & 0xff;
  }

  set16(off: number, v: number): void {
    this.buf[off] = (v >>> 8) & 0xff;
    this.buf[off + 1] = v & 0xff;
  }

  done(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

interface Template {
  bytes: Uint8Array;
  /** Offsets of EtherType / VLAN encapsulated-protocol fields. */
  etherTypes: number[];
  l3: number;
  l3Kind: 'ipv4' | 'ipv6' | 'other';
  /** Offset of the L4 header, -1 if none was written. */
  l4: number;
  l4Proto: number;
  /** Offsets of the IPv6 extension headers, and their kinds. */
  ext: { off: number; kind: number }[];
}

const V4_POOL = [
  [10, 0, 0, 1],
  [10, 0, 0, 2],
  [192, 168, 1, 10],
  [198, 18, 0, 1],
  [0, 0, 0, 0],
  [255, 255, 255, 255],
];
const hex16 = (s: string): number[] => Array.from(Buffer.from(s, 'hex'));
const V6_POOL = [
  hex16('00000000000000000000000000000001'), // ::1
  hex16('00000000000000000000000000000000'), // ::
  hex16('fe800000000000000000000000000001'), // fe80::1
  hex16('20010db8000000000000000000000001'), // 2001:db8::1
  hex16('fd00000000000000000a000000000001'), // fd00::a:0:0:1 (first of two equal runs)
  hex16('00010000000100000000000000000001'), // 1:0:1::1
  hex16('20010db8000000000001000000000001'), // 2001:db8::1:0:0:1 (longer run wins)
  hex16('00000000000000000000ffff0a000001'), // ::ffff:a00:1, mapped form in an IPv6 header
  hex16('20010db8000100020003000400050006'), // no zero run
  hex16('20010db8000000010001000100010001'), // a single zero group stays
];
const PORT_POOL = [0, 53, 80, 443, 8080, 40000, 65535];
const IPV4_PROTOS: readonly (readonly [number, number])[] = [
  [30, 6],
  [30, 17],
  [15, 1],
  [3, 58],
  [2, 47],
  [2, 50],
  [2, 132],
  [1, 0],
  [1, 41],
  [1, 255],
  [3, -1], // random
];
const IPV6_TERMINALS: readonly (readonly [number, number])[] = [
  [30, 6],
  [30, 17],
  [15, 58],
  [3, 1],
  [4, 59],
  [2, 47],
  [2, 132],
  [3, -1],
];
const EXT_KINDS = [0, 43, 60, 44, 51] as const;
const ICMP_TYPES = [0, 8, 0, 8, 3, 11, 5, 13, 14];
const ICMP6_TYPES = [128, 129, 128, 129, 1, 2, 3, 4, 133, 134, 135, 136];

function address(rng: Rng, v6: boolean, w: FrameWriter): void {
  if (rng.chance(0.6)) w.bytes(rng.pick(v6 ? V6_POOL : V4_POOL));
  else w.random(rng, v6 ? 16 : 4);
}

function port(rng: Rng): number {
  return rng.chance(0.6) ? rng.pick(PORT_POOL) : rng.int(65536);
}

/** An L4 header for `proto` (nothing for protocols without one here). */
function writeL4(rng: Rng, w: FrameWriter, proto: number): void {
  switch (proto) {
    case 6: {
      const doff = rng.chance(0.3) ? rng.range(6, 15) : 5;
      w.u16(port(rng));
      w.u16(port(rng));
      w.random(rng, 8); // seq, ack
      w.u8((doff << 4) | rng.int(16));
      w.u8(rng.int(256)); // flags
      w.random(rng, 6); // window, checksum, urgent pointer
      w.random(rng, (doff - 5) * 4);
      break;
    }
    case 17:
      w.u16(port(rng));
      w.u16(port(rng));
      w.random(rng, 4); // length, checksum: the parser reads neither
      break;
    case 1:
    case 58: {
      w.u8(rng.chance(0.85) ? rng.pick(proto === 1 ? ICMP_TYPES : ICMP6_TYPES) : rng.int(256));
      w.u8(rng.chance(0.7) ? 0 : rng.int(256));
      w.random(rng, 2);
      w.u16(rng.chance(0.5) ? rng.pick([1, 0x1234, 0xffff]) : rng.int(65536)); // echo id
      w.random(rng, 2);
      break;
    }
    default:
      break;
  }
}

function l3Proto(rng: Rng, table: readonly (readonly [number, number])[]): number {
  const p = rng.weighted(table);
  return p < 0 ? rng.int(256) : p;
}

/** A frame built field by field: Ethernet, 0-3 VLAN tags, IPv4 (options, fragments) / IPv6 (0-7 extension headers) / ARP / other, L4, payload, maybe a trailer. Length fields are consistent. */
function template(rng: Rng, payloadLen?: number): Template {
  const w = new FrameWriter();
  const t: Template = { bytes: new Uint8Array(0), etherTypes: [], l3: -1, l3Kind: 'other', l4: -1, l4Proto: -1, ext: [] };
  w.random(rng, 12); // MAC addresses
  const tags = rng.weighted([
    [60, 0],
    [20, 1],
    [15, 2],
    [5, 3],
  ] as const);
  const kind = rng.weighted([
    [42, 'ipv4'],
    [42, 'ipv6'],
    [8, 'arp'],
    [8, 'other'],
  ] as const);
  for (let i = 0; i < tags; i++) {
    t.etherTypes.push(w.len);
    w.u16(i === 0 && tags > 1 && rng.chance(0.7) ? 0x88a8 : rng.chance(0.8) ? 0x8100 : 0x88a8);
    w.u16(rng.int(65536)); // TCI
  }
  t.etherTypes.push(w.len);
  const etherType = kind === 'ipv4' ? 0x0800 : kind === 'ipv6' ? 0x86dd : kind === 'arp' ? 0x0806 : rng.pick([0x88cc, 0x8847, 0x0042, 0x05dc, 0x88e5, rng.int(65536)]);
  w.u16(etherType);
  t.l3 = w.len;
  const payload = payloadLen ?? (rng.chance(0.3) ? 0 : rng.range(0, 256));

  if (kind === 'ipv4') {
    t.l3Kind = 'ipv4';
    const ihl = rng.chance(0.2) ? rng.range(6, 15) : 5;
    const proto = l3Proto(rng, IPV4_PROTOS);
    const frag = rng.weighted([
      [70, () => (rng.chance(0.5) ? 0x4000 : 0)],
      [15, () => 0x2000], // first fragment: MF, offset 0
      [15, () => (rng.chance(0.5) ? 0x2000 : 0) | rng.range(1, 0x1fff)], // later fragment
    ] as const)();
    w.u8(0x40 | ihl);
    w.u8(rng.int(256)); // TOS
    const totOff = w.len;
    w.u16(0);
    w.random(rng, 2); // id
    w.u16(frag);
    w.u8(rng.int(256)); // TTL
    w.u8(proto);
    w.random(rng, 2); // checksum
    address(rng, false, w);
    address(rng, false, w);
    w.random(rng, (ihl - 5) * 4); // options
    if ((frag & 0x1fff) === 0) {
      t.l4 = w.len;
      t.l4Proto = proto;
      writeL4(rng, w, proto);
    }
    w.random(rng, payload);
    w.set16(totOff, w.len - t.l3);
  } else if (kind === 'ipv6') {
    t.l3Kind = 'ipv6';
    w.u8(0x60 | rng.int(16));
    w.random(rng, 3); // traffic class, flow label
    const plOff = w.len;
    w.u16(0);
    let nhOff = w.len;
    w.u8(0);
    w.u8(rng.int(256)); // hop limit
    address(rng, true, w);
    address(rng, true, w);
    const nExt = rng.weighted([
      [55, 0],
      [15, 1],
      [10, 2],
      [6, 3],
      [4, 4],
      [4, 5],
      [3, 6],
      [3, 7],
    ] as const);
    let l4 = true;
    for (let i = 0; i < nExt && l4; i++) {
      const ext = rng.pick(EXT_KINDS);
      w.set8(nhOff, ext);
      nhOff = w.len;
      t.ext.push({ off: w.len, kind: ext });
      if (ext === 44) {
        const later = rng.chance(0.4);
        w.u8(0);
        w.u8(rng.chance(0.8) ? 0 : rng.int(256));
        w.u16(later ? (rng.range(1, 0x1fff) << 3) | rng.int(8) : rng.int(8)); // offset, res, M
        w.random(rng, 4);
        if (later) l4 = false;
      } else if (ext === 51) {
        const h = rng.chance(0.9) ? rng.range(1, 6) : rng.int(256);
        w.u8(0);
        w.u8(h);
        w.random(rng, (h + 2) * 4 - 2);
      } else {
        const h = rng.chance(0.9) ? rng.range(0, 3) : rng.int(256);
        w.u8(0);
        w.u8(h);
        w.random(rng, (h + 1) * 8 - 2);
      }
    }
    const proto = l3Proto(rng, IPV6_TERMINALS);
    w.set8(nhOff, proto);
    if (l4) {
      t.l4 = w.len;
      t.l4Proto = proto;
      writeL4(rng, w, proto);
    }
    w.random(rng, payload);
    w.set16(plOff, (w.len - t.l3 - 40) & 0xffff);
  } else if (kind === 'arp') {
    w.bytes([0, 1, 8, 0, 6, 4, 0, rng.range(1, 2)]);
    w.random(rng, 20);
  } else {
    w.random(rng, rng.range(0, 100) + payload);
  }

  // Ethernet padding to 60 bytes, or some trailer after the IP packet.
  if (w.len < 60 && rng.chance(0.3)) w.bytes(new Uint8Array(60 - w.len));
  else if (rng.chance(0.15)) w.random(rng, rng.range(1, 64));
  t.bytes = w.done();
  return t;
}

/** Random bytes, sometimes behind an IP EtherType and version nibble. */
function garbage(rng: Rng): Uint8Array {
  const len = rng.weighted([
    [40, () => rng.range(0, 64)],
    [40, () => rng.range(0, 600)],
    [20, () => rng.range(0, 1600)],
  ] as const)();
  const b = new Uint8Array(len);
  rng.fill(b);
  if (len >= 15 && rng.chance(0.3)) {
    const et = rng.pick([0x0800, 0x86dd, 0x8100, 0x88a8]);
    b[12] = et >> 8;
    b[13] = et & 0xff;
    if (rng.chance(0.5)) b[14] = (rng.pick([4, 6]) << 4) | (b[14]! & 0x0f);
  }
  return b;
}

function nibbleHi(b: Uint8Array, off: number, v: number): void {
  if (off < b.length) b[off] = ((v & 0x0f) << 4) | (b[off]! & 0x0f);
}

function nibbleLo(b: Uint8Array, off: number, v: number): void {
  if (off < b.length) b[off] = (b[off]! & 0xf0) | (v & 0x0f);
}

function put8(b: Uint8Array, off: number, v: number): void {
  if (off >= 0 && off < b.length) b[off] = v & 0xff;
}

function put16(b: Uint8Array, off: number, v: number): void {
  put8(b, off, v >>> 8);
  put8(b, off + 1, v);
}

function get16(b: Uint8Array, off: number): number {
  return ((b[off] ?? 0) << 8) | (b[off + 1] ?? 0);
}

/** A length-ish value near `cur`, or anything. */
function lengthNear(rng: Rng, cur: number): number {
  return rng.weighted([
    [3, () => rng.int(65536)],
    [4, () => (cur + rng.range(-40, 40)) & 0xffff],
    [1, () => 0],
    [1, () => 0xffff],
  ] as const)();
}

/** One to three mutations of a template: byte flips, truncation, field corruption, trailers. */
function mutate(rng: Rng, t: Template): Uint8Array {
  let b: Uint8Array = t.bytes.slice();
  const n = rng.range(1, 3);
  for (let k = 0; k < n; k++) {
    const op = rng.weighted([
      [25, 'flip'],
      [20, 'truncate'],
      [45, 'field'],
      [10, 'extend'],
    ] as const);
    if (op === 'flip') {
      for (let j = rng.range(1, 8); j > 0 && b.length; j--) {
        const at = rng.int(b.length);
        b[at] = rng.chance(0.5) ? rng.int(256) : b[at]! ^ (1 << rng.int(8));
      }
    } else if (op === 'truncate') {
      b = b.subarray(0, rng.range(0, b.length));
    } else if (op === 'extend') {
      const more = new Uint8Array(b.length + rng.range(1, 100));
      rng.fill(more);
      more.set(b);
      b = more;
    } else {
      const l3 = t.l3;
      const fields: (() => void)[] = [() => put16(b, rng.pick(t.etherTypes), rng.pick([0x0800, 0x86dd, 0x8100, 0x88a8, 0x0806, rng.int(65536)]))];
      if (t.l3Kind === 'ipv4') {
        fields.push(
          () => put16(b, l3 + 2, lengthNear(rng, get16(b, l3 + 2))), // tot_len
          () => nibbleLo(b, l3, rng.int(16)), // IHL
          () => nibbleHi(b, l3, rng.int(16)), // version
          () => put16(b, l3 + 6, rng.chance(0.5) ? rng.int(65536) : rng.pick([0, 0x2000, 0x4000, 0x0001, 0x1fff])), // frag_off
          () => put8(b, l3 + 9, rng.chance(0.5) ? rng.int(256) : rng.pick([1, 6, 17, 58])), // protocol
        );
      }
      if (t.l3Kind === 'ipv6') {
        fields.push(
          () => nibbleHi(b, l3, rng.int(16)), // version
          () => put16(b, l3 + 4, lengthNear(rng, get16(b, l3 + 4))), // payload_len
          () => put8(b, l3 + 6, rng.pick([0, 43, 44, 51, 59, 60, 6, 17, 58, rng.int(256)])), // next header
        );
        for (const e of t.ext) {
          fields.push(
            () => put8(b, e.off, rng.pick([0, 43, 44, 51, 59, 60, 6, 17, 58, 1, rng.int(256)])), // next header
            () => put8(b, e.off + 1, rng.int(256)), // hdrlen / frag reserved
          );
          if (e.kind === 44) fields.push(() => put16(b, e.off + 2, rng.int(65536))); // frag offset
        }
      }
      if (t.l4 >= 0 && t.l4Proto === 6) fields.push(() => nibbleHi(b, t.l4 + 12, rng.int(16))); // doff
      if (t.l4 >= 0 && (t.l4Proto === 1 || t.l4Proto === 58)) fields.push(() => put8(b, t.l4, rng.pick([0, 8, 128, 129, rng.int(256)])));
      rng.pick(fields)();
    }
  }
  return b;
}

/**
 * Writes IPv6 option headers into `frame` so that the chain starting at
 * `cur` (whose next-header byte is at `nhOff`) reaches `to`: an AH of 12 bytes
 * if a 4-byte remainder needs one, then option headers of at most 2048 bytes.
 * `to - cur` must be a multiple of 4 and not 4. Returns where the last
 * next-header byte is and how many headers were written.
 */
function chainTo(rng: Rng, frame: Uint8Array, nhOff: number, cur: number, to: number): { nhOff: number; count: number } {
  let count = 0;
  if ((to - cur) % 8 === 4) {
    put8(frame, nhOff, 51);
    put8(frame, cur + 1, 1); // (1 + 2) * 4 = 12 bytes
    nhOff = cur;
    cur += 12;
    count++;
  }
  while (to - cur >= 8) {
    const size = Math.min(2048, to - cur);
    put8(frame, nhOff, rng.pick([0, 43, 60]));
    put8(frame, cur + 1, size / 8 - 1);
    nhOff = cur;
    cur += size;
    count++;
  }
  assert.equal(cur, to, 'chainTo reaches its target');
  return { nhOff, count };
}

/**
 * IPv6 with a chain of large extension headers whose last one lands near
 * the end of the frame or (XDP) of the linear part, so the bounds checks
 * are hit from both sides; long chains also cross the six-header limit.
 */
function extChain(rng: Rng, spec: TargetSpec): Uint8Array {
  const total = spec.target === 'tc' ? rng.range(200, TC_MAX_FRAME) : rng.range(1600, 9000);
  const frame = new Uint8Array(total);
  rng.fill(frame);
  let at = 12;
  if (rng.chance(0.3)) {
    put16(frame, at, 0x8100);
    at += 4;
  }
  put16(frame, at, 0x86dd);
  const l3 = at + 2;
  frame[l3] = 0x60 | (frame[l3]! & 0x0f);
  put16(frame, l3 + 4, rng.chance(0.8) ? (total - l3 - 40) & 0xffff : rng.int(65536));
  const edge = rng.chance(0.5) ? spec.linear(total) : total;
  const first = l3 + 40;
  // The start of the final header: within 24 bytes of the edge, 4-aligned with `first`.
  let landing = first + (Math.max(0, edge + rng.range(-24, 24) - first) & ~3);
  if (landing - first === 4) landing += 8;
  const { nhOff } = chainTo(rng, frame, l3 + 6, first, landing);
  const last = rng.pick([17, 6, 58, 59, 60, 0, 44]);
  put8(frame, nhOff, last);
  if (last === 60 || last === 0) put8(frame, landing, rng.pick([59, 17]));
  if (last === 44) put16(frame, landing + 2, rng.chance(0.5) ? 0 : 0x0100);
  if (last === 6) nibbleHi(frame, landing + 12, rng.range(4, 15));
  return frame;
}

/** Frame `i` of a target's run. */
function generate(spec: TargetSpec, i: number): Uint8Array {
  const frame = generateUncut(spec, i);
  // A template with several huge extension headers can outgrow the buffer.
  return frame.length > RUNNER_CAPACITY ? frame.subarray(0, RUNNER_CAPACITY) : frame;
}

function generateUncut(spec: TargetSpec, i: number): Uint8Array {
  const rng = new Rng(frameSeed(spec.stream, i));
  const kind = rng.weighted([
    [20, 'garbage'],
    [25, 'template'],
    [40, 'mutated'],
    [10, 'oversize'],
    [5, 'extChain'],
  ] as const);
  switch (kind) {
    case 'garbage':
      return garbage(rng);
    case 'template':
      return template(rng).bytes;
    case 'mutated':
      return mutate(rng, template(rng));
    case 'oversize': {
      // 1600 bytes up to past the TC limit, or a jumbo frame for XDP.
      const len = spec.target === 'tc' ? rng.range(1600, TC_MAX_FRAME + 500) : rng.range(1600, 9000);
      const t = template(rng, len);
      return rng.chance(0.3) ? mutate(rng, t) : t.bytes;
    }
    case 'extChain':
      return extChain(rng, spec);
  }
}

// ---- Reading the kernel's counters.

type Tally = Record<RefOutcome, { packets: number; bytes: number }>;

function emptyTally(): Tally {
  return { parsed: { packets: 0, bytes: 0 }, nonIp: { packets: 0, bytes: 0 }, truncated: { packets: 0, bytes: 0 }, malformed: { packets: 0, bytes: 0 } };
}

function tallyDiff(a: Tally, b: Tally): Tally {
  const d = emptyTally();
  for (const o of REF_OUTCOMES) d[o] = { packets: a[o].packets - b[o].packets, bytes: a[o].bytes - b[o].bytes };
  return d;
}

function tallyEqual(a: Tally, b: Tally): boolean {
  return REF_OUTCOMES.every((o) => a[o].packets === b[o].packets && a[o].bytes === b[o].bytes);
}

function tallyText(t: Tally): string {
  return REF_OUTCOMES.map((o) => `${o} ${t[o].packets} (${t[o].bytes} B)`).join(', ');
}

/** The counters of (lo, hook); all entries are checked to be on lo and this hook. */
function kernelTally(mon: NetworkMonitor, spec: TargetSpec): Tally {
  const t = emptyTally();
  for (const c of mon.getPacketStats().interfaces) {
    assert.equal(c.ifindex, LO_IFINDEX, `test-run frames are counted on ifindex ${c.ifindex}, expected lo (${LO_IFINDEX})`);
    assert.equal(c.hook, spec.hook, `a ${spec.prog} run counted frames under hook ${c.hook}`);
    for (const o of REF_OUTCOMES) {
      t[o].packets += c.packets[o];
      t[o].bytes += c.bytes[o];
    }
    assert.equal(c.packets.total, REF_OUTCOMES.reduce((s, o) => s + c.packets[o], 0), 'packet total is the sum of the outcomes');
  }
  return t;
}

interface FlowCount {
  packets: number;
  bytes: number;
  key?: FlowStats['key'];
}

function kernelFlows(mon: NetworkMonitor): Map<string, FlowCount> {
  const out = new Map<string, FlowCount>();
  for (const f of mon.getFlowStats()) {
    const k = keyString(f.key);
    assert.ok(!out.has(k), `flow ${k} listed twice`);
    assert.equal(f.key.ifindex, LO_IFINDEX, `flow ${k} on ifindex ${f.key.ifindex}`);
    assert.equal(f.key.direction, 'ingress', `flow ${k} has direction ${f.key.direction}`);
    out.set(k, { packets: f.packets, bytes: f.bytes, key: f.key });
  }
  return out;
}

// ---- Running frames.

/**
 * Checks a test run's result: frames the kernel refuses must get -EINVAL,
 * every other frame must run (rc 0) and pass. Returns whether the program ran.
 */
function checkRun(spec: TargetSpec, frame: Uint8Array, r: TestRunResult, what: string): boolean {
  const context = (): string => `${what}: ${frame.length} bytes, rc ${r.rc}, retval ${r.retval}\n${hexDump(frame, 96)}`;
  if (!spec.accepts(frame)) {
    if (r.rc !== -EINVAL) assert.fail(`the kernel should refuse a ${frame.length}-byte frame for ${spec.prog}: ${context()}`);
    return false;
  }
  if (r.rc !== 0) assert.fail(`unexpected test_run result: ${context()}`);
  if (r.retval !== spec.retval) assert.fail(`${spec.prog} must pass every frame (retval ${spec.retval}): ${context()}`);
  return true;
}

interface Disagreement {
  index: number;
  text: string;
}

/**
 * Re-runs frames one at a time on a fresh monitor, reading the counters and
 * flows after each, and describes those where kernel and reference differ.
 */
async function diagnose(spec: TargetSpec, indices: Iterable<number>, limit = 5, budget = 6000): Promise<Disagreement[]> {
  const mon = await NetworkMonitor.create({ packetSampleRate: 0, detectTcpFlagAnomalies: false, flowTableCapacity: 8192 });
  const runner = new TestRunner(mon.programFd(spec.prog), RUNNER_CAPACITY);
  const found: Disagreement[] = [];
  try {
    let tried = 0;
    let before = kernelTally(mon, spec);
    let flowsBefore = kernelFlows(mon);
    for (const i of indices) {
      if (found.length >= limit || tried++ >= budget) break;
      const frame = generate(spec, i);
      if (!checkRun(spec, frame, runner.run(frame), `frame ${i}`)) continue;
      const ref = classifyFrame(frame, spec.linear(frame.length));
      const after = kernelTally(mon, spec);
      const delta = tallyDiff(after, before);
      const kernelOutcomes = REF_OUTCOMES.filter((o) => delta[o].packets !== 0).map((o) => `${o} x${delta[o].packets} (${delta[o].bytes} B)`);
      const problems: string[] = [];
      if (kernelOutcomes.length !== 1 || delta[ref.outcome].packets !== 1 || delta[ref.outcome].bytes !== frame.length) {
        problems.push(`kernel counted [${kernelOutcomes.join(', ')}], reference says ${ref.outcome} (${frame.length} B)`);
      }
      let flowsAfter = flowsBefore;
      if (spec.target === 'tc') {
        flowsAfter = kernelFlows(mon);
        const grew: string[] = [];
        for (const [k, v] of flowsAfter) {
          const was = flowsBefore.get(k) ?? { packets: 0, bytes: 0 };
          if (v.packets !== was.packets || v.bytes !== was.bytes) grew.push(`${k}: +${v.packets - was.packets} pkt +${v.bytes - was.bytes} B`);
        }
        const want = ref.key ? [`${keyString(ref.key)}: +1 pkt +${ref.ipLen} B`] : [];
        if (grew.join('|') !== want.join('|')) problems.push(`kernel flow change [${grew.join('; ')}], reference [${want.join('; ')}]`);
      }
      if (problems.length) found.push({ index: i, text: `frame ${i} (${frame.length} B, linear ${spec.linear(frame.length)}): ${problems.join('; ')}\n${hexDump(frame)}` });
      before = after;
      flowsBefore = flowsAfter;
    }
  } finally {
    runner.close();
    await mon.close();
  }
  return found;
}

function report(found: Disagreement[]): string {
  return found.length ? `\nFrames where kernel and reference disagree (re-run one at a time):\n${found.map((f) => f.text).join('\n')}` : '\n(re-running the suspects one at a time found no single frame that disagrees)';
}

/** The bytes of an address as the library prints it (dotted quad, or IPv6 with "::"). */
function addressBytes(text: string): Uint8Array {
  if (text.includes('.')) return new Uint8Array(text.split('.').map(Number));
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (s: string | undefined): number[] => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = new Uint8Array(16);
  all.forEach((g, i) => put16(out, i * 2, g));
  return out;
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  return Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength).indexOf(Buffer.from(needle));
}

/**
 * Suspects for flow-table differences: frames the reference puts in one of
 * `refKeys`, and frames that contain both addresses of one of `kernelKeys`.
 */
function flowSuspects(spec: TargetSpec, refKeys: Set<string>, kernelKeys: FlowStats['key'][], limit: number): number[] {
  const addrs = kernelKeys.map((k) => [addressBytes(k.srcIp), addressBytes(k.dstIp)] as const);
  const out: number[] = [];
  for (let i = 0; i < spec.frames && out.length < limit; i++) {
    const frame = generate(spec, i);
    if (!spec.accepts(frame)) continue;
    const ref = classifyFrame(frame, spec.linear(frame.length));
    if ((ref.key && refKeys.has(keyString(ref.key))) || addrs.some(([s, d]) => indexOfBytes(frame, s) >= 0 && indexOfBytes(frame, d) >= 0)) out.push(i);
  }
  return out;
}

interface RunSummary {
  generated: number;
  fed: number;
  refused: number;
  tally: Tally;
  flows: number;
  ms: number;
}

async function fuzz(spec: TargetSpec): Promise<RunSummary> {
  const started = performance.now();
  const mon = await NetworkMonitor.create({
    packetSampleRate: 0,
    detectTcpFlagAnomalies: false,
    // About a third of the frames make a new flow; the table must never fill
    // (asserted below through insertFailed).
    flowTableCapacity: Math.ceil(spec.frames * 0.6) + 1024,
  });
  const runner = new TestRunner(mon.programFd(spec.prog), RUNNER_CAPACITY);
  try {
    const refTotal = emptyTally();
    const refFlows = new Map<string, FlowCount>();
    const badChunks: { chunk: number; ref: Tally; kernel: Tally }[] = [];
    let chunkRef = emptyTally();
    let kernelBefore = kernelTally(mon, spec);
    assert.ok(REF_OUTCOMES.every((o) => kernelBefore[o].packets === 0), 'a fresh monitor has counted nothing');
    let fed = 0;
    let refused = 0;

    for (let i = 0; i < spec.frames; i++) {
      const frame = generate(spec, i);
      const r = runner.run(frame);
      if (!checkRun(spec, frame, r, `frame ${i}`)) {
        refused++;
      } else {
        fed++;
        const ref: RefResult = classifyFrame(frame, spec.linear(frame.length));
        chunkRef[ref.outcome].packets++;
        chunkRef[ref.outcome].bytes += frame.length;
        if (ref.key) {
          const k = keyString(ref.key);
          const f = refFlows.get(k);
          if (f) {
            f.packets++;
            f.bytes += ref.ipLen;
          } else refFlows.set(k, { packets: 1, bytes: ref.ipLen });
        }
      }
      if ((i + 1) % CHUNK === 0 || i + 1 === spec.frames) {
        const kernelNow = kernelTally(mon, spec);
        const kernelChunk = tallyDiff(kernelNow, kernelBefore);
        if (!tallyEqual(kernelChunk, chunkRef)) badChunks.push({ chunk: Math.floor(i / CHUNK), ref: chunkRef, kernel: kernelChunk });
        for (const o of REF_OUTCOMES) {
          refTotal[o].packets += chunkRef[o].packets;
          refTotal[o].bytes += chunkRef[o].bytes;
        }
        kernelBefore = kernelNow;
        chunkRef = emptyTally();
      }
    }

    const kernelTotal = kernelTally(mon, spec);
    const stats = mon.getPacketStats();
    const kFlows = kernelFlows(mon);
    const ms = performance.now() - started;

    // Outcome counters: per chunk, then in total.
    if (badChunks.length) {
      const first = badChunks.slice(0, 2);
      const suspects = first.flatMap((c) => Array.from({ length: Math.min(CHUNK, spec.frames - c.chunk * CHUNK) }, (_, j) => c.chunk * CHUNK + j));
      const found = await diagnose(spec, suspects);
      assert.fail(
        `${spec.prog}: outcome counters differ from the reference in ${badChunks.length} of ${Math.ceil(spec.frames / CHUNK)} chunks of ${CHUNK} frames.\n` +
          first.map((c) => `chunk ${c.chunk}: kernel ${tallyText(c.kernel)}\n          reference ${tallyText(c.ref)}`).join('\n') +
          report(found),
      );
    }
    assert.deepEqual(kernelTotal, refTotal, `${spec.prog}: outcome totals`);
    const packets = REF_OUTCOMES.reduce((s, o) => s + kernelTotal[o].packets, 0);
    assert.equal(packets, fed, `${spec.prog}: outcomes add up to the ${fed} frames fed`);
    assert.equal(spec.target === 'tc' ? stats.ingress.packets.total : stats.xdp.packets.total, fed, 'hook totals count every frame fed once');
    assert.equal(stats.interfaceTableFull, 0, 'no frame missed the per-interface counters');

    // Flows: exactly the reference's (TC), none at all (XDP).
    if (spec.target === 'xdp') {
      assert.equal(kFlows.size, 0, `xdp_ingress keeps no flows, found ${kFlows.size}: ${[...kFlows.keys()].slice(0, 3).join('; ')}`);
      assert.equal(stats.flowTable.entries, 0, 'xdp_ingress inserted no flows');
    } else {
      assert.equal(stats.flowTable.insertFailed, 0, 'the flow table never filled');
      const onlyKernel: string[] = [];
      const onlyRef: string[] = [];
      const differ: string[] = [];
      const suspectRefKeys = new Set<string>();
      const suspectKernelKeys: FlowStats['key'][] = [];
      for (const [k, v] of kFlows) {
        const r = refFlows.get(k);
        if (!r) {
          onlyKernel.push(`${k} (${v.packets} pkt, ${v.bytes} B)`);
          if (v.key && suspectKernelKeys.length < 5) suspectKernelKeys.push(v.key);
        } else if (r.packets !== v.packets || r.bytes !== v.bytes) {
          differ.push(`${k}: kernel ${v.packets} pkt ${v.bytes} B, reference ${r.packets} pkt ${r.bytes} B`);
          if (suspectRefKeys.size < 10) suspectRefKeys.add(k);
        }
      }
      for (const [k, r] of refFlows) {
        if (kFlows.has(k)) continue;
        onlyRef.push(`${k} (${r.packets} pkt, ${r.bytes} B)`);
        if (suspectRefKeys.size < 10) suspectRefKeys.add(k);
      }
      if (onlyKernel.length || onlyRef.length || differ.length) {
        const found = await diagnose(spec, flowSuspects(spec, suspectRefKeys, suspectKernelKeys, 60));
        assert.fail(
          `tc_ingress: flow table differs from the reference (${kFlows.size} kernel flows, ${refFlows.size} reference flows)\n` +
            `only in the kernel (${onlyKernel.length}): ${onlyKernel.slice(0, 5).join('; ')}\n` +
            `only in the reference (${onlyRef.length}): ${onlyRef.slice(0, 5).join('; ')}\n` +
            `different counts (${differ.length}): ${differ.slice(0, 5).join('; ')}` +
            report(found),
        );
      }
      let flowPackets = 0;
      for (const v of kFlows.values()) flowPackets += v.packets;
      assert.equal(flowPackets, kernelTotal.parsed.packets, 'every parsed frame, and only those, is in a flow');
      assert.equal(stats.flowTable.entries, kFlows.size, 'flow inserts counted');
    }

    return { generated: spec.frames, fed, refused, tally: kernelTotal, flows: kFlows.size, ms };
  } finally {
    runner.close();
    await mon.close();
  }
}

function summarize(spec: TargetSpec, s: RunSummary): void {
  console.log(
    `fuzz ${spec.prog}: ${s.generated} frames, ${s.fed} fed, ${s.refused} refused (rc -22); ` +
      `${tallyText(s.tally)}; ${s.flows} flows; ${(s.ms / 1000).toFixed(1)} s`,
  );
}

/** Every outcome must be well represented, or the fuzz is not exercising the parser. */
function assertCoverage(spec: TargetSpec, s: RunSummary): void {
  for (const o of REF_OUTCOMES) {
    assert.ok(s.tally[o].packets >= s.fed * 0.03, `${spec.prog}: only ${s.tally[o].packets} of ${s.fed} frames were ${o}: the generator needs rebalancing`);
  }
}

// ---- The tests.

test('reference parser: hand-checked frames', () => {
  const eth = (type: string): string => `020000000001020000000002${type}`;
  const parse = (hex: string, linear?: number): RefResult => {
    const b = Buffer.from(hex.replace(/\s+/g, ''), 'hex');
    return classifyFrame(new Uint8Array(b), linear);
  };
  // IPv4/UDP 10.0.0.1:1234 -> 10.0.0.2:53, 4 payload bytes, 2 trailer bytes.
  const udp4 = eth('0800') + '45000020 0000 0000 4011 0000 0a000001 0a000002' + '04d20035 000c0000' + 'deadbeef' + '0000';
  assert.deepEqual(parse(udp4), {
    outcome: 'parsed',
    ipLen: 32,
    key: { family: 'ipv4', srcIp: '10.0.0.1', dstIp: '10.0.0.2', srcPort: 1234, dstPort: 53, protocolNumber: 17 },
  });
  // tot_len one past the frame: truncated; tot_len below the header: malformed; IHL 4: malformed.
  assert.equal(parse(udp4.replace('45000020', '45000023')).outcome, 'truncated');
  assert.equal(parse(udp4.replace('45000020', '45000013')).outcome, 'malformed');
  assert.equal(parse(udp4.replace('45000020', '44000020')).outcome, 'malformed');
  // A later fragment: proto kept, no ports, even though "ports" are there.
  assert.deepEqual(parse(udp4.replace('0000 4011', '0001 4011')).key, { family: 'ipv4', srcIp: '10.0.0.1', dstIp: '10.0.0.2', srcPort: 0, dstPort: 0, protocolNumber: 17 });
  // TCP with doff 4: malformed; cut inside the TCP header: truncated.
  const tcp4 = eth('0800') + '45000028 0000 0000 4006 0000 c0a8010a 0a000001' + '1f900050 00000000 00000000 5012ffff 00000000';
  assert.equal(parse(tcp4).key?.dstPort, 80);
  assert.equal(parse(tcp4.replace('5012ffff', '4012ffff')).outcome, 'malformed');
  assert.equal(parse(tcp4.slice(0, -8).replace('45000028', '45000024')).outcome, 'truncated');
  // ICMP echo request id 0x1234 behind QinQ: sport = id, dport = 8 << 8.
  const icmp4 = '020000000001020000000002 88a8 0064 8100 00c8 0800' + '4500001c 0000 0000 4001 0000 0a000001 0a000002' + '08000000 12340001';
  assert.deepEqual(parse(icmp4).key, { family: 'ipv4', srcIp: '10.0.0.1', dstIp: '10.0.0.2', srcPort: 0x1234, dstPort: 0x0800, protocolNumber: 1 });
  // A third VLAN tag is not looked through: not IP.
  assert.equal(parse('020000000001020000000002 8100 0001 8100 0002 8100 0003 0800 45000014').outcome, 'nonIp');
  assert.equal(parse(eth('0806') + '0001080006040001').outcome, 'nonIp');
  // IPv6: hop-by-hop, then ICMPv6 echo reply id 7.
  const v6 = (nh: string, pl: string, rest: string): string => eth('86dd') + `6000000000${pl}${nh}40` + '20010db8000000000000000000000001' + 'fe800000000000000000000000000001' + rest;
  assert.deepEqual(parse(v6('00', '10', '3a00 000000000000' + '81000000 00070001')), {
    outcome: 'parsed',
    ipLen: 56,
    key: { family: 'ipv6', srcIp: '2001:db8::1', dstIp: 'fe80::1', srcPort: 7, dstPort: 0x8100, protocolNumber: 58 },
  });
  // Fragment header: first fragment parses the UDP header; a later one has no ports.
  const frag = (off: string): string => v6('2c', '10', `1100${off}00000001` + '00350035 00080000');
  assert.deepEqual(parse(frag('0001')).key?.srcPort, 53);
  assert.deepEqual(parse(frag('0008')).key, { family: 'ipv6', srcIp: '2001:db8::1', dstIp: 'fe80::1', srcPort: 0, dstPort: 0, protocolNumber: 17 });
  // AH is (hdrlen + 2) * 4 bytes: hdrlen 1 = 12 bytes, then UDP.
  assert.equal(parse(v6('33', '14', '1101 0000 00000000 00000000' + '00350036 00080000')).key?.dstPort, 54);
  // Six extension headers (IPV6_MAX_EXT_HEADERS) and then UDP parse; seven are one too many.
  assert.equal(parse(v6('00', '38', '0000 000000000000'.repeat(5) + '1100 000000000000' + '00350035 00080000')).key?.dstPort, 53);
  assert.equal(parse(v6('00', '40', '0000 000000000000'.repeat(6) + '1100 000000000000' + '00350035 00080000')).outcome, 'malformed');
  assert.equal(parse(v6('00', '30', '0000 000000000000'.repeat(5) + '3b00 000000000000')).key?.protocolNumber, 59);
  // A UDP header in the trailer after tot_len is not a header: truncated.
  assert.equal(parse(udp4.replace('45000020', '45000014')).outcome, 'truncated');
  assert.equal(parse(v6('00', '28', '0000 000000000000'.repeat(4) + '3b00 000000000000')).key?.protocolNumber, 59);
  // payload_len past the frame: truncated; version 4 in an IPv6 EtherType: malformed.
  assert.equal(parse(v6('3b', '01', '')).outcome, 'truncated');
  assert.equal(parse(v6('3b', '00', '').replace('86dd60', '86dd40')).outcome, 'malformed');
  // Headers past data_end (XDP's linear part) are truncated even inside the frame.
  assert.equal(parse(udp4, 14 + 20 + 7).outcome, 'truncated');
  assert.equal(parse(udp4, 14 + 20 + 8).outcome, 'parsed');
});

test('BPF_PROG_TEST_RUN: which frames run, on which interface, with which rc', async () => {
  const mon = await NetworkMonitor.create({ packetSampleRate: 0, detectTcpFlagAnomalies: false, flowTableCapacity: 1024 });
  try {
    for (const spec of [TC, XDP]) {
      const packets = (): number => {
        let n = 0;
        for (const c of mon.getPacketStats().interfaces) {
          if (c.hook !== spec.hook) continue;
          assert.equal(c.ifindex, LO_IFINDEX, `${spec.prog} test runs count on ifindex ${c.ifindex}, expected lo`);
          assert.equal(c.interface, 'lo');
          n += c.packets.total;
        }
        return n;
      };
      // A fresh runner per frame: data_size_out starts at 0, so rc is the kernel's verdict alone.
      const once = (frame: Uint8Array): { rc: number; ran: boolean } => {
        const runner = new TestRunner(mon.programFd(spec.prog), 16384);
        try {
          const before = packets();
          const r = runner.run(frame);
          return { rc: r.rc, ran: packets() === before + 1 };
        } finally {
          runner.close();
        }
      };
      const frameOf = (len: number, etherType: number): Uint8Array => {
        const f = new Uint8Array(len);
        put16(f, 12, etherType);
        put8(f, 14, etherType === 0x86dd ? 0x60 : 0x45);
        return f;
      };
      // [length, EtherType]: the edges of every rule in spec.accepts().
      const cases: [number, number][] = [
        [0, 0],
        [13, 0],
        [14, 0],
        [15, 0],
        [1500, 0],
        [XDP_LINEAR, 0],
        [XDP_LINEAR + 1, 0],
        [TC_MAX_FRAME, 0],
        [TC_MAX_FRAME + 1, 0],
        [4096, 0],
        [9000, 0],
        [14, 0x0800],
        [33, 0x0800],
        [34, 0x0800],
        [14, 0x86dd],
        [53, 0x86dd],
        [54, 0x86dd],
        [15, 0x8100],
        [15, 0x88a8],
        [20, 0x0806],
        [TC_MAX_FRAME, 0x86dd],
        [TC_MAX_FRAME + 1, 0x0800],
      ];
      if (spec.target === 'xdp') cases.push([16384, 0], [16384, 0x86dd]);
      for (const [len, etherType] of cases) {
        const frame = frameOf(len, etherType);
        const want = spec.accepts(frame) ? { rc: 0, ran: true } : { rc: -EINVAL, ran: false };
        assert.deepEqual(once(frame), want, `${spec.prog}, ${len}-byte frame with EtherType 0x${etherType.toString(16)} on a fresh runner`);
      }
      if (spec.target === 'tc') {
        assert.ok(!spec.accepts(frameOf(33, 0x0800)) && !spec.accepts(frameOf(53, 0x86dd)) && !spec.accepts(frameOf(TC_MAX_FRAME + 1, 0)));
      }
      // The same runner, a longer frame than the previous one: still rc 0
      // (TestRunner resets data_size_out; it used to get -ENOSPC here).
      const runner = new TestRunner(mon.programFd(spec.prog), 16384);
      try {
        const a = runner.run(new Uint8Array(100));
        const before = packets();
        const b = runner.run(new Uint8Array(200));
        assert.equal(a.rc, 0);
        assert.equal(b.rc, 0);
        assert.equal(packets(), before + 1, 'the program ran on the longer frame');
      } finally {
        runner.close();
      }
    }
    // The data_end limit for XDP: an IPv6 frame whose only extension header
    // sits across the linear boundary is truncated, one just inside it is not.
    const xdpOutcome = (hdrAt: number): RefOutcome => {
      const frame = new Uint8Array(6000);
      put16(frame, 12, 0x86dd);
      frame[14] = 0x60;
      put16(frame, 18, 6000 - 54);
      // Option headers from 54 up to hdrAt, then destination options (2 bytes
      // read there) with next header "none".
      const { nhOff } = chainTo(new Rng(1), frame, 20, 54, hdrAt);
      frame[nhOff] = 60;
      frame[hdrAt] = 59;
      frame[hdrAt + 1] = 0;
      const runner = new TestRunner(mon.programFd('xdp_ingress'), 16384);
      const before = mon.getPacketStats().xdp.packets;
      try {
        runner.run(frame);
      } finally {
        runner.close();
      }
      const after = mon.getPacketStats().xdp.packets;
      const grew = REF_OUTCOMES.filter((o) => after[o] !== before[o]);
      assert.equal(grew.length, 1);
      assert.equal(classifyFrame(frame, XDP.linear(frame.length)).outcome, grew[0], `reference agrees at ${hdrAt}`);
      return grew[0]!;
    };
    // Offsets move in steps of 4 from 54, so this pins data_end to 3520..3523.
    assert.equal(xdpOutcome(XDP_LINEAR - 2), 'parsed', 'a header ending exactly at the linear limit is readable');
    assert.equal(xdpOutcome(XDP_LINEAR + 2), 'truncated', 'one crossing it is not, though the frame goes on');
    assert.equal(mon.getFlowStats().length, 0, 'frames of only zeros or only XDP runs make no flows');
  } finally {
    await mon.close();
  }
});

test(`tc_ingress agrees with the reference parser on ${TC_FRAMES} fuzzed frames`, async () => {
  const s = await fuzz(TC);
  summarize(TC, s);
  assertCoverage(TC, s);
});

test(`xdp_ingress agrees with the reference parser on ${XDP_FRAMES} fuzzed frames`, async () => {
  const s = await fuzz(XDP);
  summarize(XDP, s);
  assertCoverage(XDP, s);
});
