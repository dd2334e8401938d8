/**
 * The security commands end to end against an agent process in enforce
 * mode: `events` (filters, -o json, --follow), security lines in `observe
 * --follow`, and `blocks` (list, add, lift, history) — with a source that
 * a detector blocked and an allowlisted one it never does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TestNet } from './helpers/testnet.js';
import { sleep, waitFor } from './helpers/attached.js';
import { ethernet, ipv4, mac, tcp, udp } from '../tools/frames.js';
import { freePort } from './helpers/free-port.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function run(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const jsonLines = (text: string): Record<string, unknown>[] =>
  text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** A CLI process that keeps printing; its output so far. */
function follow(args: string[]): { child: ChildProcess; out: () => string; err: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return { child, out: () => out, err: () => err };
}


const re = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('events, observe --follow and blocks against an agent in enforce mode', async () => {
  const net = TestNet.create(2, { ipv6: false });
  const a = net.pod('a');
  const b = net.pod('b');
  const port = await freePort();
  const server = ['--server', `http://127.0.0.1:${port}`];
  // A NULL probe gets its source blocked for 60 s; b is allowlisted.
  const agent = follow([
    'agent', '--interface', `kv${net.id}*`, '--listen', `127.0.0.1:${port}`, '--interval-ms', '100', '--packet-sample-rate', '0',
    '--mode', 'enforce', '--enforce', 'tcp-null-scan', '--block-ttl-ms', '60000', '--allowlist', `${b.ipv4}/32`,
  ]);
  const followers: ChildProcess[] = [];
  const exited = new Promise<number | null>((r) => agent.child.once('exit', r));
  try {
    await waitFor('the agent to listen', () => agent.out().includes('API at'), 20000);
    assert.match(agent.out(), new RegExp(`enforce mode: sources flagged by tcp-null-scan are blocked for 60 s; never ${re(b.ipv4)}/32`));
    const macA = mac(net.mac(a));
    const macB = mac(net.mac(b));

    const none = run(['events', ...server]);
    assert.equal(none.code, 0, none.err);
    assert.equal(none.out, 'no security events that match (yet)\n');
    assert.equal(run(['blocks', ...server]).out, 'nothing is blocked\n');

    // a probes b: a NULL scan event, then a 'blocked' event for a.
    net.rawSend(a, 1, [ethernet(macB, macA, ipv4(a.ipv4, b.ipv4, tcp(52000, 23, 0)))]);
    await waitFor('a blocked', () => jsonLines(run(['events', '--type', 'blocked', '-o', 'json', ...server]).out).length === 1, 4000);

    // Followers: each prints its history once it is subscribed to the live stream.
    const events = follow(['events', '--follow', '-o', 'json', ...server]);
    const observe = follow(['observe', '--follow', '-o', 'json', '--ip', b.ipv4, ...server]);
    const quiet = follow(['observe', '--follow', '-o', 'json', '--no-security', '--ip', b.ipv4, ...server]);
    followers.push(events.child, observe.child, quiet.child);
    await waitFor('the history of events', () => jsonLines(events.out()).length >= 2, 5000);
    await waitFor('the history of flows', () => observe.out().length > 0 && quiet.out().length > 0, 5000);

    // b (allowlisted) probes a: an event, never a block.
    net.rawSend(b, 1, [ethernet(macA, macB, ipv4(b.ipv4, a.ipv4, tcp(52001, 23, 0)))]);
    await waitFor("b's probe", () => jsonLines(run(['events', '--source', b.ipv4, '-o', 'json', ...server]).out).length === 1, 4000);

    const all = jsonLines(run(['events', '-o', 'json', ...server]).out);
    assert.deepEqual(all.map((e) => [e['type'], (e['attacker'] as { ip: string }).ip]), [
      ['tcp-null-scan', a.ipv4],
      ['blocked', a.ipv4],
      ['tcp-null-scan', b.ipv4],
    ]);
    const { time, seq, cpu, ...first } = all[0]!;
    assert.ok(!Number.isNaN(Date.parse(time as string)));
    assert.ok(typeof seq === 'number' && typeof cpu === 'number');
    assert.deepEqual(first, {
      event: 'security',
      type: 'tcp-null-scan',
      severity: 'medium',
      attacker: { ip: a.ipv4, port: 52000 },
      target: { ip: b.ipv4, port: 23 },
      attackerNamespace: null,
      attackerPod: null,
      targetNamespace: null,
      targetPod: null,
      attackerWorkload: null,
      attackerService: null,
      targetWorkload: null,
      targetService: null,
      interface: a.hostIf,
      hook: 'tc-ingress',
      protocol: 'TCP',
      count: 1,
      threshold: 1,
      windowMs: 0,
      suppressed: 0,
      tcpFlags: [],
      description: `TCP packet with no flags set (NULL scan): ${a.ipv4}:52000 -> ${b.ipv4}:23`,
    });
    assert.deepEqual(
      [all[1]!['severity'], all[1]!['count'], all[1]!['description']],
      ['high', 60, `Blocked ${a.ipv4} for 60 s (enforce mode)`],
    );
    const types = (args: string[]): unknown[] => jsonLines(run(['events', '-o', 'json', ...args, ...server]).out).map((e) => e['type']);
    assert.deepEqual(types(['--severity', 'high']), ['blocked']);
    assert.deepEqual(types(['--source', a.ipv4, '--type', 'tcp-null-scan']), ['tcp-null-scan']);
    assert.deepEqual(types(['--last', '1']), ['tcp-null-scan']);
    const table = run(['events', ...server]).out.split('\n');
    assert.match(table[0]!, /^TIME +SEVERITY +TYPE +ATTACKER +TARGET +INTERFACE +DESCRIPTION$/);
    assert.match(table[2]!, new RegExp(`^\\S+ \\S+ +high +blocked +${re(a.ipv4)}:52000 +${re(b.ipv4)}:23 +${a.hostIf} +Blocked`));
    const bad = run(['events', '--type', 'port-knock', ...server]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /^kubenetprobe: the agent refused: type: not a security event type: "port-knock"/);

    // Frames from a are dropped now; the block counts them. (It has dropped
    // some already: the probe itself on its way out to b, and a's RST
    // answering b's probe.)
    const droppedBefore = jsonLines(run(['blocks', '-o', 'json', ...server]).out)[0]!['packetsDropped'] as number;
    net.rawSend(a, 10, [ethernet(macB, macA, ipv4(a.ipv4, b.ipv4, udp(40000, 7000)))]);
    await sleep(100);
    const list = jsonLines(run(['blocks', '-o', 'json', ...server]).out);
    assert.equal(list.length, 1, 'a only: b is allowlisted');
    const { createdAt, expiresAt, ...rest } = list[0]!;
    assert.deepEqual(rest, { ip: a.ipv4, reason: 'tcp-null-scan', packetsDropped: droppedBefore + 10 });
    assert.equal(Date.parse(expiresAt as string) - Date.parse(createdAt as string), 60000);
    const blocksTable = run(['blocks', ...server]).out.split('\n');
    assert.match(blocksTable[0]!, /^IP +REASON +SINCE +EXPIRES +DROPPED$/);
    assert.match(blocksTable[1]!, new RegExp(`^${re(a.ipv4)} +tcp-null-scan +\\S+ \\S+ +\\S+ \\S+ \\(in [1-6]\\d s\\) +${droppedBefore + 10}$`));

    // Lift it, and again; add one by hand; refuse the allowlist and a non-address.
    const lift = run(['blocks', 'lift', a.ipv4, ...server]);
    assert.equal(lift.code, 0, lift.err);
    assert.equal(lift.out, `lifted the block on ${a.ipv4} (tcp-null-scan); ${droppedBefore + 10} packets were dropped\n`);
    const again = run(['blocks', 'lift', a.ipv4, ...server]);
    assert.equal(again.code, 2);
    assert.equal(again.err, `kubenetprobe: ${a.ipv4} is not blocked\n`);
    const add = run(['blocks', 'add', '203.0.113.9', '--ttl-ms', '0', ...server]);
    assert.equal(add.code, 0, add.err);
    assert.equal(add.out, 'blocked 203.0.113.9 until lifted\n');
    const manual = jsonLines(run(['blocks', '-o', 'json', ...server]).out);
    assert.equal(manual.length, 1);
    assert.deepEqual({ ...manual[0], createdAt: undefined }, { ip: '203.0.113.9', reason: 'manual', createdAt: undefined, expiresAt: null, packetsDropped: 0 });
    const allowlisted = run(['blocks', 'add', b.ipv4, ...server]);
    assert.equal(allowlisted.code, 2);
    assert.equal(allowlisted.err, `kubenetprobe: the agent refused: ip: ${b.ipv4} is on the allowlist, whose sources are never blocked\n`);
    const notIp = run(['blocks', 'add', 'nope', ...server]);
    assert.equal(notIp.code, 2);
    assert.equal(notIp.err, 'kubenetprobe: the agent refused: ip: not an IP address: "nope"\n');
    const badTtl = run(['blocks', 'add', '203.0.113.10', '--ttl-ms', 'soon', ...server]);
    assert.equal(badTtl.code, 2);
    assert.equal(badTtl.err, 'kubenetprobe: --ttl-ms must be a whole number from 0, got soon\n');
    const history = jsonLines(run(['blocks', 'history', '-o', 'json', ...server]).out);
    assert.deepEqual(history.map((h) => [h['action'], h['cause'], h['ip'], h['reason']]), [
      ['blocked', 'detector', a.ipv4, 'tcp-null-scan'],
      ['unblocked', 'manual', a.ipv4, 'tcp-null-scan'],
      ['blocked', 'manual', '203.0.113.9', 'manual'],
    ]);
    await sleep(300);

    // What the followers saw, live after their history.
    const seen = jsonLines(events.out()).map((e) => [e['event'], e['type'] ?? e['action'], (e['attacker'] as { ip: string } | undefined)?.ip ?? e['ip']]);
    assert.deepEqual(seen, [
      ['security', 'tcp-null-scan', a.ipv4],
      ['security', 'blocked', a.ipv4],
      ['security', 'tcp-null-scan', b.ipv4],
      ['block', 'unblocked', a.ipv4],
      ['block', 'blocked', '203.0.113.9'],
    ]);
    const observed = jsonLines(observe.out()).filter((l) => l['event'] !== undefined);
    assert.deepEqual(observed.map((e) => [e['event'], e['type'], (e['attacker'] as { ip: string }).ip]), [['security', 'tcp-null-scan', b.ipv4]], 'security events with the flows; blocks of other addresses filtered out');
    assert.ok(jsonLines(observe.out()).some((l) => l['srcIp'] !== undefined), 'and flows');
    assert.deepEqual(jsonLines(quiet.out()).filter((l) => l['event'] !== undefined), [], '--no-security');
  } finally {
    for (const f of followers) f.kill('SIGTERM');
    agent.child.kill('SIGTERM');
    assert.equal(await exited, 0, agent.out() + agent.err());
    await net.close();
  }
});

