import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseListen } from './config.js';

test('defaults, then file, then environment, then flags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'knp-config-'));
  try {
    const file = join(dir, 'agent.json');
    writeFileSync(file, JSON.stringify({ interface: ['eth1'], listen: '127.0.0.1:9000', intervalMs: 500 }));
    const c = loadConfig({
      file,
      env: { KUBENETPROBE_INTERFACE: 'veth*, lxc*', KUBENETPROBE_INTERVAL_MS: '250' },
      flags: { listen: '0.0.0.0:9471', xdp: undefined },
    });
    assert.deepEqual(c.interface, ['veth*', 'lxc*'], 'env over file');
    assert.equal(c.intervalMs, 250, 'env over file, as a number');
    assert.equal(c.listen, '0.0.0.0:9471', 'flag over file');
    assert.equal(c.xdp, 'auto', 'an unset flag keeps the default');
    assert.equal(c.idleTimeoutMs, 15000);
    assert.equal(loadConfig({}).listen, '127.0.0.1:9470', 'loopback by default');
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('invalid config is rejected with the field named', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ listen: 'nowhere' }, /invalid config: listen: expected HOST:PORT/],
    [{ listen: '127.0.0.1:70000' }, /invalid config: listen: port must be at most 65535/],
    [{ interface: ['eth0; rm -rf /'] }, /invalid config: interface: invalid interface pattern/],
    [{ xdp: 'fast' }, /invalid config: xdp: /],
    [{ intervalMs: -5 }, /invalid config: intervalMs: /],
    [{ flowTableCapacity: 1e9 }, /invalid config: flowTableCapacity: /],
  ];
  for (const [flags, re] of bad) assert.throws(() => loadConfig({ flags }), (e: unknown) => e instanceof ConfigError && re.test(e.message), JSON.stringify(flags));
  assert.throws(() => loadConfig({ env: { KUBENETPROBE_PACKET_SAMPLE_RATE: 'lots' } }), /invalid config: packetSampleRate: /);
});

test('a config file that is missing, not JSON, or has unknown fields', () => {
  const dir = mkdtempSync(join(tmpdir(), 'knp-config-'));
  try {
    assert.throws(() => loadConfig({ file: join(dir, 'none.json') }), /config file .*none\.json: cannot read it \(ENOENT\)/);
    writeFileSync(join(dir, 'bad.json'), 'interface: eth0');
    assert.throws(() => loadConfig({ file: join(dir, 'bad.json') }), /config file .*bad\.json: not a JSON object/);
    writeFileSync(join(dir, 'extra.json'), JSON.stringify({ interfaces: ['eth0'] }));
    assert.throws(() => loadConfig({ file: join(dir, 'extra.json') }), /invalid config: interfaces: /);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('listen addresses', () => {
  assert.deepEqual(parseListen('127.0.0.1:9470'), { host: '127.0.0.1', port: 9470 });
  assert.deepEqual(parseListen('[::1]:9470'), { host: '::1', port: 9470 });
});
