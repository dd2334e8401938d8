// Tries to create a monitor (and attach, if an interface is given) and
// prints the error's class and message as JSON. Run under setpriv with
// capabilities dropped by the errors test.
import { NetworkMonitor } from 'kubenetprobe';

const [ifname] = process.argv.slice(2);
try {
  const mon = await NetworkMonitor.create();
  if (ifname) await mon.attachToInterface(ifname);
  await mon.close();
  console.log(JSON.stringify({ ok: true }));
} catch (err) {
  console.log(JSON.stringify({ name: err.name, code: err.code, message: err.message, missing: err.missing }));
}
