// Traffic generator for the tests and the demo, run inside a namespace with
// `ip netns exec`. Node built-ins only. Every mode is bounded in count and time.
//   udp-send DST PORT COUNT PAYLOAD [SRCPORT]   exactly COUNT datagrams
//   udp-spray DST FIRSTPORT PORTS PERPORT PAYLOAD   PERPORT datagrams to each of PORTS ports, in order
//   udp-recv PORT COUNT [TIMEOUT_MS]            prints "ready", then "received N"
//   tcp-server PORT                             prints "ready"; echoes bytes back
//   tcp-send DST PORT BYTES                     sends BYTES, waits for the echo, closes
//   http-server PORT                            prints "ready"; answers every GET with 1 KiB
//   http-gets DST PORT COUNT PARALLEL           COUNT GETs, each on a new connection; prints "ok N"
//   udp-echo PORT                               prints "ready"; echoes every datagram
//   udp-rr DST PORT COUNT                       COUNT request/response rounds from one socket; prints "answered N"
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);
const hardStop = setTimeout(() => {
  console.error(`traffic ${mode}: timed out`);
  process.exit(3);
}, 120000);
hardStop.unref();

function family(addr) {
  return addr.includes(':') ? 'udp6' : 'udp4';
}

if (mode === 'udp-send') {
  const [dst, port, count, payload, srcPort] = args;
  const sock = dgram.createSocket(family(dst));
  const buf = Buffer.alloc(Number(payload), 0x61);
  const n = Number(count);
  let sent = 0;
  const go = () => {
    // A few in flight at a time keeps the socket buffer from overflowing.
    const batch = Math.min(32, n - sent);
    let pending = batch;
    for (let i = 0; i < batch; i++) {
      sock.send(buf, Number(port), dst, (err) => {
        if (err) {
          console.error(err.message);
          process.exit(1);
        }
        if (--pending === 0) {
          if (sent >= n) {
            sock.close();
            console.log(`sent ${sent}`);
          } else setImmediate(go);
        }
      });
      sent++;
    }
  };
  sock.bind(srcPort ? Number(srcPort) : 0, go);
} else if (mode === 'udp-spray') {
  const [dst, first, ports, perPort, payload] = args;
  const sock = dgram.createSocket(family(dst));
  const buf = Buffer.alloc(Number(payload), 0x63);
  const jobs = [];
  for (let p = 0; p < Number(ports); p++) for (let i = 0; i < Number(perPort); i++) jobs.push(Number(first) + p);
  let next = 0;
  // One at a time, so the order of first packets (and so of flow inserts) is the port order.
  const one = () => {
    if (next === jobs.length) {
      sock.close();
      console.log(`sent ${jobs.length}`);
      return;
    }
    sock.send(buf, jobs[next++], dst, (err) => {
      if (err) {
        console.error(err.message);
        process.exit(1);
      }
      one();
    });
  };
  one();
} else if (mode === 'udp-recv') {
  const [port, count, timeout] = args;
  const sock = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  let got = 0;
  const done = () => {
    console.log(`received ${got}`);
    sock.close();
    process.exit(0);
  };
  sock.on('message', () => {
    if (++got >= Number(count)) done();
  });
  sock.bind(Number(port), () => console.log('ready'));
  setTimeout(done, Number(timeout ?? 20000));
} else if (mode === 'tcp-server') {
  const [port] = args;
  const srv = net.createServer((s) => s.pipe(s));
  srv.listen(Number(port), '::', () => console.log('ready'));
} else if (mode === 'tcp-send') {
  const [dst, port, bytes] = args;
  const total = Number(bytes);
  const s = net.connect(Number(port), dst, () => {
    const chunk = Buffer.alloc(64 * 1024, 0x62);
    let left = total;
    const write = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!s.write(chunk.subarray(0, n))) return s.once('drain', write);
      }
    };
    write();
  });
  let echoed = 0;
  s.on('data', (d) => {
    echoed += d.length;
    if (echoed >= total) s.end();
  });
  s.on('close', () => {
    console.log(`echoed ${echoed}`);
    process.exit(echoed === total ? 0 : 1);
  });
  s.on('error', (e) => {
    console.error(e.message);
    process.exit(1);
  });
} else if (mode === 'http-server') {
  const body = Buffer.alloc(1024, 0x68);
  http.createServer((req, res) => res.end(body)).listen(Number(args[0]), '::', () => console.log('ready'));
} else if (mode === 'http-gets') {
  const [dst, port, count, parallel] = args;
  const n = Number(count);
  // No keep-alive: every request is its own TCP connection.
  const agent = new http.Agent({ keepAlive: false, maxSockets: Number(parallel) });
  let started = 0;
  let ok = 0;
  let done = 0;
  const one = () => {
    if (started >= n) return;
    started++;
    http
      .get({ host: dst, port: Number(port), path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) ok++;
          finish();
        });
      })
      .on('error', finish);
  };
  const finish = () => {
    done++;
    if (done === n) {
      console.log(`ok ${ok}`);
      process.exit(ok === n ? 0 : 1);
    }
    one();
  };
  for (let i = 0; i < Number(parallel); i++) one();
} else if (mode === 'udp-echo') {
  const s = dgram.createSocket(family(args[1] ?? '0.0.0.0'));
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(Number(args[0]), () => console.log('ready'));
} else if (mode === 'udp-rr') {
  const [dst, port, count] = args;
  const s = dgram.createSocket(family(dst));
  const n = Number(count);
  const query = Buffer.alloc(60, 0x71);
  let answered = 0;
  let timer;
  const ask = () => {
    clearTimeout(timer);
    if (answered >= n) {
      console.log(`answered ${answered}`);
      process.exit(0);
    }
    s.send(query, Number(port), dst);
    timer = setTimeout(() => {
      console.log(`answered ${answered}`);
      process.exit(1);
    }, 2000);
  };
  s.on('message', () => {
    answered++;
    ask();
  });
  ask();
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
