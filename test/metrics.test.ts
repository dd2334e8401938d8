/**
 * Prometheus metrics against a real Prometheus server (Debian's, started on
 * loopback by the test) scraping a real agent on a node in namespaces:
 * counters grow by exactly the traffic sent, scans appear by type, a deleted
 * pod's series leave /metrics; and 500 pods stay within the series budget.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from '../src/agent/agent.js';
import { loadConfig } from '../src/agent/config.js';
import { startApiServer } from '../src/api/server.js';
import { TestNet, sh } from './helpers/testnet.js';
import { sleep, waitFor } from './helpers/attached.js';
import { ethernet, ipv4, mac, udp } from '../tools/frames.js';
import { freePort } from './helpers/free-port.js';

const RAWSEND = fileURLToPath(new URL('../../tools/rawsend.mjs', import.meta.url));
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));


/**
 * Debian's Prometheus on loopback, scraping `target` every second (job knp),
 * and again with ?namespace=shop (job knp-shop, as a user scopes a scrape);
 * stopped and its data removed by stop().
 */
async function startPrometheus(target: string, dir: string): Promise<{ query: (q: string) => Promise<{ metric: Record<string, string>; value: [number, string] }[]>; stop: () => Promise<void> }> {
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(config, [
    'global:', '  scrape_interval: 1s', 'scrape_configs:',
    '  - job_name: knp', '    static_configs:', `      - targets: ['${target}']`,
    '  - job_name: knp-shop', '    params:', "      namespace: ['shop']", '    static_configs:', `      - targets: ['${target}']`,
    '',
  ].join('\n'));
  const child: ChildProcess = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
  const base = `http://127.0.0.1:${port}`;
  const query = async (q: string) => {
    const r = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = (await r.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    if (body.status !== 'success') throw new Error(`query ${q}: ${JSON.stringify(body)}`);
    return body.data.result;
  };
  let up = false;
  await waitFor('Prometheus up and scraping the agent', () => {
    void query('up{job="knp"}').then((r) => (up = r[0]?.value[1] === '1')).catch(() => {});
    return up;
  }, 20000);
  return {
    query,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

test('Prometheus sees exactly the traffic sent, scans by type, and a deleted pod\'s series go', async () => {
  const net = TestNet.create(3, { ipv6: false });
  const dir = mkdtempSync(join(tmpdir(), 'knp-metrics-'));
  const [a, b, c] = [net.pod('a'), net.pod('b'), net.pod('c')];
  const inventory = join(dir, 'inventory.json');
  const pods = (withC: boolean) => ({
    pods: [
      { name: 'client', namespace: 'default', labels: { app: 'loadgen' }, ip: a.ipv4, workload: { kind: 'Deployment', name: 'loadgen' } },
      { name: 'server', namespace: 'shop', labels: { app: 'db' }, ip: b.ipv4, workload: { kind: 'StatefulSet', name: 'db' }, service: 'db' },
      ...(withC ? [{ name: 'doomed', namespace: 'batch', labels: {}, ip: c.ipv4, workload: { kind: 'Job', name: 'cleanup' } }] : []),
    ],
  });
  writeFileSync(inventory, JSON.stringify(pods(true)));
  const agent = await Agent.start(loadConfig({ flags: { interface: [`kv${net.id}*`], intervalMs: 200, packetSampleRate: '0', inventory } }));
  const api = await startApiServer(agent, { host: '127.0.0.1', port: 0 });
  let prom: Awaited<ReturnType<typeof startPrometheus>> | undefined;
  try {
    prom = await startPrometheus(api.url.replace('http://', ''), dir);
    const q = prom.query;
    const value = async (expr: string): Promise<number> => Number((await q(expr))[0]?.value[1] ?? 0);
    const sel = (name: string, iface: string, direction: string) => `${name}{job="knp",interface="${iface}",direction="${direction}"}`;
    const before = {
      aPackets: await value(sel('kubenetprobe_packets_total', a.hostIf, 'ingress')),
      aBytes: await value(sel('kubenetprobe_bytes_total', a.hostIf, 'ingress')),
      bPackets: await value(sel('kubenetprobe_packets_total', b.hostIf, 'egress')),
    };
    // 1000 datagrams of 100 bytes: frames of 14 + 20 + 8 + 100 = 142 bytes.
    assert.match(net.traffic(a, ['udp-send', b.ipv4, '6001', '1000', '100', '46001']), /sent 1000/);
    let grown = { aPackets: 0, aBytes: 0, bPackets: 0 };
    await waitFor('Prometheus to see the 1000 datagrams', () => {
      void Promise.all([
        value(sel('kubenetprobe_packets_total', a.hostIf, 'ingress')),
        value(sel('kubenetprobe_bytes_total', a.hostIf, 'ingress')),
        value(sel('kubenetprobe_packets_total', b.hostIf, 'egress')),
      ])
        .then(([p, by, bp]) => (grown = { aPackets: p - before.aPackets, aBytes: by - before.aBytes, bPackets: bp - before.bPackets }))
        .catch(() => {});
      return grown.aPackets >= 1000 && grown.bPackets >= 1000;
    }, 15000);
    assert.deepEqual(grown, { aPackets: 1000, aBytes: 142000, bPackets: 1000 }, 'exactly what was sent, on both veths');

    // Pod series, identity from the inventory: the client sent them, the server received them.
    const podBytes = async (ns: string, pod: string, dir: string) => value(`kubenetprobe_pod_bytes_total{job="knp",namespace="${ns}",pod="${pod}",direction="${dir}"}`);
    assert.ok((await podBytes('default', 'client', 'sent')) >= 1000 * 128, 'IP bytes the client sent');
    // Workload series: the client's Deployment sent exactly the 1000 datagrams (128 IP bytes each), the server's StatefulSet received them.
    const workload = (job: string, kind: string, name: string, dir: string) =>
      value(`kubenetprobe_workload_packets_total{job="${job}",workload_kind="${kind}",workload="${name}",direction="${dir}"}`);
    let w = { sent: 0, received: 0, shopReceived: 0 };
    await waitFor('the workload series in Prometheus', () => {
      void Promise.all([workload('knp', 'Deployment', 'loadgen', 'sent'), workload('knp', 'StatefulSet', 'db', 'received'), workload('knp-shop', 'StatefulSet', 'db', 'received')])
        .then(([sent, received, shopReceived]) => (w = { sent, received, shopReceived }))
        .catch(() => {});
      return w.sent >= 1000 && w.received >= 1000 && w.shopReceived >= 1000;
    }, 15000);
    assert.deepEqual(w, { sent: 1000, received: 1000, shopReceived: 1000 });
    assert.equal(await value('kubenetprobe_workload_bytes_total{job="knp",workload_kind="Deployment",workload="loadgen",direction="sent"}'), 128000);
    // The scrape scoped to namespace shop has shop's pod and workload, nothing of the others, no "other", nothing node-wide.
    const shopSeries = (await q('{job="knp-shop"}')).map((r) => r.metric);
    const named = shopSeries.filter((m) => m['__name__']!.startsWith('kubenetprobe_'));
    assert.ok(named.length >= 4, `shop's pod and workload series: ${JSON.stringify(named)}`);
    assert.ok(named.every((m) => m['namespace'] === 'shop' && (m['pod'] === 'server' || m['workload'] === 'db')), JSON.stringify(named));
    assert.deepEqual([...new Set(named.map((m) => m['__name__']))].sort(), [
      'kubenetprobe_pod_bytes_total', 'kubenetprobe_pod_packets_total', 'kubenetprobe_workload_bytes_total', 'kubenetprobe_workload_packets_total',
    ]);
    // The same filters straight from /metrics and from the CLI; a bad one is refused with its name.
    const byWorkload = await (await fetch(`${api.url}/metrics?workload=Deployment/loadgen`)).text();
    assert.match(byWorkload, /kubenetprobe_pod_packets_total\{namespace="default",pod="client",direction="sent"\} 1000\b/);
    assert.doesNotMatch(byWorkload, /^[^#].*(pod="server"|pod="other"|workload="db")|^kubenetprobe_packets_total/m);
    // (Not execFileSync: the agent answering it runs in this process.)
    const byLabel = await new Promise<string>((resolve, reject) =>
      execFile('node', [CLI, 'metrics', '--label', 'app=db', '--server', api.url], { timeout: 20000 }, (e, out) => (e ? reject(e) : resolve(out))),
    );
    assert.match(byLabel, /kubenetprobe_workload_packets_total\{namespace="shop",workload_kind="StatefulSet",workload="db",direction="received"\} 1000\b/);
    assert.doesNotMatch(byLabel, /^[^#].*(pod="client"|workload="loadgen")/m);
    const bad = await fetch(`${api.url}/metrics?port=80`);
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /port.*unknown filter \(namespace, pod, workload, service, label\)/);

    // A scan shows up by type.
    const scan = await new Promise<number>((resolve) => execFile('ip', ['netns', 'exec', a.netns, 'nmap', '-n', '-Pn', '-sS', '-p', '1-100', '--max-retries', '0', '-T5', b.ipv4], { timeout: 30000 }, (e) => resolve(e ? 1 : 0)));
    assert.equal(scan, 0);
    let scans = 0;
    await waitFor('the scan in Prometheus', () => {
      void value('kubenetprobe_security_events_total{job="knp",type="tcp-port-scan",severity="high"}').then((v) => (scans = v)).catch(() => {});
      return scans >= 1;
    }, 10000);

    // The doomed pod talks, gets series, then its pod and veth go: its series leave /metrics.
    net.exec(c, 'ping', ['-n', '-c', '3', '-i', '0.2', '-W', '1', b.ipv4]);
    const scrape = async (): Promise<string> => (await fetch(`${api.url}/metrics`)).text();
    await sleep(500);
    let text = await scrape();
    assert.match(text, /kubenetprobe_pod_packets_total\{namespace="batch",pod="doomed",direction="sent"\} 3\b/);
    assert.ok(text.includes(`interface="${c.hostIf}"`));
    assert.match(text, /kubenetprobe_workload_packets_total\{namespace="batch",workload_kind="Job",workload="cleanup",direction="sent"\} 3\b/);
    writeFileSync(inventory, JSON.stringify(pods(false)));
    net.unplug(c);
    sh('ip', ['netns', 'del', c.netns]);
    let gone = false;
    await waitFor('the pod and interface series gone from /metrics', () => {
      void scrape()
        .then((t) => {
          text = t;
          gone = !t.includes('pod="doomed"') && !t.includes('workload="cleanup"') && !t.includes(`interface="${c.hostIf}"`);
        })
        .catch(() => {});
      return gone;
    }, 5000);
    assert.match(text, /kubenetprobe_pod_bytes_total\{namespace="shop",pod="server",direction="received"\}/, 'the others stay');
    // Every metric the docs list is there.
    for (const name of ['packets_total', 'bytes_total', 'packets_unparsed_total', 'drops_total', 'flows_active', 'flow_table_entries', 'flow_table_capacity',
      'flow_table_insert_failures_total', 'events_lost_total', 'security_events_total', 'security_events_suppressed_total', 'blocks_active', 'coverage_ratio',
      'pipeline_cycle_duration_seconds_bucket', 'pod_bytes_total', 'pod_packets_total', 'workload_bytes_total', 'workload_packets_total', 'process_cpu_seconds_total', 'process_resident_memory_bytes']) {
      assert.match(text, new RegExp(`^kubenetprobe_${name}`, 'm'), name);
    }
  } finally {
    await prom?.stop();
    await api.close();
    await agent.close();
    await net.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('500 pods: pod series stay within the budget, and every packet is in exactly one series', async () => {
  const id = randomBytes(3).toString('hex');
  const N = 500;
  const BUDGET = 40;
  const dir = mkdtempSync(join(tmpdir(), 'knp-card-'));
  const ns = (i: number) => `knp-${id}-p${i}`;
  const veth = (i: number) => `kv${id}p${i}`;
  const ip = (i: number) => `198.19.${i >> 7}.${(i & 0x7f) + 1}`;
  const batch = (lines: string[]) => sh('ip', ['-force', '-batch', '-'], { input: `${lines.join('\n')}\n` });
  try {
    // Namespaces with veths, as a CNI lays out pods (one ip -batch: 1500 commands in one process).
    batch(Array.from({ length: N }, (_, i) => [`netns add ${ns(i)}`, `link add ${veth(i)} type veth peer name eth0 netns ${ns(i)}`, `link set ${veth(i)} up`]).flat());
    const inventory = join(dir, 'inventory.json');
    writeFileSync(inventory, JSON.stringify({ pods: Array.from({ length: N }, (_, i) => ({ name: `p${i}`, namespace: `ns${i % 7}`, labels: {}, ip: ip(i) })) }));
    const agent = await Agent.start(loadConfig({ flags: { interface: [`kv${id}p*`], intervalMs: 200, packetSampleRate: '0', inventory, podSeriesBudget: String(BUDGET) } }));
    const api = await startApiServer(agent, { host: '127.0.0.1', port: 0 });
    try {
      await waitFor('all 500 veths attached', () => agent.stats().interfaces.filter((i) => i.attached).length === N, 30000);
      // Pod i receives i % 10 + 1 datagrams, sent out of its veth towards it (TC egress).
      const from = mac('02:00:00:00:00:01');
      const args: string[] = [];
      for (let i = 0; i < N; i++) {
        const frame = ethernet(mac('ff:ff:ff:ff:ff:ff'), from, ipv4('198.18.250.1', ip(i), udp(4000, 5000 + i, Buffer.alloc(20))));
        args.push(veth(i), frame.toString('hex'));
      }
      const expected = Array.from({ length: N }, (_, i) => i % 10 + 1).reduce((s, x) => s + x, 0);
      // Count 1..10 per pod: send the frame list ten times, dropping pods as they reach their count.
      for (let round = 1; round <= 10; round++) {
        const pairs: string[] = [];
        for (let i = 0; i < N; i++) if (i % 10 + 1 >= round) pairs.push(args[2 * i]!, args[2 * i + 1]!);
        sh(process.execPath, [RAWSEND, '--each', '1', ...pairs]);
      }
      let text = '';
      await waitFor('every datagram in the pod series', () => {
        void fetch(`${api.url}/metrics`).then((r) => r.text()).then((t) => (text = t)).catch(() => {});
        return sumPackets(text) === expected;
      }, 10000);
      const podLabels = new Set([...text.matchAll(/^kubenetprobe_pod_packets_total\{namespace="([^"]+)",pod="([^"]+)"/gm)].map((m) => `${m[1]}/${m[2]}`));
      podLabels.delete('other/other');
      assert.equal(podLabels.size, BUDGET, `${podLabels.size} pods with series of their own, the budget is ${BUDGET}`);
      assert.equal(sumPackets(text), expected, 'every datagram in exactly one series (the budget\'s pods or "other")');
      // The ones with series are among the biggest (10 datagrams: pods 9, 19, 29, ...).
      for (const p of podLabels) assert.equal(Number(p.split('/p')[1]) % 10, 9, `${p} is one of the biggest`);
    } finally {
      await api.close();
      await agent.close();
    }
  } finally {
    try {
      batch(Array.from({ length: N }, (_, i) => `netns del ${ns(i)}`));
    } catch {
      /* some may not exist if setup failed part way */
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

function sumPackets(text: string): number {
  let sum = 0;
  for (const m of text.matchAll(/^kubenetprobe_pod_packets_total\{[^}]*direction="received"\} (\d+)/gm)) sum += Number(m[1]);
  return sum;
}
