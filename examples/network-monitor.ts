/**
 * The design note's example program: load the monitor, attach to one
 * interface, print events as they come and a stats summary every second.
 * Leaves cleanly (everything detached) on Ctrl-C and SIGTERM.
 *
 *   NETWORK_INTERFACE=eth0 node dist/examples/network-monitor.js
 *
 * Environment: NETWORK_INTERFACE (default eth0), SAMPLE_RATE (packet events,
 * 1 in N; default 100; 0 = off), XDP (auto|off|generic|native),
 * DURATION_SECONDS (stop after that long; default: run until stopped).
 */
import { KubeNetProbeError, NetworkMonitor, type FlowStats, type XdpChoice } from 'kubenetprobe';

const iface = process.env['NETWORK_INTERFACE'] ?? 'eth0';
const sampleRate = Number(process.env['SAMPLE_RATE'] ?? 100);
const xdp = (process.env['XDP'] ?? 'auto') as XdpChoice;
const duration = Number(process.env['DURATION_SECONDS'] ?? 0);

function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function endpoint(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function flowLine(f: FlowStats): string {
  const k = f.key;
  const what = k.icmp ? `${k.protocol} type ${k.icmp.type}` : `${k.protocol} ${endpoint(k.srcIp, k.srcPort)} -> ${endpoint(k.dstIp, k.dstPort)}`;
  return `  ${k.direction.padEnd(7)} ${what}${k.icmp ? ` ${k.srcIp} -> ${k.dstIp}` : ''}  ${f.packets} pkts ${fmtBytes(f.bytes)}${f.tcpFlags.length ? ` [${f.tcpFlags.join(',')}]` : ''}`;
}

async function main(): Promise<void> {
  const monitor = await NetworkMonitor.create({ packetSampleRate: sampleRate });
  let stopping = false;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${why}: detaching from ${iface}`);
    await monitor.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  const info = await monitor.attachToInterface(iface, { xdp });
  console.log(`attached to ${info.name} (ifindex ${info.ifindex}): ${info.hooks.map((h) => `${h.hook} via ${h.mode}`).join(', ')}`);
  for (const n of info.notes) console.log(`  note: ${n}`);

  monitor.on('packet', (p) => {
    const k = p.key;
    console.log(`packet   ${p.timestamp.toISOString()} ${p.hook} ${k.protocol} ${endpoint(k.srcIp, k.srcPort)} -> ${endpoint(k.dstIp, k.dstPort)} ${p.packetSize} B${p.tcpFlags.length ? ` [${p.tcpFlags.join(',')}]` : ''}`);
  });
  monitor.on('security', (e) => {
    console.log(`SECURITY ${e.timestamp.toISOString()} ${e.severity.toUpperCase()} ${e.type}: ${e.description} — attacker ${endpoint(e.attacker.ip, e.attacker.port)} target ${endpoint(e.target.ip, e.target.port)} on ${e.interface ?? e.key.ifindex}`);
  });
  monitor.on('lost', (l) => console.log(`LOST     ${l.count} ${l.ring} events (total ${l.total})`));
  monitor.on('error', (err) => console.error(`error: ${err.message}`));
  monitor.startEventProcessing();

  const timer = setInterval(() => {
    const s = monitor.getPacketStats();
    const flows = monitor.getFlowStats().sort((a, b) => b.bytes - a.bytes);
    console.log(
      `--- stats: ingress ${s.ingress.packets.total} pkts (${s.ingress.packets.nonIp} non-IP, ${s.ingress.packets.truncated + s.ingress.packets.malformed} bad), ` +
        `egress ${s.egress.packets.total} pkts; flows ${s.flowTable.entries}/${s.flowTable.capacity} (insert failures ${s.flowTable.insertFailed}); ` +
        `events: packet ${s.events.packet.sent} sent ${s.events.packet.dropped} dropped, security ${s.events.security.sent} sent ${s.events.security.dropped} dropped`,
    );
    for (const f of flows.slice(0, 5)) console.log(flowLine(f));
  }, 1000);
  timer.unref();
  if (duration > 0) setTimeout(() => void stop(`${duration} s elapsed`), duration * 1000);
}

main().catch((err: unknown) => {
  // Our errors carry their own hint; anything else is a bug worth a stack.
  if (err instanceof KubeNetProbeError) console.error(`error: ${err.message}`);
  else console.error(err);
  process.exit(1);
});
