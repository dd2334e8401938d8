import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, detectorOptions, kubernetesSource, loadConfig, parseListen } from './config.js';

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

test('detector settings: defaults, and the same fields from file, environment and flags', () => {
  const d = loadConfig({});
  assert.equal(d.mode, 'audit', 'audit by default');
  assert.deepEqual(d.enforce, ['tcp-port-scan', 'udp-port-scan', 'ping-sweep', 'syn-flood', 'icmp-flood']);
  assert.equal(d.blockTtlMs, 300000);
  assert.deepEqual(d.allowlist, []);
  assert.deepEqual(d.martians, []);
  assert.equal(d.securityEventRingBytes, 256 << 10);
  assert.deepEqual(d.detectors, {});
  assert.deepEqual(detectorOptions(d), { mode: 'audit', enforce: d.enforce, blockTtlMs: 300000 });

  const dir = mkdtempSync(join(tmpdir(), 'knp-config-'));
  try {
    const file = join(dir, 'agent.json');
    writeFileSync(
      file,
      JSON.stringify({
        mode: 'enforce',
        enforce: ['tcp-port-scan'],
        allowlist: ['10.0.0.0/8', 'fd00::/8'],
        martians: ['eth*'],
        detectors: { portScanPorts: 30, windowMs: 2000, synFloodSyns: 500 },
      }),
    );
    const c = loadConfig({
      file,
      env: { KUBENETPROBE_BLOCK_TTL_MS: '60000', KUBENETPROBE_ENFORCE: 'syn-flood, icmp-flood', KUBENETPROBE_WINDOW_MS: '1500', KUBENETPROBE_DETECTORS: 'syn-flood,icmp-flood,tcp-port-scan' },
      flags: { allowlist: ['198.18.0.1'], detectors: { portScanPorts: '40', udpScanPorts: undefined } },
    });
    assert.equal(c.mode, 'enforce', 'from the file');
    assert.deepEqual(c.enforce, ['syn-flood', 'icmp-flood'], 'env over file, split at commas');
    assert.equal(c.blockTtlMs, 60000);
    assert.deepEqual(c.allowlist, ['198.18.0.1'], 'flag over file; a single address is a block of one');
    assert.deepEqual(c.martians, ['eth*']);
    assert.deepEqual(c.detectors, { portScanPorts: 40, windowMs: 1500, synFloodSyns: 500, enabled: ['syn-flood', 'icmp-flood', 'tcp-port-scan'] }, 'merged field by field');
    assert.deepEqual(detectorOptions(c), {
      portScanPorts: 40,
      windowMs: 1500,
      synFloodSyns: 500,
      enabled: ['syn-flood', 'icmp-flood', 'tcp-port-scan'],
      mode: 'enforce',
      enforce: ['syn-flood', 'icmp-flood'],
      blockTtlMs: 60000,
    });
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('bad detector settings are rejected with the field named', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ mode: 'block' }, /^invalid config: mode: /],
    [{ enforce: ['tcp-port-scan', 'port-knock'] }, /^invalid config: enforce\.1: Invalid option: expected one of "tcp-null-scan"\|/],
    [{ blockTtlMs: -1 }, /^invalid config: blockTtlMs: must be an integer from 0 to 31536000000, got -1/],
    [{ blockTtlMs: 'soon' }, /^invalid config: blockTtlMs: /],
    [{ allowlist: ['10.0.0.0/8', '10.0.0.0/33'] }, /^invalid config: allowlist\.1: not a CIDR block: "10\.0\.0\.0\/33" \(e\.g\. 10\.0\.0\.0\/8 or fd00::\/8\)/],
    [{ allowlist: ['eth0'] }, /^invalid config: allowlist\.0: not a CIDR block: "eth0"/],
    [{ martians: ['eth0 && reboot'] }, /^invalid config: martians: invalid interface pattern "eth0 && reboot"/],
    [{ securityEventRingBytes: 5000 }, /^invalid config: securityEventRingBytes: must be a power of two/],
    [{ securityEventRingBytes: 1024 }, /^invalid config: securityEventRingBytes: /],
    [{ detectors: { portScanPorts: 0 } }, /^invalid config: detectors\.portScanPorts: must be an integer from 1 to 512, got 0/],
    [{ detectors: { synFloodHalfOpenPercent: 101 } }, /^invalid config: detectors\.synFloodHalfOpenPercent: must be an integer from 0 to 100, got 101/],
    [{ detectors: { windowMs: 'fast' } }, /^invalid config: detectors\.windowMs: /],
    [{ detectors: { enabled: ['land', 'teleport'] } }, /^invalid config: detectors\.enabled\.1: /],
    [{ detectors: { mode: 'enforce' } }, /^invalid config: detectors\.mode: not a setting/],
    [{ detectors: { portScanPort: 30 } }, /^invalid config: detectors\.portScanPort: not a setting/],
  ];
  for (const [flags, re] of bad) assert.throws(() => loadConfig({ flags }), (e: unknown) => e instanceof ConfigError && re.test(e.message), JSON.stringify(flags));
  assert.throws(() => loadConfig({ env: { KUBENETPROBE_PORT_SCAN_PORTS: '9999' } }), /invalid config: detectors\.portScanPorts: must be an integer from 1 to 512, got 9999/);
  assert.throws(() => loadConfig({ env: { KUBENETPROBE_ALLOWLIST: '10.0.0.0/8,nowhere' } }), /invalid config: allowlist\.1: not a CIDR block: "nowhere"/);
});

