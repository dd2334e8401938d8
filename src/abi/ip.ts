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
