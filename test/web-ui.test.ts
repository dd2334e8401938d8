/**
 * The web page in a real browser (Debian's headless Chromium, driven by
 * playwright-core; no browser download) against a real agent on a node in
 * namespaces with known traffic: a web client in `shop` making HTTP GETs to
 * an orders database in `data` on port 8080, and a scanner in `attacker`.
 * Checks that the map shows the named pods and the client -> server edge on
 * port 8080 (and that clicking opens its flows), that an nmap scan shows in
 * the security timeline within 5 s, and that a namespace filter narrows the
 * map and the flow table. Screenshots of each view go to
 * test-artifacts/web/ (gitignored).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Core } from 'cytoscape';
import { Agent } from '../src/agent/agent.js';
import { loadConfig } from '../src/agent/config.js';
import { startApiServer, type ApiServer } from '../src/api/server.js';
import { webRoot } from '../src/api/web.js';
import { packageRoot } from '../src/paths.js';
import { TestNet, type Pod } from './helpers/testnet.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(packageRoot(), 'test-artifacts', 'web');
const PORT = 8080;

const CLIENT = { namespace: 'shop', name: 'web-client-7c9d4-k2x8p', workload: { kind: 'Deployment', name: 'web-client' }, labels: { app: 'web-client' } };
const SERVER = { namespace: 'data', name: 'orders-db-0', workload: { kind: 'StatefulSet', name: 'orders-db' }, service: 'orders-db', labels: { app: 'orders-db' } };
const ATTACKER = { namespace: 'attacker', name: 'scanner', workload: { kind: 'Pod', name: 'scanner' }, labels: { app: 'scanner' } };
const CLIENT_ID = `pod:${CLIENT.namespace}/${CLIENT.name}`;
const SERVER_ID = `pod:${SERVER.namespace}/${SERVER.name}`;
const ATTACKER_ID = `pod:${ATTACKER.namespace}/${ATTACKER.name}`;

interface WireMap {
  nodes: { id: string }[];
  edges: { id: string; source: string; target: string; protocol: string; port: number | null; securityEvents: number }[];
}

/** The page's test hook (web/src/main.ts), as seen from code that runs in the page. */
declare const window: { kubenetprobe: { lastMap(): WireMap | undefined; mapView: { cy: Core } } };

/** The map the page last drew. */
const pageMap = (page: Page): Promise<WireMap | undefined> => page.evaluate(() => window.kubenetprobe.lastMap());

