/** Formats the 16-byte addresses of the ABI (IPv4 stored IPv4-mapped). */

export function formatIpv4(v: DataView, off: number): string {
  return `${v.getUint8(off)}.${v.getUint8(off + 1)}.${v.getUint8(off + 2)}.${v.getUint8(off + 3)}`;
}

/** RFC 5952 text form: lower case, longest run of zero groups (>= 2) as "::". */
export function formatIpv6(v: DataView, off: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(v.getUint16(off + i * 2, false));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLen).join(':');
  return `${head}::${tail}`;
}

/** The address at `off` (16 bytes) as text, given the ABI family (4 or 6). */
export function formatAddress(v: DataView, off: number, family: number): string {
  return family === 4 ? formatIpv4(v, off + 12) : formatIpv6(v, off);
}

/**
 * An address as the ABI's 16 bytes: IPv6 as is, IPv4 IPv4-mapped
 * (::ffff:a.b.c.d). Undefined for anything that is not an IP address.
 */
export function encodeAddress(ip: string): Uint8Array | undefined {
  const out = new Uint8Array(16);
  const v4 = parseIpv4(ip);
  if (v4) {
    out[10] = 0xff;
    out[11] = 0xff;
    out.set(v4, 12);
    return out;
  }
  // IPv6: up to one "::", groups of 1-4 hex digits, an IPv4 tail allowed.
  if (!/^[0-9a-fA-F:.]+$/.test(ip) || ip.split('::').length > 2) return undefined;
  const [headText, tailText] = ip.includes('::') ? (ip.split('::') as [string, string]) : [ip, undefined];
  const words = (text: string, last: boolean): number[] | undefined => {
    if (text === '') return [];
    const parts = text.split(':');
    const ws: number[] = [];
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (last && i === parts.length - 1 && part.includes('.')) {
        const t = parseIpv4(part);
        if (!t) return undefined;
        ws.push((t[0]! << 8) | t[1]!, (t[2]! << 8) | t[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
        ws.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return ws;
  };
  const head = words(headText, tailText === undefined);
  const tail = tailText === undefined ? [] : words(tailText, true);
  if (!head || !tail) return undefined;
  const zeros = 8 - head.length - tail.length;
  if (tailText === undefined ? zeros !== 0 : zeros < 1) return undefined;
  [...head, ...new Array<number>(zeros).fill(0), ...tail].forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  return out;
}

function parseIpv4(ip: string): Uint8Array | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const b = m.slice(1).map(Number);
  if (b.some((x, i) => x > 255 || (m[i + 1]!.length > 1 && m[i + 1]!.startsWith('0')))) return undefined;
  return Uint8Array.from(b);
}

/** The address in `bytes` (16, as encodeAddress makes them) as text. */
export function decodeAddress(bytes: Uint8Array): string {
  const v = new DataView(bytes.buffer, bytes.byteOffset, 16);
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped ? formatIpv4(v, 12) : formatIpv6(v, 0);
}

/**
 * A CIDR block as a prefix of the ABI's 128-bit address (IPv4 prefixes
 * move up by 96). Undefined when it is not one.
 */
export function parseCidr(text: string): { addr: Uint8Array; prefix128: number; family: 4 | 6 } | undefined {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(text);
  if (!m) return undefined;
  const addr = encodeAddress(m[1]!);
  if (!addr) return undefined;
  const family = parseIpv4(m[1]!) ? 4 : 6;
  const max = family === 4 ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (prefix > max) return undefined;
  return { addr, prefix128: family === 4 ? prefix + 96 : prefix, family };
}
