/**
 * The security side of the HTTP API against a running agent on a node in
 * namespaces: recent security events with filters, martian sources on the
 * interfaces the config names, manual blocks that drop frames and lift,
 * detector thresholds changed at run time, the live stream's block and
 * lost events, and errors that name what is wrong.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../src/agent/agent.js';
import { loadConfig } from '../src/agent/config.js';
import { startApiServer, type ApiServer } from '../src/api/server.js';
import { TestNet, type Pod } from './helpers/testnet.js';
import { sleep, waitFor } from './helpers/attached.js';
import { TCP, ethernet, ipv4, mac, tcp, udp } from '../tools/frames.js';

interface Wire {
  status: number;
  body: Record<string, unknown>;
}

interface EventWire {
  type: string;
  severity: string;
  attacker: { ip: string; port: number };
  target: { ip: string; port: number };
  attackerIdentity: unknown;
  targetIdentity: unknown;
  interface: string;
  count: number;
  threshold: number;
  windowMs: number;
  seq: string;
}

interface BlockWire {
  ip: string;
  reason: string;
  createdAt: string;
  expiresAt?: string;
  packetsDropped: number;
}

/** Reads a server-sent-event stream into a list of [event, data] as it comes. */
class Stream {
  readonly events: [string, Record<string, unknown>][] = [];
  private readonly ctl = new AbortController();
  private done: Promise<void> = Promise.resolve();

  static async open(url: string): Promise<Stream> {
    const s = new Stream();
    const r = await fetch(url, { signal: s.ctl.signal });
    assert.equal(r.status, 200, `${url}: ${r.status}`);
    const reader = r.body!.getReader();
    s.done = (async () => {
      let buf = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buf += Buffer.from(value).toString();
          let end: number;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
            const data = /^data: (.*)$/m.exec(block)?.[1] ?? '{}';
            s.events.push([event, JSON.parse(data) as Record<string, unknown>]);
          }
        }
      } catch {
        /* aborted */
      }
    })();
    await waitFor('the stream to say hello', () => s.events.some(([e]) => e === 'hello'), 3000);
    return s;
  }

  of(kind: string): Record<string, unknown>[] {
    return this.events.filter(([e]) => e === kind).map(([, d]) => d);
  }

  async close(): Promise<void> {
    this.ctl.abort();
    await this.done;
  }
}

