/**
 * The HTTP API against a running agent on a node in namespaces: filters
 * with exact counts, a live event stream, health, and errors that name
 * what is wrong.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../src/agent/agent.js';
import { loadConfig } from '../src/agent/config.js';
import { startApiServer, type ApiServer } from '../src/api/server.js';
import { KubeNetProbeError } from '../src/errors.js';
import { TestNet, type Pod } from './helpers/testnet.js';
import { sleep, waitFor } from './helpers/attached.js';
import { ethernet, ipv4, mac, tcp } from '../tools/frames.js';

describe('HTTP API', () => {
  let net: TestNet;
  let agent: Agent;
  let api: ApiServer;
  let a: Pod;
  let b: Pod;
  let dir: string | undefined;

  before(async () => {
    net = TestNet.create(2, { ipv6: false });
    a = net.pod('a');
    b = net.pod('b');
    dir = mkdtempSync(join(tmpdir(), 'knp-api-'));
    const inventory = join(dir, 'inventory.json');
    writeFileSync(inventory, JSON.stringify({ pods: [
      { name: 'client', namespace: 'default', labels: { app: 'client' }, ip: a.ipv4 },
      { name: 'server', namespace: 'shop', labels: { app: 'server' }, ip: b.ipv4 },
    ] }));
    agent = await Agent.start(loadConfig({ flags: { interface: [`kv${net.id}*`], intervalMs: 100, packetSampleRate: '0', inventory } }));
    api = await startApiServer(agent, { host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await api?.close();
    await agent?.close();
    await net?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const get = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await fetch(`${api.url}${path}`);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  test('health, readiness, and loopback by default', async () => {
    assert.match(api.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await get('/healthz')).status, 200);
    await waitFor('ready', () => agent.ready, 3000);
    assert.deepEqual((await get('/readyz')).body, { status: 'ready' });
  });

  test('GET /api/v1/flows with each filter returns exactly the known flow', async () => {
    net.traffic(a, ['udp-send', b.ipv4, '6201', '40', '60', '49001']);
    await sleep(300);
    const want = { packets: 40, bytes: 40 * (20 + 8 + 60) };
    const q = async (query: string) => ((await get(`/api/v1/flows?${query}`)).body['flows'] as { packets: number; bytes: number; interface: string; key: { direction: string } }[]);
    for (const query of [`port=6201&interface=${a.hostIf}`, `ip=${b.ipv4}&port=6201&direction=ingress`, `cidr=${a.ipv4}/32&protocol=udp&port=6201`]) {
      const flows = await q(query);
      assert.equal(flows.length, 1, query);
      assert.deepEqual({ packets: flows[0]!.packets, bytes: flows[0]!.bytes }, want, query);
    }
    // Counted once per node, at a's veth where it entered: not again at b's on its way out.
    assert.equal((await q('port=6201')).length, 1, 'one flow');
    assert.equal((await q('port=6201&direction=egress')).length, 0);
    assert.equal((await q(`port=6201&interface=${b.hostIf}`)).length, 0);
    // Identity from the inventory: filters and names.
    assert.equal((await q('port=6201&pod=shop/server')).length, 1);
    assert.equal((await q('port=6201&pod=server&interface=' + a.hostIf)).length, 1);
    assert.equal((await q('port=6201&namespace=default')).length, 1);
    assert.equal((await q('port=6201&namespace=kube-system')).length, 0);
    const named = (await get(`/api/v1/flows?port=6201&interface=${a.hostIf}`)).body['flows'] as { source: unknown; destination: unknown }[];
    assert.deepEqual(named[0]!.source, { namespace: 'default', pod: 'client', labels: { app: 'client' } });
    assert.deepEqual(named[0]!.destination, { namespace: 'shop', pod: 'server', labels: { app: 'server' } });
    assert.equal((await q('port=6201&protocol=tcp')).length, 0);
    const conv = (await get('/api/v1/conversations?port=6201')).body['conversations'] as { aToB: { packets: number } }[];
    assert.equal(conv.length, 1);
    assert.equal(conv[0]!.aToB.packets, 40);
  });

  test('GET /api/v1/stats: interfaces, table fill, loss and coverage', async () => {
    const s = (await get('/api/v1/stats')).body as { interfaces: { name: string; attached: boolean }[]; flowTable: { capacity: number }; coverage: { ratio: number }; lost: object };
    assert.deepEqual(s.interfaces.filter((i) => i.attached).map((i) => i.name).sort(), [a.hostIf, b.hostIf]);
    assert.equal(s.flowTable.capacity, 65536);
    assert.equal(s.coverage.ratio, 1);
    assert.ok('packetEvents' in s.lost);
  });

  test('GET /api/v1/events streams security events live', async () => {
    const ctl = new AbortController();
    const r = await fetch(`${api.url}/api/v1/events?ip=${a.ipv4}`, { signal: ctl.signal });
    assert.equal(r.headers.get('content-type'), 'text/event-stream');
    const reader = r.body!.getReader();
    let text = '';
    const readUntil = async (re: RegExp) => {
      const end = Date.now() + 5000;
      while (!re.test(text) && Date.now() < end) {
        const { value, done } = await Promise.race([reader.read(), sleep(500).then(() => ({ value: undefined, done: false }))]);
        if (done) break;
        if (value) text += Buffer.from(value).toString();
      }
    };
    await readUntil(/event: hello/);
    net.rawSend(a, 1, [ethernet(mac(net.mac(b)), mac(net.mac(a)), ipv4(a.ipv4, b.ipv4, tcp(52000, 23, 0)))]);
    await readUntil(/event: security\ndata: .*tcp-null-scan/);
    ctl.abort();
    assert.match(text, /event: security\ndata: \{[^\n]*"type":"tcp-null-scan"[^\n]*"attacker":\{"ip":"198\.18\.\d+\.1","port":52000\}/);
  });

  test('a bad query parameter is a 400 that names it', async () => {
    for (const [query, param] of [
      ['port=99999', 'port'],
      ['cidr=10.0.0.0/40', 'cidr'],
      ['direction=sideways', 'direction'],
      ['limit=0', 'limit'],
      ['colour=red', 'colour'],
      ['namespace=Not_A_Name', 'namespace'],
      ['pod=a/b/c', 'pod'],
    ]) {
      const r = await get(`/api/v1/flows?${query}`);
      assert.equal(r.status, 400, query);
      const err = r.body['error'] as { code: string; parameter: string; message: string };
      assert.equal(err.code, 'BAD_PARAMETER');
      assert.equal(err.parameter, param);
      assert.match(err.message, new RegExp(`^${param}: `));
    }
    assert.equal((await get('/api/v1/nope')).status, 404);
  });

  test('a port that is already taken is a clear start-up error', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      await assert.rejects(startApiServer(agent, { host: '127.0.0.1', port }), (err: unknown) => {
        assert.ok(err instanceof KubeNetProbeError);
        assert.match(err.message, new RegExp(`listen 127\\.0\\.0\\.1:${port}: the port is in use`));
        assert.match(err.message, /hint: stop what uses it, or choose another with --listen HOST:PORT/);
        return true;
      });
    } finally {
      blocker.close();
    }
  });
});
