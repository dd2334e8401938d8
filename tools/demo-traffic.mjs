// Traffic for the demo's pods, run inside a pod namespace with `ip netns exec`.
// Node built-ins only; everything is bounded by --seconds.
//   serve-http PORT            answers every request with 2 KiB
//   serve-udp PORT             echoes datagrams (a DNS-like request/response)
//   serve-tcp PORT             echoes bytes (a database-like peer)
//   client SECONDS TASK...     runs each task on its period until SECONDS pass:
//     http:HOST:PORT:EVERY_MS            one GET
//     udp:HOST:PORT:EVERY_MS             one 60-byte query, waits for the answer
//     bulk:HOST:PORT:EVERY_MS:BYTES      one TCP transfer of BYTES, echoed back
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);
const body = Buffer.alloc(2048, 0x64);

if (mode === 'serve-http') {
  http.createServer((req, res) => res.end(body)).listen(Number(args[0]), () => console.log('ready'));
} else if (mode === 'serve-udp') {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(Number(args[0]), () => console.log('ready'));
} else if (mode === 'serve-tcp') {
  net.createServer((c) => c.pipe(c)).listen(Number(args[0]), () => console.log('ready'));
} else if (mode === 'client') {
  const [seconds, ...tasks] = args;
  const timers = [];
  const stopAt = Date.now() + Number(seconds) * 1000;
  const quiet = () => {};
  for (const t of tasks) {
    const [kind, host, port, every, bytes] = t.split(':');
    const run = {
      http: () => http.get({ host, port: Number(port), path: '/', timeout: 2000 }, (res) => res.resume()).on('error', quiet),
      udp: () => {
        const s = dgram.createSocket('udp4');
        const done = setTimeout(() => s.close(), 1000);
        s.on('message', () => {
          clearTimeout(done);
          s.close();
        });
        s.send(Buffer.alloc(60, 0x71), Number(port), host, (err) => err && s.close());
      },
      bulk: () => {
        const c = net.connect(Number(port), host, () => c.end(Buffer.alloc(Number(bytes), 0x62)));
        c.on('data', quiet);
        c.on('error', quiet);
      },
    }[kind];
    if (!run) {
      console.error(`unknown task ${t}`);
      process.exit(2);
    }
    run();
    timers.push(setInterval(run, Number(every)));
  }
  console.log('ready');
  setTimeout(() => {
    for (const t of timers) clearInterval(t);
    setTimeout(() => process.exit(0), 500);
  }, Math.max(0, stopAt - Date.now()));
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