describe('web page in headless Chromium', { timeout: 120_000 }, () => {
  let net: TestNet;
  let agent: Agent;
  let api: ApiServer;
  let browser: Browser;
  let page: Page;
  let client: Pod;
  let server: Pod;
  let attacker: Pod;
  let dir: string | undefined;

  before(async () => {
    assert.ok(existsSync(join(webRoot(), 'index.html')), `the page is not built in ${webRoot()}: run bash scripts/setup.sh`);
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (scripts/setup.sh does)`);
    mkdirSync(ARTIFACTS, { recursive: true });
    net = TestNet.create(3, { ipv6: false });
    [client, server, attacker] = [net.pod('a'), net.pod('b'), net.pod('c')];
    dir = mkdtempSync(join(tmpdir(), 'knp-web-ui-'));
    const inventory = join(dir, 'inventory.json');
    const entry = (p: { namespace: string; name: string; workload: unknown; labels: unknown; service?: string }, pod: Pod): unknown => ({ ...p, ip: pod.ipv4 });
    writeFileSync(inventory, JSON.stringify({ pods: [entry(CLIENT, client), entry(SERVER, server), entry(ATTACKER, attacker)] }));
    agent = await Agent.start(loadConfig({ flags: { interface: [`kv${net.id}*`], intervalMs: 200, packetSampleRate: '0', idleTimeoutMs: 120000, inventory } }));
    api = await startApiServer(agent, { host: '127.0.0.1', port: 0 });
    await net.background(server, ['http-server', String(PORT)]);
    net.traffic(client, ['http-gets', server.ipv4, String(PORT), '20', '2']);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (e) => process.stderr.write(`page error: ${e.message}\n`));
    // Refresh every half second, so the tests wait less.
    await page.goto(`${api.url}/?refresh=500&theme=light`);
  });
  after(async () => {
    await browser?.close();
    await api?.close();
    await agent?.close();
    await net?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the map shows the named pods and the client -> server edge on port 8080; clicking opens its flows', async () => {
    await page.waitForFunction(
      ([c, s, port]) => window.kubenetprobe.lastMap()?.edges.some((e) => e.source === c && e.target === s && e.port === port && e.protocol === 'TCP') ?? false,
      [CLIENT_ID, SERVER_ID, PORT] as const,
      { timeout: 15_000 },
    );
    // Drawn, not only fetched: the canvas renderer's elements, with their labels.
    const drawn = await page.evaluate(([c, s]) => {
      const cy = window.kubenetprobe.mapView.cy;
      const edge = cy.edges().filter((e) => e.source().id() === c && e.target().id() === s);
      return {
        pods: cy
          .nodes('.pod')
          .map((n) => n.data('label') as string)
          .sort(),
        edgeLabels: edge.map((e) => e.data('label') as string),
        edgeVisible: edge.nonempty() && edge.visible(),
        groups: cy.nodes('.namespace, .workload').map((n) => n.data('label') as string),
      };
    }, [CLIENT_ID, SERVER_ID] as const);
    assert.deepEqual(drawn.pods, [SERVER.name, ATTACKER.name, CLIENT.name].sort());
    assert.deepEqual(drawn.edgeLabels, [`TCP/${PORT}`]);
    assert.ok(drawn.edgeVisible);
    for (const g of ['shop', 'data', 'attacker', 'Deployment/web-client', 'StatefulSet/orders-db · svc orders-db']) assert.ok(drawn.groups.includes(g), `group ${g} in ${drawn.groups.join(', ')}`);
    await page.screenshot({ path: join(ARTIFACTS, 'map.png') });

    // A real click on the edge's midpoint opens its flows in the side panel.
    const mid = await page.evaluate(([c, s]) => {
      const cy = window.kubenetprobe.mapView.cy;
      cy.fit(undefined, 60);
      const e = cy.edges().filter((x) => x.source().id() === c && x.target().id() === s)[0]!;
      const box = cy.container()!.getBoundingClientRect();
      const m = e.renderedMidpoint();
      return { x: box.x + m.x, y: box.y + m.y };
    }, [CLIENT_ID, SERVER_ID] as const);
    await page.mouse.click(mid.x, mid.y);
    const panel = page.locator('#selection');
    await panel.locator('table').waitFor({ timeout: 5000 });
    const text = await panel.innerText();
    assert.match(text, new RegExp(`${CLIENT.name}.*→.*${SERVER.name}:${PORT}`, 's'));
    assert.ok(text.includes(`${SERVER.namespace}/${SERVER.name}:${PORT}`), text);
    await page.screenshot({ path: join(ARTIFACTS, 'map-edge-selected.png') });
  });

  test('a port scan from the attacker namespace shows in the security timeline within 5 s', async () => {
    await page.click('.tabs button[data-view=security]');
    const start = Date.now();
    const scan = new Promise<void>((resolve, reject) =>
      execFile('ip', ['netns', 'exec', attacker.netns, 'nmap', '-n', '-Pn', '-sS', '-p', '1-200', '--max-retries', '0', '-T5', server.ipv4], { timeout: 30000 }, (err) => (err ? reject(err) : resolve())),
    );
    const row = page.locator('#security-table tbody tr', { hasText: 'tcp-port-scan' }).filter({ hasText: `${ATTACKER.namespace}/${ATTACKER.name}` });
    await row.first().waitFor({ timeout: 5000 });
    const took = Date.now() - start;
    assert.ok(took <= 5000, `shown after ${took} ms`);
    const text = await row.first().innerText();
    assert.ok(text.includes('high'), text);
    assert.ok(text.includes(`${SERVER.namespace}/${SERVER.name}`), text);
    // And on the timeline: a dot in the high lane, naming attacker and target.
    const dot = page.locator('#timeline circle.sev-high');
    assert.ok((await dot.count()) >= 1);
    assert.match((await dot.first().locator('title').textContent()) ?? '', new RegExp(`tcp-port-scan: ${ATTACKER.namespace}/${ATTACKER.name} → ${SERVER.namespace}/${SERVER.name}`));
    await scan;
    await page.screenshot({ path: join(ARTIFACTS, 'security.png') });
  });

  test('filtering by namespace narrows the map and the flow table', async () => {
    await page.click('.tabs button[data-view=map]');
    // Before: the scanner and its scan edge (merged into one edge of 200 ports, marked) are on the map.
    await page.waitForFunction((a) => window.kubenetprobe.lastMap()?.edges.some((e) => e.source === a && e.securityEvents > 0) ?? false, ATTACKER_ID, { timeout: 10_000 });
    const before = (await pageMap(page))!;
    assert.ok(before.nodes.some((n) => n.id === ATTACKER_ID));
    const scanEdges = before.edges.filter((e) => e.source === ATTACKER_ID && e.target === SERVER_ID);
    assert.equal(scanEdges.length, 1, 'a scan of 200 ports is one edge');
    assert.equal(scanEdges[0]!.port, null);

    await page.fill('#filters input[name=namespace]', 'shop');
    await page.click('#filters button[type=submit]');
    await page.waitForFunction((a) => {
      const m = window.kubenetprobe.lastMap();
      return m !== undefined && !m.nodes.some((n) => n.id === a) && window.kubenetprobe.mapView.cy.getElementById(a).empty();
    }, ATTACKER_ID, { timeout: 10_000 });
    const after = (await pageMap(page))!;
    assert.ok(after.nodes.length < before.nodes.length, `${after.nodes.length} nodes, was ${before.nodes.length}`);
    assert.deepEqual(after.nodes.map((n) => n.id).sort(), [SERVER_ID, CLIENT_ID].sort(), 'shop pods and their peers');
    assert.ok(after.edges.length > 0 && after.edges.every((e) => e.source === CLIENT_ID || e.target === CLIENT_ID));
    assert.match(page.url(), /namespace=shop/);
    await page.screenshot({ path: join(ARTIFACTS, 'map-namespace-shop.png') });

    await page.click('.tabs button[data-view=flows]');
    const rows = page.locator('#flows-table tbody tr');
    await rows.first().waitFor({ timeout: 5000 });
    const texts = await rows.allInnerTexts();
    assert.ok(texts.length > 0);
    for (const t of texts) assert.ok(t.includes(`${CLIENT.namespace}/`), `a row without namespace shop: ${t}`);
    assert.ok(!texts.some((t) => t.includes(ATTACKER.name)));
    await page.screenshot({ path: join(ARTIFACTS, 'flows-namespace-shop.png') });

    // The last views, in the dark theme: all namespaces again, and the traffic charts.
    await page.click('#clear-filters');
    await page.click('#theme');
    await page.click('.tabs button[data-view=traffic]');
    await page.locator('#chart-health .uplot').waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'traffic-dark.png') });
    await page.click('.tabs button[data-view=map]');
    await page.waitForTimeout(1000);
    await page.screenshot({ path: join(ARTIFACTS, 'map-dark.png') });
  });
});
