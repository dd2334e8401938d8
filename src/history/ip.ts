/**
 * Addresses as 128-bit integers, so the history store can answer `ip`,
 * `cidr` and `source` filters with an equality or a BETWEEN on an integer
 * column that DuckDB prunes by its min/max statistics, instead of parsing
 * strings row by row (DuckDB's inet type is an extension, and the agent
 * must not download one).
 *
 * IPv4 is stored IPv4-mapped (::ffff:a.b.c.d), as the kernel keys store it,
 * so one column and one range test serve both families.
 */
import { isIP } from 'node:net';

const V4_MAPPED = 0xffffn << 32n;

/**
 * Dotted quad to a number, by hand: this runs twice per stored flow record,
 * and split() plus a regex per part was a tenth of the write path's time.
 * Strict like node:net isIP (no leading zeros, no empty parts).
 */
function parseV4(s: string): number | undefined {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || ++dots > 3) return undefined;
      n = n * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      // A leading zero is only valid as the whole part ("0", not "01").
      if (digits === 1 && part === 0) return undefined;
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return undefined;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0) return undefined;
  return n * 256 + part;
}

function parseV6(s: string): bigint | undefined {
  // Zone ids (fe80::1%eth0) name a link, not an address: flows never carry one.
  if (s.includes('%')) return undefined;
  let text = s;
  // A trailing dotted quad (::ffff:1.2.3.4) is the last two 16-bit groups.
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) !== -1) {
    const v4 = parseV4(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    text = `${text.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (h: string): string[] => (h === '' ? [] : h.split(':'));
  const left = groupsOf(halves[0]!);
  const right = halves.length === 2 ? groupsOf(halves[1]!) : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...right];
  let n = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    n = (n << 16n) | BigInt(parseInt(g, 16));
  }
  return n;
}

/** The address as a 128-bit integer (IPv4 mapped into ::ffff:0:0/96); undefined if it is not one. */
export function ipToBigInt(ip: string): bigint | undefined {
  const v4 = parseV4(ip);
  if (v4 !== undefined) return V4_MAPPED | BigInt(v4);
  return ip.includes(':') && isIP(ip) === 6 ? parseV6(ip) : undefined;
}

export interface AddressRange {
  lo: bigint;
  hi: bigint;
}

/**
 * The addresses of a CIDR block ("10.0.0.0/8", "fd00::/64") or of one
 * address ("10.0.0.1": a /32 or /128), as an inclusive range in the same
 * space as ipToBigInt. Undefined if it is neither.
 */
export function addressRange(text: string): AddressRange | undefined {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(text);
  if (!m) return undefined;
  const family = isIP(m[1]!);
  const addr = ipToBigInt(m[1]!);
  if (addr === undefined) return undefined;
  const bits = family === 4 ? 32 : 128;
  const prefix = m[2] === undefined ? bits : Number(m[2]);
  if (prefix > bits) return undefined;
  // An IPv4 prefix counts from the start of the mapped space's last 32 bits.
  const hostBits = BigInt(bits - prefix);
  const hostMask = (1n << hostBits) - 1n;
  const lo = addr & ~hostMask;
  return { lo, hi: lo | hostMask };
}
