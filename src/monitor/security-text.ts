/**
 * One line of text per security event, with the figures that made it: what
 * was seen, who did it to whom, how many against what threshold.
 */
import type { RawSecurityEvent } from '../abi/decode.js';
import { tcpFlagNames } from '../abi/decode.js';

/** What a port scan's probes carried, as nmap names its scans. */
export function scanKind(tcpFlags: number): string {
  const f = tcpFlagNames(tcpFlags);
  const kinds: string[] = [];
  if (f.includes('SYN')) kinds.push('SYN');
  if (f.includes('FIN') && f.includes('PSH') && f.includes('URG')) kinds.push('XMAS');
  else if (f.includes('FIN')) kinds.push('FIN');
  if (tcpFlags === 0) kinds.push('NULL');
  return kinds.length ? kinds.join('+') : f.join('+');
}

export function describeSecurityEvent(e: RawSecurityEvent): string {
  const k = e.key;
  const src = k.srcIp;
  const dst = k.dstIp;
  const within = `within ${e.windowMs} ms`;
  const held = e.suppressed ? ` (${e.suppressed} more held back by the rate limit)` : '';
  let text: string;
  switch (e.type) {
    case 'tcp-port-scan':
      text = `TCP port scan (${scanKind(e.tcpFlags)}): ${src} probed ${e.count} ports on ${dst} ${within} (threshold ${e.threshold})`;
      break;
    case 'udp-port-scan':
      text = `UDP port scan: ${src} probed ${e.count} ports on ${dst} ${within} (threshold ${e.threshold})`;
      break;
    case 'syn-flood':
      text = `SYN flood against ${dst}:${k.dstPort}: ${e.count} SYNs ${within}, mostly never completed (threshold ${e.threshold}); last from ${src}`;
      break;
    case 'icmp-flood':
      text = `ICMP flood against ${dst}: ${e.count} echo requests ${within} (threshold ${e.threshold}); last from ${src}`;
      break;
    case 'ping-sweep':
      text = `Ping sweep: ${src} pinged ${e.count} hosts ${within} (threshold ${e.threshold}); last ${dst}`;
      break;
    case 'land':
      text = `Land packet: ${k.protocol} from ${src}:${k.srcPort} to itself`;
      break;
    case 'martian-source':
      text = `Martian source ${src} (${k.protocol} to ${dst})`;
      break;
    case 'blocked':
      text = `Blocked ${src}${e.count ? ` for ${e.count} s` : ' until lifted'} (enforce mode)`;
      break;
    default:
      text = `${e.description}: ${src}:${k.srcPort} -> ${dst}:${k.dstPort}`;
  }
  return text + held;
}
