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
import { encodeAddress, parseCidr } from '../abi/ip.js';

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

function toBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

/** The address as a 128-bit integer (IPv4 mapped into ::ffff:0:0/96); undefined if it is not one. */
export function ipToBigInt(ip: string): bigint | undefined {
  const v4 = parseV4(ip);
  if (v4 !== undefined) return V4_MAPPED | BigInt(v4);
  // IPv6 is rare on the write path: the ABI's parser (the same bytes the kernel keys hold).
  const bytes = ip.includes(':') ? encodeAddress(ip) : undefined;
  return bytes ? toBigInt(bytes) : undefined;
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
  const block = parseCidr(text);
  if (!block) return undefined;
  // parseCidr gives IPv4 prefixes in the mapped space already (+96).
  const hostMask = (1n << BigInt(128 - block.prefix128)) - 1n;
  const lo = toBigInt(block.addr) & ~hostMask;
  return { lo, hi: lo | hostMask };
}
