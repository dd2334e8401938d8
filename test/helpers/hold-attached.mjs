// Loads the monitor, attaches to IFNAME with the given XDP mode, prints
// "attached" and waits to be killed. Used by the kill -9 test.
import { NetworkMonitor } from 'kubenetprobe';

const [ifname, xdp] = process.argv.slice(2);
const mon = await NetworkMonitor.create();
const info = await mon.attachToInterface(ifname, { xdp });
console.log(`attached ${JSON.stringify(info.hooks)}`);
setInterval(() => {}, 1 << 30);
