/**
 * The fixture of the suites that read one monitor's flows: a node of two pods
 * (a and b, test/helpers/testnet.ts) and a monitor with packet events off,
 * attached to a's veth. Made in the calling suite's `before` and removed in
 * its `after`, also when a test fails; the fields are set once `before` ran.
 */
import { after, before } from 'node:test';
import { NetworkMonitor } from 'kubenetprobe';
import { TestNet, type Pod } from './testnet.js';

export interface MonitoredPods {
  net: TestNet;
  a: Pod;
  b: Pod;
  mon: NetworkMonitor;
}

export function monitoredPods(): MonitoredPods {
  const node = {} as MonitoredPods;
  before(async () => {
    node.net = TestNet.create(2);
    node.a = node.net.pod('a');
    node.b = node.net.pod('b');
    node.mon = await NetworkMonitor.create({ packetSampleRate: 0 });
    await node.mon.attachToInterface(node.a.hostIf);
  });
  after(async () => {
    await node.mon?.close();
    await node.net?.close();
  });
  return node;
}