describe('HTTP API: security events, blocks, detectors', () => {
  let net: TestNet;
  let agent: Agent;
  let api: ApiServer;
  let a: Pod;
  let b: Pod;
  let c: Pod;
  let dir: string | undefined;
  /** Frames from one pod to another, with the pods' own MACs. */
  let frame: (from: Pod, to: Pod, l4: Parameters<typeof ipv4>[2], src?: string) => Buffer;

  before(async () => {
    net = TestNet.create(3, { ipv6: false });
    a = net.pod('a');
    b = net.pod('b');
    c = net.pod('c');
    const macs = new Map(net.pods.map((p) => [p.name, mac(net.mac(p))]));
    frame = (from, to, l4, src = from.ipv4) => ethernet(macs.get(to.name)!, macs.get(from.name)!, ipv4(src, to.ipv4, l4));
    dir = mkdtempSync(join(tmpdir(), 'knp-security-api-'));
    const inventory = join(dir, 'inventory.json');
    writeFileSync(
      inventory,
      JSON.stringify({
        pods: [
          { name: 'attacker', namespace: 'default', labels: {}, ip: a.ipv4, workload: { kind: 'Pod', name: 'attacker' } },
          { name: 'db-0', namespace: 'data', labels: { app: 'db' }, ip: c.ipv4, workload: { kind: 'StatefulSet', name: 'db' }, service: 'db' },
        ],
      }),
    );
    agent = await Agent.start(
      loadConfig({
        flags: {
          interface: [`kv${net.id}*`],
          intervalMs: 100,
          packetSampleRate: 0,
          inventory,
          // Pod c may never be blocked; martian sources count on pod a's veth only.
          allowlist: [`${c.ipv4}/32`],
          martians: [a.hostIf],
          blockTtlMs: 120000,
          // One page: 24 events fit, so the loss test below can overflow it.
          securityEventRingBytes: 4096,
          // No per-source rate limit: every crafted packet is its own event.
          detectors: { eventIntervalMs: 0 },
        },
      }),
    );
    api = await startApiServer(agent, { host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await api?.close();
    await agent?.close();
    await net?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Wire> => {
    const init: RequestInit = { method, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers } };
    if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
    const r = await fetch(`${api.url}${path}`, init);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const get = (path: string): Promise<Wire> => call('GET', path);
  const events = async (query = ''): Promise<EventWire[]> => {
    const r = await get(`/api/v1/security-events${query ? `?${query}` : ''}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body['events'] as EventWire[];
  };
  const badParameter = (r: Wire, param: string, message: RegExp): void => {
    assert.equal(r.status, 400, JSON.stringify(r.body));
    const err = r.body['error'] as { code: string; parameter: string; message: string };
    assert.equal(err.code, 'BAD_PARAMETER');
    assert.equal(err.parameter, param);
    assert.match(err.message, message);
  };

  test('GET /api/v1/security-events: recent events, filtered by type, severity (at least) and source', async () => {
    // A NULL probe from a to b (medium), a SYN+FIN from b to a (high).
    net.rawSend(a, 1, [frame(a, b, tcp(52000, 23, 0))]);
    net.rawSend(b, 1, [frame(b, a, tcp(52001, 80, TCP.SYN | TCP.FIN))]);
    await waitFor('two security events', () => agent.recentSecurityEvents().length >= 2, 3000);
    await sleep(100);

    const all = await events();
    assert.deepEqual(all.map((e) => e.type), ['tcp-null-scan', 'tcp-syn-fin']);
    const nul = all[0]!;
    assert.deepEqual(
      { severity: nul.severity, attacker: nul.attacker, target: nul.target, interface: nul.interface, count: nul.count, threshold: nul.threshold, windowMs: nul.windowMs },
      { severity: 'medium', attacker: { ip: a.ipv4, port: 52000 }, target: { ip: b.ipv4, port: 23 }, interface: a.hostIf, count: 1, threshold: 1, windowMs: 0 },
    );
    assert.deepEqual(nul.attackerIdentity, { namespace: 'default', pod: 'attacker', labels: {}, workload: { kind: 'Pod', name: 'attacker' } }, 'pod identity from the inventory');
    assert.equal(nul.targetIdentity, null);
    assert.equal(typeof nul.seq, 'string', 'sequence numbers as strings (64-bit)');
    assert.deepEqual(all[1]!.attacker, { ip: b.ipv4, port: 52001 });
    assert.equal(all[1]!.severity, 'high');

    const types = async (q: string): Promise<string[]> => (await events(q)).map((e) => e.type);
    assert.deepEqual(await types('type=tcp-null-scan'), ['tcp-null-scan']);
    assert.deepEqual(await types('type=tcp-syn-fin,tcp-null-scan'), ['tcp-null-scan', 'tcp-syn-fin']);
    assert.deepEqual(await types('type=syn-flood'), []);
    assert.deepEqual(await types('severity=medium'), ['tcp-null-scan', 'tcp-syn-fin'], 'medium and above');
    assert.deepEqual(await types('severity=high'), ['tcp-syn-fin']);
    assert.deepEqual(await types('severity=critical'), []);
    assert.deepEqual(await types(`source=${b.ipv4}`), ['tcp-syn-fin']);
    assert.deepEqual(await types(`source=${a.ipv4}/32&severity=low`), ['tcp-null-scan']);
    assert.deepEqual(await types(`source=${a.ipv4.replace(/\.\d+$/, '.0')}/24`), ['tcp-null-scan', 'tcp-syn-fin']);
    assert.deepEqual(await types('limit=1'), ['tcp-syn-fin'], 'the newest');
    // By identity: a (default/attacker, Pod/attacker) is the attacker of one and the target of the other; b is no known pod, c not in either.
    assert.deepEqual(await types('namespace=default'), ['tcp-null-scan', 'tcp-syn-fin']);
    assert.deepEqual(await types('workload=Pod/attacker&type=tcp-syn-fin'), ['tcp-syn-fin']);
    assert.deepEqual(await types('pod=default/attacker&source=' + b.ipv4), ['tcp-syn-fin'], 'a as the target');
    assert.deepEqual(await types('namespace=data'), []);
    assert.deepEqual(await types('workload=StatefulSet/db'), []);
    assert.deepEqual(await types('service=db'), []);
    assert.deepEqual(await types('label=app=db'), []);
    assert.equal((await get('/api/v1/security-events')).body['lost'], 0);
  });

  test('martian sources are reported on the interfaces the config names, and only there', async () => {
    net.rawSend(a, 1, [frame(a, b, udp(4000, 53), '127.0.0.1')]);
    net.rawSend(b, 1, [frame(b, a, udp(4001, 53), '127.0.0.2')]);
    await waitFor('the martian', () => agent.recentSecurityEvents({ types: ['martian-source'] }).length >= 1, 3000);
    await sleep(300);
    const m = await events('type=martian-source');
    assert.equal(m.length, 1, 'from a (martians on), not from b (off)');
    assert.deepEqual({ attacker: m[0]!.attacker, target: m[0]!.target, interface: m[0]!.interface }, { attacker: { ip: '127.0.0.1', port: 4000 }, target: { ip: b.ipv4, port: 53 }, interface: a.hostIf });
    const stats = (await get('/api/v1/stats')).body as { interfaces: { name: string; notes: string[] }[] };
    assert.ok(stats.interfaces.find((i) => i.name === a.hostIf)!.notes.includes('martian sources reported here'));
    assert.ok(!stats.interfaces.find((i) => i.name === b.hostIf)!.notes.includes('martian sources reported here'));
  });

  test('POST /api/v1/blocks blocks a source: GET lists it, its frames are dropped and counted, DELETE lifts it', async () => {
    assert.deepEqual((await get('/api/v1/blocks')).body, { blocks: [] });
    const t0 = Date.now();
    const posted = await call('POST', '/api/v1/blocks', { ip: a.ipv4, ttlMs: 60000 });
    assert.equal(posted.status, 201, JSON.stringify(posted.body));
    const block = posted.body['block'] as BlockWire;
    assert.equal(block.ip, a.ipv4);
    assert.equal(block.reason, 'manual');
    assert.equal(block.packetsDropped, 0);
    const ttl = Date.parse(block.expiresAt!) - Date.parse(block.createdAt);
    assert.ok(ttl >= 59_990 && ttl <= 60_010, `expires 60 s after it was made (${ttl} ms)`);
    assert.ok(Math.abs(Date.parse(block.createdAt) - t0) < 2000);

    const listed = (await get('/api/v1/blocks')).body['blocks'] as BlockWire[];
    assert.deepEqual(listed.map((x) => [x.ip, x.reason]), [[a.ipv4, 'manual']]);

    // Ten datagrams from a: dropped at a's veth, counted on the block.
    // (Nothing is sent to a here: its answers, such as ICMP port
    // unreachable, would be dropped and counted too.)
    const parsedAtB = (): number => agent.stats().interfaces.find((i) => i.name === b.hostIf)?.counters['tc-egress']?.packets.parsed ?? 0;
    const toB = parsedAtB();
    net.rawSend(a, 10, [frame(a, b, udp(40000, 7000))]);
    await sleep(100);
    assert.equal(parsedAtB() - toB, 0, 'none reached b');
    assert.equal(((await get('/api/v1/blocks')).body['blocks'] as BlockWire[])[0]!.packetsDropped, 10);
    const stats = (await get('/api/v1/stats')).body as { blocks: { active: number; packetsDropped: number }; security: { mode: string } };
    assert.deepEqual(stats.blocks, { active: 1, packetsDropped: 10, insertFailed: 0 });
    assert.equal(stats.security.mode, 'audit', 'a block by hand needs no enforce mode');

    const lifted = await call('DELETE', `/api/v1/blocks/${a.ipv4}`);
    assert.equal(lifted.status, 200);
    assert.deepEqual({ ip: (lifted.body['block'] as BlockWire).ip, dropped: (lifted.body['block'] as BlockWire).packetsDropped }, { ip: a.ipv4, dropped: 10 });
    assert.deepEqual((await get('/api/v1/blocks')).body, { blocks: [] });
    const again = await call('DELETE', `/api/v1/blocks/${a.ipv4}`);
    assert.equal(again.status, 404);
    assert.deepEqual(again.body, { error: { code: 'NOT_BLOCKED', message: `${a.ipv4} is not blocked` } });

    // IPv6, until lifted.
    const v6 = await call('POST', '/api/v1/blocks', { ip: 'fd00:0:0::7', ttlMs: 0 });
    assert.equal(v6.status, 201);
    assert.deepEqual({ ip: (v6.body['block'] as BlockWire).ip, expiresAt: (v6.body['block'] as BlockWire).expiresAt }, { ip: 'fd00::7', expiresAt: undefined });
    assert.equal((await call('DELETE', `/api/v1/blocks/${encodeURIComponent('fd00::7')}`)).status, 200);

    const history = (await get('/api/v1/blocks/history')).body['changes'] as { action: string; cause: string; block: BlockWire }[];
    assert.deepEqual(
      history.map((h) => [h.action, h.cause, h.block.ip]),
      [
        ['blocked', 'manual', a.ipv4],
        ['unblocked', 'manual', a.ipv4],
        ['blocked', 'manual', 'fd00::7'],
        ['unblocked', 'manual', 'fd00::7'],
      ],
    );
    assert.equal(((await get('/api/v1/blocks/history?limit=1')).body['changes'] as unknown[]).length, 1);
  });

  test('blocks: bad requests are refused, naming what is wrong', async () => {
    badParameter(await call('POST', '/api/v1/blocks', { ip: 'nope' }), 'ip', /^ip: not an IP address: "nope"/);
    badParameter(await call('POST', '/api/v1/blocks', { ip: '198.18.0.300' }), 'ip', /^ip: not an IP address/);
    badParameter(await call('POST', '/api/v1/blocks', {}), 'ip', /^ip: missing/);
    badParameter(await call('POST', '/api/v1/blocks', { ip: 42 }), 'ip', /^ip: not an IP address: 42/);
    badParameter(await call('POST', '/api/v1/blocks', { ip: a.ipv4, ttlMs: -1 }), 'ttlMs', /^ttlMs: must be a whole number of milliseconds from 0/);
    badParameter(await call('POST', '/api/v1/blocks', { ip: a.ipv4, ttlMs: '60s' }), 'ttlMs', /^ttlMs: must be a number of milliseconds, got "60s"/);
    badParameter(await call('POST', '/api/v1/blocks', { ip: a.ipv4, reason: 'x' }), 'reason', /^reason: unknown field \(ip, ttlMs\)/);
    badParameter(await call('POST', '/api/v1/blocks', '{"ip": '), 'body', /^body: not JSON/);
    badParameter(await call('POST', '/api/v1/blocks', [a.ipv4]), 'body', /^body: must be a JSON object/);
    badParameter(await call('POST', '/api/v1/blocks', { ip: c.ipv4 }), 'ip', new RegExp(`^ip: ${c.ipv4.replace(/\./g, '\\.')} is on the allowlist, whose sources are never blocked`));
    badParameter(await call('DELETE', '/api/v1/blocks/not-an-ip'), 'ip', /^ip: not an IP address: "not-an-ip"/);
    badParameter(await get('/api/v1/blocks?all=1'), 'all', /^all: unknown parameter/);
    const form = await call('POST', '/api/v1/blocks', 'ip=1.2.3.4', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(form.status, 415);
    assert.equal((form.body['error'] as { code: string }).code, 'UNSUPPORTED_MEDIA_TYPE');
    const page = await call('POST', '/api/v1/blocks', { ip: '203.0.113.5' }, { origin: 'http://example.com' });
    assert.equal(page.status, 403, 'a web page may not block addresses');
    assert.equal((page.body['error'] as { code: string }).code, 'FORBIDDEN');
    assert.equal((await call('DELETE', `/api/v1/blocks/${a.ipv4}`, undefined, { origin: 'http://example.com' })).status, 403);
    assert.equal((await call('POST', '/api/v1/blocks', { ip: '203.0.113.5', pad: 'x'.repeat(20000) })).status, 413);
    assert.deepEqual((await get('/api/v1/blocks')).body, { blocks: [] }, 'none of them blocked anything');
  });

  test('GET and PATCH /api/v1/detectors: thresholds change at run time, in the kernel', async () => {
    const before = (await get('/api/v1/detectors')).body['detectors'] as Record<string, unknown>;
    assert.equal(before['portScanPorts'], 20);
    assert.equal(before['mode'], 'audit');
    assert.equal(before['blockTtlMs'], 120000, 'from the config');
    assert.equal(before['eventIntervalMs'], 0, 'from the config');
    assert.deepEqual(before['enforce'], ['tcp-port-scan', 'udp-port-scan', 'ping-sweep', 'syn-flood', 'icmp-flood']);

    const patched = await call('PATCH', '/api/v1/detectors', { portScanPorts: 5 });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal((patched.body['detectors'] as Record<string, unknown>)['portScanPorts'], 5);
    const now = (await get('/api/v1/detectors')).body['detectors'] as Record<string, unknown>;
    assert.deepEqual(now, { ...before, portScanPorts: 5 }, 'that one field changed');

    // Five SYN probes from c to five ports of b cross the new threshold.
    net.rawSend(c, 1, [1001, 1002, 1003, 1004, 1005].map((port) => frame(c, b, tcp(53000, port, TCP.SYN))));
    await waitFor('the port scan', () => agent.recentSecurityEvents({ types: ['tcp-port-scan'] }).length >= 1, 3000);
    const scan = (await events('type=tcp-port-scan'))[0]!;
    assert.deepEqual({ attacker: scan.attacker.ip, target: scan.target.ip, count: scan.count, threshold: scan.threshold, windowMs: scan.windowMs }, { attacker: c.ipv4, target: b.ipv4, count: 5, threshold: 5, windowMs: 1000 });

    badParameter(await call('PATCH', '/api/v1/detectors', { portScanPorts: 0 }), 'portScanPorts', /^portScanPorts: must be an integer from 1 to 512, got 0/);
    badParameter(await call('PATCH', '/api/v1/detectors', { mode: 'block' }), 'mode', /^mode: must be audit or enforce/);
    badParameter(await call('PATCH', '/api/v1/detectors', { enforce: ['teleport'] }), 'enforce', /^enforce: unknown detector "teleport"/);
    badParameter(await call('PATCH', '/api/v1/detectors', { portScanPort: 30 }), 'portScanPort', /^portScanPort: not a detector setting/);
    badParameter(await call('PATCH', '/api/v1/detectors', [1]), 'body', /^body: must be a JSON object/);
    assert.equal(((await get('/api/v1/detectors')).body['detectors'] as Record<string, unknown>)['portScanPorts'], 5, 'a refused change changes nothing');
    assert.equal((await call('PATCH', '/api/v1/detectors', { portScanPorts: 20 })).status, 200);
  });

  test('security-events: a bad query parameter is a 400 that names it', async () => {
    badParameter(await get('/api/v1/security-events?type=port-knock'), 'type', /^type: not a security event type: "port-knock"/);
    badParameter(await get('/api/v1/security-events?severity=urgent'), 'severity', /^severity: must be info, low, medium, high, critical/);
    badParameter(await get('/api/v1/security-events?source=1.2.3'), 'source', /^source: not an IP address or CIDR block/);
    badParameter(await get('/api/v1/security-events?limit=0'), 'limit', /^limit: /);
    badParameter(await get('/api/v1/security-events?port=80'), 'port', /^port: unknown parameter \(type, severity, source, namespace, pod, workload, service, label, limit, since, until\)/);
    badParameter(await get('/api/v1/security-events?workload=a/b/c'), 'workload', /^workload: not a workload name or kind\/name/);
    badParameter(await get('/api/v1/security-events?namespace=Default'), 'namespace', /^namespace: not a namespace name/);
    badParameter(await get('/api/v1/security-events?label=app'), 'label', /^label: not key=value/);
    badParameter(await get('/api/v1/events?kinds=flow,packets'), 'kinds', /^kinds: "packets" is not a kind of event \(flow, security, block, lost\)/);
    badParameter(await get('/api/v1/events?severity=urgent'), 'severity', /^severity: /);
    badParameter(await get('/api/v1/events?colour=red'), 'colour', /^colour: unknown parameter/);
  });

  test('GET /api/v1/events streams blocks, their expiry, and security events, filtered', async () => {
    const stream = await Stream.open(`${api.url}/api/v1/events?kinds=security,block&source=203.0.113.0/24`);
    const other = await Stream.open(`${api.url}/api/v1/events?kinds=block&ip=203.0.113.99`);
    // By identity: the attacker or the target is such a pod.
    const fromDefault = await Stream.open(`${api.url}/api/v1/events?kinds=security&workload=Pod/attacker&type=tcp-null-scan`);
    const ofData = await Stream.open(`${api.url}/api/v1/events?kinds=security&namespace=data`);
    try {
      assert.equal((await call('POST', '/api/v1/blocks', { ip: '203.0.113.7', ttlMs: 1000 })).status, 201);
      net.rawSend(a, 1, [frame(a, b, tcp(52002, 23, 0))]);
      await waitFor('the expiry', () => stream.of('block').length >= 2, 4000);
      const [blocked, expired] = stream.of('block') as { action: string; cause: string; block: BlockWire; at: string }[];
      assert.deepEqual([blocked!.action, blocked!.cause, blocked!.block.ip], ['blocked', 'manual', '203.0.113.7']);
      assert.deepEqual([expired!.action, expired!.cause, expired!.block.ip], ['unblocked', 'expired', '203.0.113.7']);
      const late = Date.parse(expired!.at) - Date.parse(blocked!.block.expiresAt!);
      assert.ok(late >= -50 && late <= 1500, `the expiry is reported within a second and a half of it (${late} ms)`);
      assert.deepEqual(stream.of('security'), [], "a's NULL probe is not from 203.0.113.0/24");
      assert.deepEqual(other.of('block'), [], 'not the address asked for');
      await waitFor("a's probe on the identity stream", () => fromDefault.of('security').length >= 1, 3000);
      const probes = fromDefault.of('security') as unknown as EventWire[];
      assert.deepEqual(probes.map((e) => [e.type, e.attacker.ip, e.target.port]), [['tcp-null-scan', a.ipv4, 23]]);
      assert.deepEqual(ofData.of('security'), [], 'neither end is in data');
      assert.deepEqual(((await get('/api/v1/blocks')).body['blocks'] as unknown[]), []);
    } finally {
      await stream.close();
      await other.close();
      await fromDefault.close();
      await ofData.close();
    }
  });

  test('lost security events reach the live stream as their own event, with the exact count, and the stats', async () => {
    const stream = await Stream.open(`${api.url}/api/v1/events?kinds=lost,security&source=${a.ipv4}`);
    try {
      const before = agent.recentSecurityEvents().length;
      // 100 NULL probes pinned to CPU 0 while this process (the agent) is
      // blocked in execFileSync: the one-page ring keeps 24, 76 are lost.
      const nullProbe = frame(a, b, tcp(51000, 22, 0));
      net.exec(a, 'taskset', ['-c', '0', process.execPath, ...net.rawSendArgs(100, [nullProbe])]);
      await waitFor('the loss report', () => stream.of('lost').length >= 1, 3000);
      await sleep(1200);
      const lost = stream.of('lost') as { ring: string; count: number; total: number; at: string }[];
      assert.deepEqual(lost.map((l) => [l.ring, l.count, l.total]), [['security', 76, 76]]);
      assert.equal(stream.of('security').length, 24);
      assert.equal(agent.recentSecurityEvents().length - before, 24);
      const stats = (await get('/api/v1/stats')).body as { security: { dropped: number; sent: number }; lost: { securityEvents: number } };
      assert.equal(stats.security.dropped, 76);
      assert.equal(stats.lost.securityEvents, 76);
      assert.equal((await get('/api/v1/security-events?limit=1')).body['lost'], 76);
      assert.deepEqual(agent.recentLost().map((l) => [l.ring, l.count]), [['security', 76]]);
    } finally {
      await stream.close();
    }
  });
});
