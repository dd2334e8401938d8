/**
 * Where XDP pays: the choice behind `xdp: 'auto'`, shared by the monitor and
 * `kubenetprobe doctor`.
 */
import { driverOf } from '../netif.js';
import type { XdpMode } from './xdp.js';

/**
 * Drivers of physical NICs whose native XDP runs in the driver's receive path
 * without giving up offloads. Virtual NICs (virtio_net, ena, gve, hv_netvsc,
 * vmxnet3) are left out: there, native XDP tends to turn off LRO/GRO or halve
 * the queues.
 */
export const NATIVE_XDP_DRIVERS: ReadonlySet<string> = new Set([
  'mlx5_core',
  'mlx4_en',
  'mlx4_core',
  'i40e',
  'ice',
  'ixgbe',
  'ixgbevf',
  'igb',
  'igc',
  'bnxt_en',
  'nfp',
  'qede',
  'sfc',
  'stmmac',
  'cpsw',
]);

/**
 * 'auto': native XDP on NICs whose driver runs it cheaply, none elsewhere.
 * On veth, generic XDP cost about 30 % of TCP throughput and native XDP about
 * 80 % here (it turns off the peer's TSO), while TC alone covers ingress at a
 * few percent.
 */
export function autoXdpMode(name: string): { mode: XdpMode | null; reason: string } {
  const driver = driverOf(name);
  if (driver !== undefined && NATIVE_XDP_DRIVERS.has(driver)) return { mode: 'native', reason: `driver ${driver} runs native XDP cheaply` };
  if (driver === undefined) {
    return { mode: null, reason: `off on virtual interface ${name} (TC covers ingress; on veth, XDP cost 30-80 % of TCP throughput)` };
  }
  return { mode: null, reason: `off on ${name} (driver ${driver} is not one whose native XDP is known to be cheap; xdp: 'native' forces it)` };
}
