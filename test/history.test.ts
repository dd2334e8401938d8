/**
 * Flow history end to end: an agent with --history on a node in namespaces,
 * known UDP traffic between pods, and the history read back through the API
 * (`since`/`until`) and the CLI (`observe`, `top`, `events --since`), with
 * exact counts; a security event; the rows still there after a restart; a
 * corrupt store moved aside with the agent running on a new one; bad time
 * values refused naming the parameter; and history off saying how to turn
 * it on.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from '../src/agent/agent.js';
import { loadConfig, type ConfigInput } from '../src/agent/config.js';
import type { FlowRecord } from '../src/agent/flow-accounter.js';
import { startApiServer, type ApiServer } from '../src/api/server.js';
import { TestNet, type Pod } from './helpers/testnet.js';
import { attachedTo, nothingAttached, waitFor } from './helpers/attached.js';
import { TCP, ethernet, ipv4, mac, tcp } from '../tools/frames.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/** The CLI, without blocking the event loop (the agent under test runs in this process). */
function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'utf8' }, (err, out, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out, err: stderr });
    });
  });
}

const jsonLines = (text: string): Record<string, unknown>[] => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const UDP_BYTES = (payload: number): number => 20 + 8 + payload;

describe('flow history', () => {
  let net: TestNet;
  let dir: string;
  let historyPath: string;
  let inventory: string;
  let agent: Agent | undefined;
  let api: ApiServer | undefined;
  let a: Pod;
  let b: Pod;
  let c: Pod;
  /** Interfaces that gave a final record, by destination port. */
  const finals = new Map<number, Set<string>>();

  const config = (extra: ConfigInput = {}): ConfigInput => ({
    interface: [`kv${net.id}*`],
    intervalMs: 100,
    idleTimeoutMs: 500,
    // Long flows are reported while they last too: a flow has active records and a final one.
    activeTimeoutMs: 300,
    packetSampleRate: 0,
    inventory,
    history: historyPath,
    ...extra,
  });

  const startAgent = async (extra: ConfigInput = {}): Promise<void> => {
    agent = await Agent.start(loadConfig({ flags: config(extra) }));
    agent.on('record', (r: FlowRecord) => {
      if (r.reason !== 'final') return;
      const set = finals.get(r.flow.key.dstPort) ?? new Set<string>();
      set.add(r.flow.interface ?? '?');
      finals.set(r.flow.key.dstPort, set);
    });
    api = await startApiServer(agent, { host: '127.0.0.1', port: 0 });
  };
  const stopAgent = async (): Promise<void> => {
    await api?.close();
    await agent?.close();
    api = undefined;
    agent = undefined;
  };

  const get = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await fetch(`${api!.url}${path}`);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  /** Sends `count` datagrams and waits for the flow's final record (at the sender's veth, where the node counts it). */
  const udpFlow = async (from: Pod, to: Pod, port: number, count: number, payload: number, srcPort: number): Promise<void> => {
    net.traffic(from, ['udp-send', to.ipv4, String(port), String(count), String(payload), String(srcPort)]);
    await waitFor(`the final record of port ${port}`, () => finals.get(port)?.has(from.hostIf) ?? false, 10_000);
  };

  before(async () => {
    net = TestNet.create(3, { ipv6: false });
    a = net.pod('a');
    b = net.pod('b');
    c = net.pod('c');
    dir = mkdtempSync(join(tmpdir(), 'knp-history-'));
    historyPath = join(dir, 'history.duckdb');
    inventory = join(dir, 'inventory.json');
    writeFileSync(inventory, JSON.stringify({ pods: [
      { name: 'client', namespace: 'default', labels: { app: 'client' }, ip: a.ipv4, workload: { kind: 'Deployment', name: 'client' } },
      { name: 'api', namespace: 'shop', labels: { app: 'api' }, ip: b.ipv4, workload: { kind: 'Deployment', name: 'api' }, service: 'api' },
      { name: 'db', namespace: 'data', labels: { app: 'db' }, ip: c.ipv4, workload: { kind: 'StatefulSet', name: 'db' }, service: 'db' },
    ] }));
    await startAgent();
  });
  after(async () => {
    await stopAgent();
    await net?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const FLOW = { port: 6401, count: 600, payload: 60, srcPort: 49401 };

  test('GET /api/v1/flows?since: the records of a flow add up to exactly what was sent, counted once where it entered the node', async () => {
    // Two rounds with a pause shorter than the idle timeout: one flow, reported while active and at its end.
    net.traffic(a, ['udp-send', b.ipv4, String(FLOW.port), '300', String(FLOW.payload), String(FLOW.srcPort)]);
    await new Promise((r) => setTimeout(r, 350));
    await udpFlow(a, b, FLOW.port, 300, FLOW.payload, FLOW.srcPort);
    const all = (await get(`/api/v1/flows?since=1m&port=${FLOW.port}`)).body;
    assert.deepEqual(all['history'] !== null && typeof all['history'] === 'object' && Object.keys(all['history'] as object), ['since', 'until']);
    type Row = { interface: string; record: string; packets: number; bytes: number; deltaPackets: number; totalPackets: number; key: { direction: string; srcPort: number }; source: unknown; destination: unknown };
    const rows = all['flows'] as Row[];
    for (const [ifname, direction] of [[a.hostIf, 'ingress']] as const) {
      const mine = rows.filter((r) => r.interface === ifname);
      assert.ok(mine.length >= 2, `${ifname}: active and final records (${mine.length})`);
      assert.equal(mine.reduce((s, r) => s + r.packets, 0), FLOW.count, `${ifname}: packets add up to the datagrams sent`);
      assert.equal(mine.reduce((s, r) => s + r.bytes, 0), FLOW.count * UDP_BYTES(FLOW.payload), `${ifname}: bytes too`);
      assert.ok(mine.every((r) => r.packets === r.deltaPackets && r.key.direction === direction && r.key.srcPort === FLOW.srcPort));
      assert.equal(mine.at(-1)!.record, 'final');
      assert.equal(mine.at(-1)!.totalPackets, FLOW.count);
      // Identity as it was written: namespace, pod, workload and service (labels are not kept).
      assert.deepEqual(mine[0]!.source, { namespace: 'default', pod: 'client', workload: { kind: 'Deployment', name: 'client' } });
      assert.deepEqual(mine[0]!.destination, { namespace: 'shop', pod: 'api', workload: { kind: 'Deployment', name: 'api' }, service: 'api' });
    }
    // Not again at b's veth, where the datagrams left the node.
    assert.equal(rows.length, rows.filter((r) => r.interface === a.hostIf).length);
    assert.equal(finals.get(FLOW.port)?.has(b.hostIf) ?? false, false);
    // The filters apply to history as they do live; until before the traffic finds nothing.
    const one = (await get(`/api/v1/flows?since=1m&port=${FLOW.port}&interface=${a.hostIf}&pod=shop/api`)).body['flows'] as Row[];
    assert.equal(one.reduce((s, r) => s + r.packets, 0), FLOW.count);
    // Workload and service too, from the history: exactly this flow's records on a's veth, and nothing of a workload not in it.
    const ofRows = async (query: string): Promise<Row[]> => {
      const r = await get(`/api/v1/flows?since=1m&${query}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body['flows'] as Row[];
    };
    for (const query of [`workload=Deployment/api&interface=${a.hostIf}`, `workload=deployment/client&interface=${a.hostIf}`, `service=shop/api&interface=${a.hostIf}`, `service=api&workload=client&interface=${a.hostIf}`]) {
      const got = await ofRows(`${query}&port=${FLOW.port}`);
      assert.deepEqual(got.map((r) => r.interface), one.map((r) => r.interface), query);
      assert.equal(got.reduce((s, r) => s + r.packets, 0), FLOW.count, query);
    }
    for (const query of ['workload=StatefulSet/db', 'workload=StatefulSet/api', 'service=db', 'service=default/api']) {
      assert.deepEqual(await ofRows(`${query}&port=${FLOW.port}`), [], query);
    }
    // Labels are not kept: refused, saying what is.
    const label = await get(`/api/v1/flows?since=1m&label=app=api`);
    assert.equal(label.status, 400);
    assert.deepEqual(label.body['error'], {
      code: 'BAD_PARAMETER',
      parameter: 'label',
      message: "label: the history keeps each end's namespace, pod, workload and service, not its labels: filter by label on live flows and events (without since/until)",
    });
    assert.deepEqual((await get(`/api/v1/flows?since=1m&until=59s&port=${FLOW.port}`)).body['flows'], []);
    const limited = (await get(`/api/v1/flows?since=1m&port=${FLOW.port}&limit=1`)).body['flows'] as Row[];
    assert.equal(limited.length, 1);
    assert.equal(limited[0]!.record, 'final', 'the newest');
  });

  test('observe --since -o json: the same records, with the stable field names', async () => {
    const server = ['--server', api!.url];
    const r = await cli(['observe', '--since', '1m', '-o', 'json', '--port', String(FLOW.port), '--interface', a.hostIf, ...server]);
    assert.equal(r.code, 0, r.err);
    const lines = jsonLines(r.out);
    assert.equal(lines.reduce((s, l) => s + (l['packets'] as number), 0), FLOW.count);
    assert.equal(lines.reduce((s, l) => s + (l['bytes'] as number), 0), FLOW.count * UDP_BYTES(FLOW.payload));
    assert.deepEqual(Object.keys(lines[0]!), [
      'time', 'firstSeen', 'interface', 'direction', 'protocol', 'srcIp', 'srcPort', 'srcNamespace', 'srcPod', 'srcWorkload', 'srcService',
      'dstIp', 'dstPort', 'dstNamespace', 'dstPod', 'dstWorkload', 'dstService',
      'packets', 'bytes', 'tcpFlags', 'state', 'record', 'deltaPackets', 'deltaBytes', 'packetsPerSec', 'bytesPerSec', 'totalPackets', 'totalBytes',
    ]);
    const last = lines.at(-1)!;
    assert.deepEqual(
      [last['srcIp'], last['srcPort'], last['srcNamespace'], last['srcPod'], last['srcWorkload'], last['srcService'], last['dstIp'], last['dstPort'], last['dstPod'], last['dstWorkload'], last['dstService']],
      [a.ipv4, FLOW.srcPort, 'default', 'client', 'Deployment/client', null, b.ipv4, FLOW.port, 'api', 'Deployment/api', 'api'],
    );
    assert.deepEqual([last['protocol'], last['direction'], last['record'], last['state'], last['totalPackets']], ['UDP', 'ingress', 'final', null, FLOW.count]);
    // --workload and --service with --since: the same records; --label is refused, naming it.
    const byName = await cli(['observe', '--since', '1m', '-o', 'json', '--workload', 'Deployment/api', '--service', 'api', '--port', String(FLOW.port), '--interface', a.hostIf, ...server]);
    assert.equal(byName.code, 0, byName.err);
    assert.deepEqual(jsonLines(byName.out), lines);
    const none = await cli(['observe', '--since', '1m', '--workload', 'StatefulSet/db', '--port', String(FLOW.port), ...server]);
    assert.equal(none.out, 'no flow records in this range\n', none.err);
    const label = await cli(['observe', '--since', '1m', '--label', 'app=api', ...server]);
    assert.equal(label.code, 2);
    assert.match(label.err, /^kubenetprobe: the agent refused: label: the history keeps each end's namespace, pod, workload and service, not its labels/);
    const table = await cli(['observe', '--since', '1m', '--port', String(FLOW.port), ...server]);
    assert.equal(table.code, 0, table.err);
    assert.match(table.out, /^TIME +INTERFACE +DIR +PROTO +SOURCE +DESTINATION +PACKETS +BYTES +FLAGS +STATE\n/);
    assert.match(table.out, new RegExp(` default/client:${FLOW.srcPort} +shop/api:${FLOW.port} \\(svc api\\) +\\d+ +\\d+ +- +final$`, 'm'));
    // An ISO time works as well as a duration.
    const iso = await cli(['observe', '--since', new Date(Date.now() - 60_000).toISOString(), '--until', 'now', '-o', 'json', '--port', String(FLOW.port), '--interface', a.hostIf, ...server]);
    assert.equal(jsonLines(iso.out).reduce((s, l) => s + (l['packets'] as number), 0), FLOW.count, iso.err);
  });

  test('top --since and /api/v1/top rank a bigger flow above a smaller one, with exact totals counted once', async () => {
    // a -> c: 250 x 200 bytes of payload; b -> c: 100 x 50. Each crosses two watched veths and counts once.
    await Promise.all([udpFlow(a, c, 6402, 250, 200, 49402), udpFlow(b, c, 6403, 100, 50, 49403)]);
    type Talker = { srcIp: string; srcPod: string | null; dstIp: string; dstPod: string | null; bytes: number; packets: number };
    const top = (await get('/api/v1/top?since=1m&limit=50')).body;
    assert.equal(top['by'], 'bytes');
    const talkers = top['talkers'] as Talker[];
    const big = talkers.findIndex((t) => t.srcIp === a.ipv4 && t.dstIp === c.ipv4);
    const small = talkers.findIndex((t) => t.srcIp === b.ipv4 && t.dstIp === c.ipv4);
    assert.ok(big >= 0 && small >= 0, JSON.stringify(talkers));
    assert.ok(big < small, 'the bigger flow ranks first');
    const { records, ...bigRow } = talkers[big] as Talker & { records: number };
    assert.deepEqual(bigRow, {
      srcIp: a.ipv4,
      srcNamespace: 'default',
      srcPod: 'client',
      srcWorkload: { kind: 'Deployment', name: 'client' },
      srcService: null,
      dstIp: c.ipv4,
      dstNamespace: 'data',
      dstPod: 'db',
      dstWorkload: { kind: 'StatefulSet', name: 'db' },
      dstService: 'db',
      bytes: 250 * UDP_BYTES(200),
      packets: 250,
    });
    assert.ok(records >= 1, 'the records of one veth, not both');
    assert.equal(talkers[small]!.bytes, 100 * UDP_BYTES(50));
    assert.equal(talkers[small]!.packets, 100);
    // By destination: c received both.
    const dst = (await get(`/api/v1/top?since=1m&group=destination&ip=${c.ipv4}&protocol=udp`)).body['talkers'] as Talker[];
    assert.deepEqual(dst.map((t) => [t.dstPod, t.bytes]), [['db', 250 * UDP_BYTES(200) + 100 * UDP_BYTES(50)]]);
    // By workload or service, from the history: exactly the pairs with such an end.
    const pairs = async (query: string): Promise<[string | null, string | null, number][]> =>
      ((await get(`/api/v1/top?since=1m&protocol=udp&${query}`)).body['talkers'] as Talker[]).map((t) => [t.srcPod, t.dstPod, t.packets]);
    assert.deepEqual(await pairs(`workload=Deployment/api&ip=${c.ipv4}`), [['api', 'db', 100]]);
    assert.deepEqual(await pairs(`service=data/db`), [['client', 'db', 250], ['api', 'db', 100]]);
    assert.deepEqual(await pairs(`workload=client&service=db`), [['client', 'db', 250]]);
    assert.deepEqual(await pairs(`workload=StatefulSet/db&ip=${b.ipv4}`), [['api', 'db', 100]]);
    assert.deepEqual(await pairs(`service=default/db`), []);
    // The time series counts the same way: its buckets sum to the same bytes.
    const ts = (await get(`/api/v1/timeseries?since=1m&bucket=10s&ip=${c.ipv4}&protocol=udp`)).body as { points: { bytes: number }[]; bucketMs: number };
    assert.equal(ts.bucketMs, 10_000);
    assert.equal(ts.points.reduce((s, p) => s + p.bytes, 0), 250 * UDP_BYTES(200) + 100 * UDP_BYTES(50));

    const server = ['--server', api!.url];
    const json = await cli(['top', '--since', '1m', '-o', 'json', '--sort', 'packets', '--protocol', 'udp', '--ip', c.ipv4, ...server]);
    assert.equal(json.code, 0, json.err);
    assert.deepEqual(
      jsonLines(json.out).map((l) => [l['srcPod'], l['srcWorkload'], l['dstPod'], l['dstWorkload'], l['dstService'], l['packets'], l['bytes']]),
      [['client', 'Deployment/client', 'db', 'StatefulSet/db', 'db', 250, 250 * UDP_BYTES(200)], ['api', 'Deployment/api', 'db', 'StatefulSet/db', 'db', 100, 100 * UDP_BYTES(50)]],
    );
    const byWorkload = await cli(['top', '--since', '1m', '-o', 'json', '--workload', 'Deployment/api', '--service', 'db', '--protocol', 'udp', ...server]);
    assert.equal(byWorkload.code, 0, byWorkload.err);
    assert.deepEqual(jsonLines(byWorkload.out).map((l) => [l['srcIp'], l['dstIp'], l['packets']]), [[b.ipv4, c.ipv4, 100]]);
    const table = await cli(['top', '--since', '1m', '--protocol', 'udp', '--ip', c.ipv4, ...server]);
    assert.equal(table.code, 0, table.err);
    assert.match(table.out, /^kubenetprobe top — from history, 1m to now .* — 2 talkers \(source -> destination\), by bytes\nSOURCE +DESTINATION +BYTES +PACKETS +RECORDS\n/);
    assert.match(table.out, new RegExp(`^default/client \\(${a.ipv4.replace(/\./g, '\\.')}\\) +data/db \\(${c.ipv4.replace(/\./g, '\\.')}, svc db\\) +55\\.7 KiB +250 `, 'm'));
    const rate = await cli(['top', '--since', '1m', '--sort', 'rate', ...server]);
    assert.equal(rate.code, 2);
    assert.match(rate.err, /--sort must be bytes or packets with --since/);
  });

  test('a security event is in events --since', async () => {
    net.rawSend(a, 1, [ethernet(mac(net.mac(b)), mac(net.mac(a)), ipv4(a.ipv4, b.ipv4, tcp(52400, 23, 0)))]);
    // And one between other pods: db probes client (SYN+FIN), for the identity filters to tell them apart.
    net.rawSend(c, 1, [ethernet(mac(net.mac(a)), mac(net.mac(c)), ipv4(c.ipv4, a.ipv4, tcp(52401, 80, TCP.SYN | TCP.FIN)))]);
    await waitFor('the NULL scan event', () => agent!.recentSecurityEvents({ types: ['tcp-null-scan'] }).length > 0, 5000);
    await waitFor('the SYN+FIN event', () => agent!.recentSecurityEvents({ types: ['tcp-syn-fin'] }).length > 0, 5000);
    const live = agent!.recentSecurityEvents({ types: ['tcp-null-scan'] })[0]!;
    const r = await cli(['events', '--since', '1m', '--type', 'tcp-null-scan', '-o', 'json', '--server', api!.url]);
    assert.equal(r.code, 0, r.err);
    const lines = jsonLines(r.out);
    assert.equal(lines.length, 1, r.out);
    const e = lines[0]!;
    assert.deepEqual(
      [e['event'], e['type'], e['severity'], e['attacker'], e['target'], e['attackerPod'], e['targetNamespace'], e['targetPod'], e['interface'], e['protocol'], e['cpu'], e['seq'], e['time']],
      ['security', 'tcp-null-scan', live.severity, { ip: a.ipv4, port: 52400 }, { ip: b.ipv4, port: 23 }, 'client', 'shop', 'api', live.interface, 'TCP', live.cpu, Number(live.seq), live.timestamp.toISOString()],
    );
    assert.deepEqual([e['attackerWorkload'], e['attackerService'], e['targetWorkload'], e['targetService']], ['Deployment/client', null, 'Deployment/api', 'api']);
    // By identity, from the history: exactly the events with such an attacker or target.
    const types = async (...args: string[]): Promise<string[]> => {
      const x = await cli(['events', '--since', '1m', '-o', 'json', ...args, '--server', api!.url]);
      assert.equal(x.code, 0, x.err);
      return jsonLines(x.out).map((l) => `${l['type'] as string}@${(l['attacker'] as { ip: string }).ip}`);
    };
    const nullScan = `tcp-null-scan@${a.ipv4}`;
    const synFin = `tcp-syn-fin@${c.ipv4}`;
    assert.deepEqual(await types('--workload', 'Deployment/api'), [nullScan], 'the target is api');
    assert.deepEqual(await types('--workload', 'statefulset/db'), [synFin], 'the attacker is db');
    assert.deepEqual(await types('--workload', 'client'), [nullScan, synFin], 'client at either end');
    assert.deepEqual(await types('--namespace', 'data'), [synFin]);
    assert.deepEqual(await types('--namespace', 'shop'), [nullScan]);
    assert.deepEqual(await types('--service', 'shop/api'), [nullScan]);
    assert.deepEqual(await types('--service', 'db', '--pod', 'default/client'), [synFin]);
    assert.deepEqual(await types('--workload', 'client', '--type', 'tcp-syn-fin'), [synFin]);
    assert.deepEqual(await types('--workload', 'Deployment/db'), []);
    const label = await cli(['events', '--since', '1m', '--label', 'app=api', '--server', api!.url]);
    assert.equal(label.code, 2);
    assert.match(label.err, /the agent refused: label: the history keeps each end's namespace, pod, workload and service, not its labels/);
    // Live, the same filters (and the label) keep the same events.
    const live2 = async (query: string): Promise<string[]> =>
      ((await get(`/api/v1/security-events?${query}`)).body['events'] as { type: string; attacker: { ip: string } }[]).map((x) => `${x.type}@${x.attacker.ip}`);
    assert.deepEqual(await live2('workload=Deployment/api'), [nullScan]);
    assert.deepEqual(await live2('namespace=data'), [synFin]);
    assert.deepEqual(await live2('label=app=db'), [synFin]);
    // The same filters as live; an empty range says so.
    const none = await cli(['events', '--since', '1m', '--severity', 'critical', '--server', api!.url]);
    assert.equal(none.out, 'no security events that match in this range\n');
    const api1 = (await get(`/api/v1/security-events?since=1m&source=${a.ipv4}/32`)).body['events'] as { type: string; attackerIdentity: unknown }[];
    assert.ok(api1.some((x) => x.type === 'tcp-null-scan'));
    assert.deepEqual(api1[0]!.attackerIdentity, { namespace: 'default', pod: 'client', workload: { kind: 'Deployment', name: 'client' } });
  });

  test('bad since and until values are a 400 naming the parameter; the CLI names the flag', async () => {
    for (const [path, param] of [
      ['/api/v1/flows?since=1x', 'since'],
      ['/api/v1/flows?since=1h&until=yesterday', 'until'],
      ['/api/v1/flows?since=10m&until=1h', 'until'],
      ['/api/v1/top?since=soon', 'since'],
      ['/api/v1/top?since=1m&by=rows', 'by'],
      ['/api/v1/top?since=1m&group=pods', 'group'],
      ['/api/v1/top?since=1m&limit=0', 'limit'],
      ['/api/v1/timeseries?since=1h&bucket=0', 'bucket'],
      ['/api/v1/timeseries?since=2d&bucket=1s', 'bucket'],
      ['/api/v1/security-events?until=2026-13-45', 'until'],
      ['/api/v1/flows?since=1m&limit=2000000', 'limit'],
    ] as const) {
      const r = await get(path);
      assert.equal(r.status, 400, path);
      const err = r.body['error'] as { code: string; parameter: string; message: string };
      assert.equal(err.code, 'BAD_PARAMETER', path);
      assert.equal(err.parameter, param, path);
      assert.match(err.message, new RegExp(`^${param}: `), path);
    }
    const detail = (await get('/api/v1/flows?since=1x')).body['error'] as { message: string };
    assert.match(detail.message, /^since: "1x" is not a duration or a time: give a duration back from now \(30s, 10m, 1h, 2d\), "now", or an ISO 8601 time/);
    const r = await cli(['observe', '--since', '1x', '--server', api!.url]);
    assert.equal(r.code, 2);
    assert.match(r.err, /^kubenetprobe: --since: "1x" is not a duration or a time\n {2}hint: give a duration back from now/);
    const order = await cli(['observe', '--since', '10m', '--until', '1h', '--server', api!.url]);
    assert.equal(order.code, 2);
    assert.match(order.err, /--since 10m \(.*\) is not before --until 1h/);
    const follow = await cli(['observe', '--since', '10m', '--follow', '--server', api!.url]);
    assert.equal(follow.code, 2);
    assert.match(follow.err, /--since\/--until and --follow do not go together/);
  });

  test('stats show what the store holds', async () => {
    const s = (await get('/api/v1/stats')).body['history'] as { path: string; available: boolean; inMemory: boolean; flows: number; events: number; dropped: number; recovery: unknown; newest: string };
    assert.equal(s.path, historyPath);
    assert.equal(s.available, true);
    assert.equal(s.inMemory, false);
    assert.ok(s.flows >= 4, `flows ${s.flows}`);
    assert.ok(s.events >= 1);
    assert.equal(s.dropped, 0);
    assert.equal(s.recovery, null);
    assert.ok(Date.now() - Date.parse(s.newest) < 60_000);
    const text = await cli(['stats', '--server', api!.url]);
    assert.match(text.out, new RegExp(`^history +${historyPath.replace(/[.]/g, '\\.')}: \\d+ flow records, \\d+ events, .*; 0 rows lost$`, 'm'));
  });

  test('after a restart, observe --since returns the flows recorded before it', async () => {
    await stopAgent();
    await startAgent();
    assert.ok(existsSync(historyPath));
    const r = await cli(['observe', '--since', '5m', '-o', 'json', '--port', String(FLOW.port), '--interface', a.hostIf, '--server', api!.url]);
    assert.equal(r.code, 0, r.err);
    assert.equal(jsonLines(r.out).reduce((s, l) => s + (l['packets'] as number), 0), FLOW.count);
    assert.equal(agent!.stats().history!.recovery, null);
  });
});

describe('flow history: a corrupt store, and history off', () => {
  test('a store of random bytes is moved aside; the agent starts with a new one, says so, and history works', async () => {
    const net = TestNet.create(2, { ipv6: false });
    const dir = mkdtempSync(join(tmpdir(), 'knp-history-corrupt-'));
    const path = join(dir, 'history.duckdb');
    writeFileSync(path, randomBytes(256 * 1024));
    const child = spawn(
      process.execPath,
      [CLI, 'agent', '--interface', `kv${net.id}*`, '--listen', '127.0.0.1:0', '--interval-ms', '100', '--idle-timeout-ms', '400', '--history', path],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    try {
      await waitFor('the agent to start', () => out.includes('API at'), 20_000);
      const url = /API at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!;
      const aside = readdirSync(dir).filter((f) => f.startsWith('history.duckdb.corrupt-'));
      assert.equal(aside.length, 1, readdirSync(dir).join(' '));
      assert.match(err, new RegExp(`kubenetprobe agent: history: store ${path.replace(/[.]/g, '\\.')} was unusable \\(.*\\); moved it to ${join(dir, aside[0]!).replace(/[.]/g, '\\.')} and started an empty one`));
      assert.doesNotMatch(err, /\n\s+at /, 'no stack trace');
      assert.match(out, new RegExp(`history in ${path.replace(/[.]/g, '\\.')}: 0 flow records and 0 events kept`));
      const stats = (await (await fetch(`${url}/api/v1/stats`)).json()) as { history: { recovery: { action: string; movedTo: string[] }; inMemory: boolean } };
      assert.equal(stats.history.recovery.action, 'moved-aside');
      assert.deepEqual(stats.history.recovery.movedTo, [join(dir, aside[0]!)]);
      assert.equal(stats.history.inMemory, false);

      // A second agent on the same file (locked by the first) keeps its history in memory, and says so.
      const second = await Agent.start(loadConfig({ flags: { interface: ['kvnone*'], history: path } }));
      try {
        const h = second.stats().history!;
        assert.equal(h.inMemory, true);
        assert.equal(h.available, true);
        assert.equal(h.recovery?.action, 'in-memory');
        assert.match(second.startNotices().join('\n'), /history: store .* not used: it is locked by another process .*; keeping history in memory until restart/);
      } finally {
        await second.close();
      }

      const a = net.pod('a');
      const b = net.pod('b');
      net.traffic(a, ['udp-send', b.ipv4, '6411', '77', '30', '49411']);
      let lines: Record<string, unknown>[] = [];
      await waitFor('the final record in history', () => {
        void cli(['observe', '--since', '1m', '-o', 'json', '--port', '6411', '--interface', a.hostIf, '--server', url]).then((r) => (lines = jsonLines(r.out)));
        return lines.some((l) => l['record'] === 'final');
      }, 10_000);
      assert.equal(lines.reduce((s, l) => s + (l['packets'] as number), 0), 77);
    } finally {
      child.kill('SIGTERM');
      const code = await exited;
      const left = net.pods.filter((p) => !nothingAttached(attachedTo(p.hostIf))).map((p) => p.hostIf);
      await net.close();
      rmSync(dir, { recursive: true, force: true });
      assert.equal(code, 0, err);
      assert.deepEqual(left, []);
    }
  });

  test('with history off, --since and since= say how to turn it on', async () => {
    // No interfaces needed: the API answers without any.
    const agent = await Agent.start(loadConfig({ flags: { interface: ['kvnone*'], intervalMs: 100 } }));
    const api = await startApiServer(agent, { host: '127.0.0.1', port: 0 });
    try {
      assert.equal(agent.stats().history, null);
      for (const path of ['/api/v1/flows?since=1m', '/api/v1/top', '/api/v1/timeseries?since=10m', '/api/v1/security-events?since=1h']) {
        const r = await fetch(`${api.url}${path}`);
        assert.equal(r.status, 409, path);
        const body = (await r.json()) as { error: { code: string; message: string } };
        assert.equal(body.error.code, 'HISTORY_OFF');
        assert.match(body.error.message, /^history is off; start the agent with --history PATH/);
      }
      // A bad value is still a bad value.
      assert.equal((await fetch(`${api.url}/api/v1/flows?since=later`)).status, 400);
      // Without since/until, nothing changes.
      assert.equal((await fetch(`${api.url}/api/v1/flows`)).status, 200);
      for (const args of [['observe', '--since', '1h'], ['top', '--since', '1h'], ['events', '--since', '1h', '--until', '10m']]) {
        const r = await cli([...args, '--server', api.url]);
        assert.equal(r.code, 2, args.join(' '));
        assert.match(r.err, /^kubenetprobe: the agent refused: history is off; start the agent with --history PATH/, args.join(' '));
      }
      const stats = await cli(['stats', '--server', api.url]);
      assert.match(stats.out, /^history +off \(start the agent with --history PATH/m);
    } finally {
      await api.close();
      await agent.close();
    }
  });
});
