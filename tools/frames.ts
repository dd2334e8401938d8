/** Builds Ethernet frames for tests: VLAN tags, IPv4/IPv6, TCP/UDP, with valid checksums. */

export function mac(text: string): Buffer {
  return Buffer.from(text.split(':').map((h) => parseInt(h, 16)));
}

function ipv4Bytes(addr: string): Buffer {
  return Buffer.from(addr.split('.').map(Number));
}

function ipv6Bytes(addr: string): Buffer {
  const [head, tail] = addr.includes('::') ? addr.split('::') : [addr, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g || '0', 16), i * 2));
  return b;
}

function checksum(...parts: Buffer[]): number {
  let sum = 0;
  const all = Buffer.concat(parts);
  for (let i = 0; i < all.length; i += 2) sum += (all[i]! << 8) | (all[i + 1] ?? 0);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

export const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20 } as const;

export interface L4 {
  proto: number;
  /** Builds the header+payload given the pseudo-header for the checksum. */
  build(pseudo: Buffer): Buffer;
}

export function tcp(sport: number, dport: number, flags: number, payload = Buffer.alloc(0)): L4 {
  return {
    proto: 6,
    build(pseudo) {
      const h = Buffer.alloc(20);
      h.writeUInt16BE(sport, 0);
      h.writeUInt16BE(dport, 2);
      h.writeUInt32BE(0x1000, 4);
      h[12] = 5 << 4;
      h[13] = flags;
      h.writeUInt16BE(1024, 14);
      const seg = Buffer.concat([h, payload]);
      seg.writeUInt16BE(checksum(pseudo, seg), 16);
      return seg;
    },
  };
}

export function udp(sport: number, dport: number, payload = Buffer.alloc(0)): L4 {
  return {
    proto: 17,
    build(pseudo) {
      const h = Buffer.alloc(8);
      h.writeUInt16BE(sport, 0);
      h.writeUInt16BE(dport, 2);
      h.writeUInt16BE(8 + payload.length, 4);
      const seg = Buffer.concat([h, payload]);
      seg.writeUInt16BE(checksum(pseudo, seg) || 0xffff, 6);
      return seg;
    },
  };
}

export function ipv4(src: string, dst: string, l4: L4): { etherType: number; bytes: Buffer } {
  const s = ipv4Bytes(src);
  const d = ipv4Bytes(dst);
  const len = Buffer.alloc(2);
  const probe = l4.build(Buffer.concat([s, d, Buffer.from([0, l4.proto]), Buffer.alloc(2)]));
  len.writeUInt16BE(probe.length);
  const seg = l4.build(Buffer.concat([s, d, Buffer.from([0, l4.proto]), len]));
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + seg.length, 2);
  h[8] = 64;
  h[9] = l4.proto;
  s.copy(h, 12);
  d.copy(h, 16);
  h.writeUInt16BE(checksum(h), 10);
  return { etherType: 0x0800, bytes: Buffer.concat([h, seg]) };
}

export function ipv6(src: string, dst: string, l4: L4): { etherType: number; bytes: Buffer } {
  const s = ipv6Bytes(src);
  const d = ipv6Bytes(dst);
  const probe = l4.build(Buffer.alloc(40));
  const pseudo = Buffer.alloc(40);
  s.copy(pseudo, 0);
  d.copy(pseudo, 16);
  pseudo.writeUInt32BE(probe.length, 32);
  pseudo[39] = l4.proto;
  const seg = l4.build(pseudo);
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(seg.length, 4);
  h[6] = l4.proto;
  h[7] = 64;
  s.copy(h, 8);
  d.copy(h, 24);
  return { etherType: 0x86dd, bytes: Buffer.concat([h, seg]) };
}

/** An Ethernet frame; `vlans` are outermost first, as [tpid, vid]. */
export function ethernet(dst: Buffer, src: Buffer, l3: { etherType: number; bytes: Buffer }, vlans: [number, number][] = []): Buffer {
  const parts = [dst, src];
  for (const [tpid, vid] of vlans) {
    const t = Buffer.alloc(4);
    t.writeUInt16BE(tpid, 0);
    t.writeUInt16BE(vid, 2);
    parts.push(t);
  }
  const et = Buffer.alloc(2);
  et.writeUInt16BE(l3.etherType);
  return Buffer.concat([...parts, et, l3.bytes]);
}
