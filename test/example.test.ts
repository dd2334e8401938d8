/**
 * The design note's example program: it honours NETWORK_INTERFACE, prints
 * events and a stats summary every second, and on SIGTERM or Ctrl-C leaves
 * nothing attached.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TestNet } from './helpers/testnet.js';
import { attachedTo, nothingAttached, sleep, waitFor } from './helpers/attached.js';
import { TCP, ethernet, ipv4, mac, tcp } from '../tools/frames.js';

const EXAMPLE = fileURLToPath(new URL('../examples/network-monitor.js', import.meta.url));

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`example: events, stats every second, and a clean exit on ${signal}`, async () => {
    const net = TestNet.create(2, { ipv6: false });
    try {
      const a = net.pod('a');
      const b = net.pod('b');
      const child = spawn(process.execPath, [EXAMPLE], {
        env: { ...process.env, NETWORK_INTERFACE: a.hostIf, SAMPLE_RATE: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      await waitFor('the example to attach', () => out.includes(`attached to ${a.hostIf}`), 20000);
      assert.ok(!nothingAttached(attachedTo(a.hostIf)));
      net.traffic(a, ['udp-send', b.ipv4, '5600', '20', '10', '45000']);
      net.rawSend(a, 1, [ethernet(mac(net.mac(b)), mac(net.mac(a)), ipv4(a.ipv4, b.ipv4, tcp(45001, 22, TCP.FIN | TCP.PSH | TCP.URG)))]);
      await waitFor('two stats summaries', () => (out.match(/--- stats:/g) ?? []).length >= 2, 5000);
      assert.match(out, /packet +\S+ tc-ingress UDP 198\.18\.\d+\.1:45000 -> 198\.18\.\d+\.2:5600 52 B/);
      assert.match(out, /SECURITY .* tcp-xmas-scan: .* attacker 198\.18\.\d+\.1:45001 target 198\.18\.\d+\.2:22/);
      assert.match(out, /ingress UDP 198\.18\.\d+\.1:45000 -> 198\.18\.\d+\.2:5600 +20 pkts/);
      child.kill(signal);
      assert.equal(await exited, 0);
      assert.match(out, new RegExp(`${signal}: detaching from ${a.hostIf}`));
      await sleep(50);
      assert.ok(nothingAttached(attachedTo(a.hostIf)), JSON.stringify(attachedTo(a.hostIf)));
    } finally {
      await net.close();
    }
  });
}

test('example: a missing interface is a one-line error, not a stack trace', async () => {
  const child = spawn(process.execPath, [EXAMPLE], { env: { ...process.env, NETWORK_INTERFACE: 'nosuch9' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  assert.equal(code, 1);
  assert.match(err, /^error: no such interface "nosuch9"\n {2}hint: interfaces in this network namespace: /);
  assert.doesNotMatch(err, /\bat .*\.js:\d+/);
});