test('history: off by default; path, retention and size from the file, the environment and flags; bad values named', () => {
  const d = loadConfig({});
  assert.equal(d.history, undefined, 'off: nothing is written to disk');
  assert.equal(d.historyRetentionMs, 7 * 86_400_000);
  assert.equal(d.historyMaxBytes, 1 << 30);
  const dir = mkdtempSync(join(tmpdir(), 'knp-config-'));
  try {
    const file = join(dir, 'agent.json');
    writeFileSync(file, JSON.stringify({ history: '/var/lib/kubenetprobe/history.duckdb', historyRetentionMs: 3_600_000 }));
    const c = loadConfig({ file, env: { KUBENETPROBE_HISTORY_MAX_BYTES: '67108864' }, flags: { historyRetentionMs: '86400000' } });
    assert.equal(c.history, '/var/lib/kubenetprobe/history.duckdb');
    assert.equal(c.historyMaxBytes, 64 << 20, 'from the environment, as a number');
    assert.equal(c.historyRetentionMs, 86_400_000, 'flag over file');
    assert.equal(loadConfig({ env: { KUBENETPROBE_HISTORY: join(dir, 'h.duckdb') } }).history, join(dir, 'h.duckdb'));
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ history: '' }, /^invalid config: history: give a file path, e\.g\. \/var\/lib\/kubenetprobe\/history\.duckdb/],
      [{ history: ':memory:' }, /^invalid config: history: not a file path: ":memory:"/],
      [{ history: dir }, /^invalid config: history: a file path, not a directory: /],
      [{ history: '/var/lib/knp/' }, /^invalid config: history: a file path, not a directory: /],
      [{ historyRetentionMs: 1000 }, /^invalid config: historyRetentionMs: must be at least 60000 \(a minute\)/],
      [{ historyRetentionMs: 'a week' }, /^invalid config: historyRetentionMs: /],
      [{ historyMaxBytes: 1024 }, /^invalid config: historyMaxBytes: must be at least 4194304 \(4 MiB\)/],
      [{ historyMaxBytes: 1.5e6 + 0.5 }, /^invalid config: historyMaxBytes: /],
    ];
    for (const [flags, re] of bad) assert.throws(() => loadConfig({ flags }), (e: unknown) => e instanceof ConfigError && re.test(e.message), JSON.stringify(flags));
    assert.throws(() => loadConfig({ env: { KUBENETPROBE_HISTORY_MAX_BYTES: 'lots' } }), /invalid config: historyMaxBytes: /);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('kubernetes: off by default; kubeconfig, node name and identity labels; auto picks in-cluster or the kubeconfig', () => {
  const d = loadConfig({});
  assert.equal(d.kubernetes, 'off');
  assert.equal(d.kubeconfig, undefined);
  assert.equal(d.nodeName, undefined);
  assert.deepEqual(d.identityLabels, ['app', 'app.kubernetes.io/name', 'app.kubernetes.io/component', 'k8s-app']);
  assert.equal(kubernetesSource(d, {}), undefined);

  const c = loadConfig({ env: { NODE_NAME: 'node-7', KUBENETPROBE_IDENTITY_LABELS: 'app, team.example.com/*', KUBENETPROBE_KUBERNETES: 'auto' }, flags: { kubeconfig: '/etc/kube.yaml' } });
  assert.equal(c.nodeName, 'node-7', 'NODE_NAME, as the DaemonSet sets it');
  assert.deepEqual(c.identityLabels, ['app', 'team.example.com/*']);
  assert.deepEqual(kubernetesSource(c, {}), { kubeconfig: '/etc/kube.yaml' }, 'auto outside a cluster: the kubeconfig');
  assert.deepEqual(kubernetesSource(c, { KUBERNETES_SERVICE_HOST: '10.96.0.1' }), { inCluster: true }, 'auto in a cluster: in-cluster');
  assert.equal(kubernetesSource(loadConfig({ flags: { kubernetes: 'auto' } }), {}), undefined, 'auto with neither: off');
  assert.equal(loadConfig({ env: { NODE_NAME: 'a', KUBENETPROBE_NODE_NAME: 'b' } }).nodeName, 'b');
  assert.deepEqual(kubernetesSource(loadConfig({ flags: { kubernetes: 'in-cluster' } }), {}), { inCluster: true });

  assert.throws(() => loadConfig({ flags: { kubernetes: 'yes' } }), /invalid config: kubernetes: /);
  assert.throws(() => loadConfig({ flags: { kubernetes: 'kubeconfig' } }), /invalid config: kubeconfig: kubernetes is kubeconfig: give the kubeconfig file/);
});

test('attachPods: the main interface by default, no names needed; off, at least one name', () => {
  assert.deepEqual(loadConfig({}).interface, ['eth0']);
  assert.equal(loadConfig({}).attachPods, false);
  const pods = loadConfig({ env: { KUBENETPROBE_ATTACH_PODS: 'true' } });
  assert.equal(pods.attachPods, true);
  assert.deepEqual(pods.interface, ['@main']);
  assert.deepEqual(loadConfig({ flags: { attachPods: true, interface: [] } }).interface, []);
  assert.deepEqual(loadConfig({ flags: { attachPods: true, interface: ['@main', 'bond*'] } }).interface, ['@main', 'bond*']);
  assert.equal(loadConfig({ env: { KUBENETPROBE_ATTACH_PODS: 'false' } }).attachPods, false);
  assert.throws(() => loadConfig({ flags: { interface: [] } }), /invalid config: interface: name at least one interface or glob .*or turn on attachPods/);
  assert.throws(() => loadConfig({ env: { KUBENETPROBE_ATTACH_PODS: 'maybe' } }), /invalid config: attachPods: must be true or false/);
});
