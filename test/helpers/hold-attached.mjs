// Loads the monitor, attaches to IFNAME with the given XDP (and TC) mode, prints
// "attached" and waits to be killed. Used by the kill -9 test.
import { NetworkMonitor } from 'kubenetprobe';

const [ifname, xdp, tcMode = 'auto'] = process.argv.slice(2);
const mon = await NetworkMonitor.create();
const info = await mon.attachToInterface(ifname, { xdp, tc: { mode: tcMode } });
console.log(`attached ${JSON.stringify(info.hooks)}`);
setInterval(() => {}, 1 << 30);
