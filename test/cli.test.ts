/**
 * The kubenetprobe command: `npx kubenetprobe` reaches it (package.json bin),
 * and `doctor` says what works here, exiting non-zero when the agent can't run.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../src/paths.js';
import { TestNet } from './helpers/testnet.js';
import { attachedTo, nothingAttached, sleep, waitFor } from './helpers/attached.js';
import { freePort } from './helpers/free-port.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function run(args: string[], via: string[] = []): { code: number | null; out: string; err: string } {
  const r = via.length
    ? spawnSync(via[0]!, [...via.slice(1), process.execPath, CLI, ...args], { encoding: 'utf8' })
    : spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('npx kubenetprobe runs the CLI', () => {
  const r = spawnSync('npx', ['--no-install', 'kubenetprobe', '--help'], { encoding: 'utf8', cwd: packageRoot() });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Usage: kubenetprobe/);
  for (const cmd of ['doctor', 'agent', 'observe', 'events', 'blocks', 'top', 'stats', 'demo']) assert.match(r.stdout, new RegExp(`^ +${cmd} `, 'm'), cmd);
});

test('doctor on this machine: every check passes and the programs load', () => {
  const r = run(['doctor']);
  assert.equal(r.code, 0, r.out + r.err);
  for (const name of ['privileges', 'kernel', 'ring buffers', 'tc attach', 'btf', 'bpffs', 'libbpf', 'memlock', 'programs']) {
    assert.match(r.out, new RegExp(`^ {2}(ok|warn) +${name} `, 'm'), `${name} is checked`);
  }
  assert.match(r.out, /^ {2}ok +programs +the verifier accepts them/m);
  assert.match(r.out, /^ {2}ok +libbpf +1\.\d+/m);
  assert.match(r.out, /^the agent can run here/m);
});

test('doctor -o json gives the same checks as data', () => {
  const r = run(['doctor', '-o', 'json']);
  assert.equal(r.code, 0);
  const checks = JSON.parse(r.out) as { name: string; status: string; detail: string }[];
  assert.ok(checks.find((c) => c.name === 'kernel' && c.status === 'ok'));
  assert.ok(checks.every((c) => ['ok', 'warn', 'fail'].includes(c.status) && c.detail.length > 0));
});

test('doctor without privileges fails, names what is missing, and exits 1', () => {
  const r = run(['doctor'], ['setpriv', '--inh-caps=-all', '--bounding-set=-all']);
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(r.out, /^ {2}fail +privileges +missing CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN: run as root or grant them/m);
  assert.doesNotMatch(r.out, / programs /, 'does not try to load without privileges');
  assert.match(r.out, /^the agent cannot run here: 1 check failed/m);
});

test('a bad option is a one-line error and exit 2', () => {
  const r = run(['doctor', '-o', 'yaml']);
  assert.equal(r.code, 2);
  assert.equal(r.err, 'kubenetprobe: --output must be table or json, got yaml\n');
});

describe('agent, observe and stats end to end', () => {
  test('observe with filters shows exactly the known flow; stats; SIGTERM leaves nothing attached', async () => {
    const net = TestNet.create(2, { ipv6: false });
    const port = await freePort();
    const agent = spawn(process.execPath, [CLI, 'agent', '--interface', `kv${net.id}*`, '--listen', `127.0.0.1:${port}`, '--interval-ms', '100'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    agent.stdout.on('data', (d: Buffer) => (out += d.toString()));
    agent.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => agent.once('exit', r));
    try {
      const a = net.pod('a');
      const b = net.pod('b');
      await waitFor('the agent to listen', () => out.includes('API at'), 20000);
      assert.match(out, new RegExp(`API at http://127\\.0\\.0\\.1:${port}`));
      assert.match(out, new RegExp(`attached to (${a.hostIf}, ${b.hostIf}|${b.hostIf}, ${a.hostIf})`));
      net.traffic(a, ['udp-send', b.ipv4, '6301', '25', '70', '49301']);
      await sleep(400);
      const server = ['--server', `http://127.0.0.1:${port}`];
      const json = run(['observe', '--port', '6301', '--interface', a.hostIf, '-o', 'json', ...server]);
      assert.equal(json.code, 0, json.err);
      const lines = json.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.equal(lines.length, 1);
      assert.deepEqual(
        { srcIp: lines[0]!['srcIp'], dstPort: lines[0]!['dstPort'], protocol: lines[0]!['protocol'], direction: lines[0]!['direction'], packets: lines[0]!['packets'], bytes: lines[0]!['bytes'] },
        { srcIp: a.ipv4, dstPort: 6301, protocol: 'UDP', direction: 'ingress', packets: 25, bytes: 25 * (20 + 8 + 70) },
      );
      const tableOut = run(['observe', '--port', '6301', ...server]);
      assert.match(tableOut.out, /^TIME +INTERFACE +DIR +PROTO +SOURCE +DESTINATION +PACKETS +BYTES/);
      assert.equal(tableOut.out.trim().split('\n').length, 2, 'header + the flow, counted once where it entered the node (at a)');
      const bad = run(['observe', '--port', 'eighty', ...server]);
      assert.equal(bad.code, 2);
      assert.match(bad.err, /the agent refused: port: not a port number/);
      const badWorkload = run(['observe', '--workload', 'a/b/c', ...server]);
      assert.equal(badWorkload.code, 2);
      assert.match(badWorkload.err, /the agent refused: workload: not a workload name or kind\/name/);
      const unknown = run(['observe', '--port', '6301', '--label', 'app=web', '-o', 'json', ...server]);
      assert.equal(unknown.code, 0, unknown.err);
      assert.equal(unknown.out.trim(), '', 'no identity here: an identity filter matches nothing');
      const top = run(['top', '--once', '--sort', 'bytes', '--interval-ms', '200', '--port', '6301', ...server]);
      assert.equal(top.code, 0, top.err);
      assert.match(top.out, /^kubenetprobe top — .* — 1 conversations, by bytes\nFROM +TO +PROTO +BYTES +PACKETS +RATE +STATE\n/);
      assert.match(top.out, new RegExp(`^${a.ipv4.replace(/\./g, '\\.')}:49301 +${b.ipv4.replace(/\./g, '\\.')}:6301 +UDP +2\\.4 KiB +25 `, 'm'));
      const badSort = run(['top', '--once', '--sort', 'loudest', ...server]);
      assert.equal(badSort.code, 2);
      assert.match(badSort.err, /--sort must be bytes, packets or rate, got loudest/);
      const stats = run(['stats', ...server]);
      assert.equal(stats.code, 0, stats.err);
      assert.match(stats.out, new RegExp(`^${a.hostIf} +tc-ingress \\(tcx\\) tc-egress \\(tcx\\)`, 'm'));
      assert.match(stats.out, /^coverage +100\.00 %/m);
      assert.match(stats.out, /^security +audit mode; 0 events sent, 0 dropped, 0 gaps, 0 held back by the rate limits$/m);
      assert.match(stats.out, /^blocks +0 active, 0 packets dropped$/m);
      assert.match(stats.out, /^flow reads +(BPF iterator: changed flows only, summed in the kernel|batch: .+)$/m);
      assert.match(stats.out, /^evictions +(program: knp_flow_evict, up to 4096 flows a system call|lookup-and-delete: .+)$/m);
    } finally {
      agent.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.match(out, /SIGTERM, detaching/);
      for (const p of net.pods) assert.ok(nothingAttached(attachedTo(p.hostIf)), p.hostIf);
      await net.close();
    }
  });

  test('without an agent, observe says how to start one', () => {
    const r = run(['observe', '--server', 'http://127.0.0.1:9']);
    assert.equal(r.code, 2);
    assert.match(r.err, /no agent answers at http:\/\/127\.0\.0\.1:9\n {2}hint: start one with `npx kubenetprobe agent --interface eth0`/);
  });

  test('bad agent config names the field and exits 2', () => {
    const r = run(['agent', '--interface', 'eth0;reboot']);
    assert.equal(r.code, 2);
    assert.match(r.err, /kubenetprobe: invalid config: interface: invalid interface pattern "eth0;reboot"/);
    const env = spawnSync(process.execPath, [CLI, 'agent'], { encoding: 'utf8', env: { ...process.env, KUBENETPROBE_IDLE_TIMEOUT_MS: 'soon' } });
    assert.equal(env.status, 2);
    assert.match(env.stderr, /invalid config: idleTimeoutMs: /);
  });
});