test('events and blocks without an agent say how to start one', () => {
  for (const args of [['events'], ['events', '--follow'], ['blocks'], ['blocks', 'lift', '198.18.0.1'], ['blocks', 'add', '198.18.0.1']]) {
    const r = run([...args, '--server', 'http://127.0.0.1:9']);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.err, /^kubenetprobe: no agent answers at http:\/\/127\.0\.0\.1:9\n {2}hint: start one with `npx kubenetprobe agent --interface eth0`/, args.join(' '));
  }
});

test('bad flags are one-line errors and exit 2', () => {
  const cases: [string[], string][] = [
    [['events', '-o', 'yaml'], 'kubenetprobe: --output must be table, json or compact, got yaml\n'],
    [['events', '--last', '0'], 'kubenetprobe: --last must be a whole number from 1, got 0\n'],
    [['blocks', '-o', 'compact'], 'kubenetprobe: --output must be table or json, got compact\n'],
    [['agent', '--mode', 'enforce', '--enforce', 'port-knock'], ''],
    [['agent', '--allowlist', '10.0.0.0/33'], 'kubenetprobe: invalid config: allowlist.0: not a CIDR block: "10.0.0.0/33" (e.g. 10.0.0.0/8 or fd00::/8)\n  hint: see `kubenetprobe agent --help` for every setting\n'],
    [['agent', '--port-scan-ports', '0'], 'kubenetprobe: invalid config: detectors.portScanPorts: must be an integer from 1 to 512, got 0\n  hint: see `kubenetprobe agent --help` for every setting\n'],
    [['agent', '--martians', 'eth0;reboot'], 'kubenetprobe: invalid config: martians: invalid interface pattern "eth0;reboot"\n  hint: see `kubenetprobe agent --help` for every setting\n'],
  ];
  for (const [args, err] of cases) {
    const r = run(args);
    assert.equal(r.code, 2, args.join(' '));
    if (err) assert.equal(r.err, err, args.join(' '));
    else assert.match(r.err, /^kubenetprobe: invalid config: enforce\.0: Invalid option: expected one of "tcp-null-scan"/);
  }
  const env = spawnSync(process.execPath, [CLI, 'agent'], { encoding: 'utf8', env: { ...process.env, KUBENETPROBE_MODE: 'block' } });
  assert.equal(env.status, 2);
  assert.match(env.stderr, /invalid config: mode: /);
});
