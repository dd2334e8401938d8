/**
 * The web page under load: a real agent whose inventory has 500 pods (10
 * namespaces, 50 workloads) and whose kernel flow table holds 5 000 real
 * flows between them (crafted UDP frames, one per distinct (source,
 * destination) pair, sent from one test namespace through its veth every
 * second, so the flows stay live and have rates), and the page opened in
 * headless Chromium (Debian's, software rendering) at 1280x800.
 *
 * Measured per round, interleaved with a baseline in the same run, the
 * same page with an empty map (a namespace filter nothing matches: the same
 * page, scripts, polling and charts, no graph), for the page as it opens
 * (above 1 200 edges it merges edges between workloads, or namespaces) and
 * with every pod edge drawn (`?edges=pods`):
 *  - time to first render: navigation start to the first map from the agent
 *    drawn (web/src/service-map.ts marks it), which includes the API call;
 *  - frame time while it updates: every requestAnimationFrame interval over
 *    FRAME_SECONDS while the map refreshes every 2 s (5 000 edges updated
 *    each time); p50, p95 and the longest frame.
 * Also: the service-map API call alone (fetch + JSON parse in the page).
 *
 * Environment: WEB_BENCH_ROUNDS (default 3), WEB_BENCH_FRAME_SECONDS (10),
 * WEB_BENCH_PODS (500), WEB_BENCH_EDGES (5000).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { Agent } from '../src/agent/agent.js';
import { loadConfig } from '../src/agent/config.js';
import { startApiServer, type ApiServer } from '../src/api/server.js';
import { webRoot } from '../src/api/web.js';
import { TestNet } from '../test/helpers/testnet.js';
import { ethernet, ipv4, mac, udp } from '../tools/frames.js';
import { envInt, fmt, fmtSummary, log, nowNs, pairedRatios, rotate, summarize, newResult, writeResult } from './common.js';

const ROUNDS = envInt('WEB_BENCH_ROUNDS', 3);
const FRAME_SECONDS = envInt('WEB_BENCH_FRAME_SECONDS', 10);
const PODS = envInt('WEB_BENCH_PODS', 500);
const EDGES = envInt('WEB_BENCH_EDGES', 5000);
const CHROMIUM = '/usr/bin/chromium';

type Variant = 'full' | 'pods' | 'empty';

interface Sample {
  firstRenderMs: number;
  frames: number[];
  mapFetchMs: number;
  nodes: number;
  edges: number;
  /** Edges cytoscape draws (merged ones, or every pod edge). */
  drawnEdges: number;
}

/** Pod i's address: 198.19.0.0/16 (RFC 2544), never a test namespace's. */
const podIp = (i: number): string => `198.19.${Math.floor(i / 250)}.${(i % 250) + 1}`;

declare const window: { kubenetprobe: { mapView: { firstRenderMs: number | undefined; cy: { edges(): { length: number } } }; lastMap(): { nodes: unknown[]; edges: unknown[] } | undefined } };
declare function requestAnimationFrame(cb: (t: number) => void): number;
declare const performance: { getEntriesByType(t: string): { name: string; duration: number }[] };

async function measure(browser: Browser, url: string): Promise<Sample> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  try {
    await page.goto(url);
    await page.waitForFunction(() => window.kubenetprobe?.mapView.firstRenderMs !== undefined, undefined, { timeout: 120_000, polling: 50 });
    const firstRenderMs = await page.evaluate(() => window.kubenetprobe.mapView.firstRenderMs!);
    const frames = await page.evaluate(
      (seconds) =>
        new Promise<number[]>((resolve) => {
          const out: number[] = [];
          let last = 0;
          const end = Date.now() + seconds * 1000;
          const tick = (t: number): void => {
            if (last) out.push(t - last);
            last = t;
            if (Date.now() < end) requestAnimationFrame(tick);
            else resolve(out);
          };
          requestAnimationFrame(tick);
        }),
      FRAME_SECONDS,
    );
    const { nodes, edges, mapFetchMs, drawnEdges } = await page.evaluate(() => {
      const m = window.kubenetprobe.lastMap();
      const fetches = performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/v1/service-map'));
      const d = fetches.map((e) => e.duration).sort((a, b) => a - b);
      return { nodes: m?.nodes.length ?? 0, edges: m?.edges.length ?? 0, mapFetchMs: d[d.length >> 1] ?? NaN, drawnEdges: window.kubenetprobe.mapView.cy.edges().length };
    });
    return { firstRenderMs, frames, mapFetchMs, nodes, edges, drawnEdges };
  } finally {
    await page.close();
  }
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? NaN;
};

async function main(): Promise<void> {
  const started = nowNs();
  const result = newResult('web-page', { pods: PODS, edges: EDGES, rounds: ROUNDS, frameSeconds: FRAME_SECONDS, viewport: '1280x800', browser: CHROMIUM });
  if (!existsSync(join(webRoot(), 'index.html'))) throw new Error(`the page is not built in ${webRoot()}: run bash scripts/setup.sh`);
  const net = TestNet.create(1, { ipv6: false });
  const dir = mkdtempSync(join(tmpdir(), 'knp-web-bench-'));
  let agent: Agent | undefined;
  let api: ApiServer | undefined;
  let browser: Browser | undefined;
  let sending = true;
  let sender: Promise<void> = Promise.resolve();
  try {
    // 500 pods in 10 namespaces, 10 pods per workload (each workload in one namespace), a service per workload.
    const pods = Array.from({ length: PODS }, (_, i) => {
      const ns = `team-${Math.floor((i * 10) / PODS)}`;
      const wl = `svc-${Math.floor(i / 10)}`;
      return { name: `${wl}-${(i * 2654435761) % 99991}`, namespace: ns, labels: { app: wl }, ip: podIp(i), workload: { kind: 'Deployment', name: wl }, service: wl };
    });
    const inventory = join(dir, 'inventory.json');
    writeFileSync(inventory, JSON.stringify({ pods }));
    // EDGES distinct (source, destination) pairs; each a UDP flow to a port of 8.
    const a = net.pod('a');
    const dstMac = mac('02:00:00:00:00:01');
    const srcMac = mac(net.mac(a));
    const frames: string[] = [];
    const perSource = Math.ceil(EDGES / PODS);
    for (let s = 0; s < PODS && frames.length < EDGES; s++) {
      for (let j = 1; j <= perSource && frames.length < EDGES; j++) {
        const d = (s + j * 37) % PODS;
        frames.push(ethernet(dstMac, srcMac, ipv4(podIp(s), podIp(d), udp(40000 + j, 8000 + (j % 8), Buffer.alloc(64, 0x61)))).toString('hex'));
      }
    }
    const args = net.rawSendArgs(1, []);
    const send = (): Promise<void> =>
      new Promise((resolve) => execFile('ip', ['netns', 'exec', a.netns, process.execPath, ...args, ...frames], { timeout: 30_000, maxBuffer: 1 << 20 }, () => resolve()));
    sender = (async () => {
      while (sending) {
        const t = Date.now();
        await send();
        await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - t))));
      }
    })();

    agent = await Agent.start(loadConfig({ flags: { interface: [`kv${net.id}*`], intervalMs: 1000, packetSampleRate: '0', idleTimeoutMs: 60000, inventory } }));
    api = await startApiServer(agent, { host: '127.0.0.1', port: 0 });
    const apiUrl = api.url;
    // Until the kernel table holds every flow and the map every edge.
    const deadline = Date.now() + 60_000;
    let edges = 0;
    while (Date.now() < deadline) {
      const r = (await (await fetch(`${apiUrl}/api/v1/service-map`)).json()) as { edges: unknown[]; nodes: unknown[] };
      edges = r.edges.length;
      if (edges >= EDGES) break;
      await new Promise((r2) => setTimeout(r2, 500));
    }
    const st = agent.stats();
    result.checks.push({ what: `the map has ${EDGES} edges from real flows`, ok: edges >= EDGES, detail: `${edges} edges; kernel flow table ${st.flowTable.entries} entries, coverage ${fmt(st.coverage.ratio * 100)} %` });
    // The API alone, from Node (no browser): the baseline's baseline.
    const apiMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = nowNs();
      await (await fetch(`${apiUrl}/api/v1/service-map`)).json();
      apiMs.push((nowNs() - t) / 1e6);
    }

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const samples: Record<Variant, Sample[]> = { full: [], pods: [], empty: [] };
    const urls: Record<Variant, string> = { full: `${apiUrl}/?theme=light`, pods: `${apiUrl}/?theme=light&edges=pods`, empty: `${apiUrl}/?theme=light&namespace=none-such` };
    for (let round = 0; round < ROUNDS; round++) {
      for (const v of rotate<Variant>(['full', 'pods', 'empty'], round)) {
        const s = await measure(browser, urls[v]);
        samples[v].push(s);
        log(
          `round ${round + 1} ${v}: first render ${fmt(s.firstRenderMs)} ms, frames p50 ${fmt(pct(s.frames, 50))} p95 ${fmt(pct(s.frames, 95))} max ${fmt(Math.max(...s.frames))} ms (${s.frames.filter((f) => f > 50).length} over 50), ${s.nodes} nodes ${s.edges} edges, ${s.drawnEdges} drawn`,
        );
      }
    }
    const col = (v: Variant, f: (s: Sample) => number): number[] => samples[v].map(f);
    const rows: [string, string, (s: Sample) => number][] = [
      ['time to first render (navigation to the first map drawn)', 'ms', (s) => s.firstRenderMs],
      ['frame time while the map updates, p50', 'ms', (s) => pct(s.frames, 50)],
      ['frame time while the map updates, p95', 'ms', (s) => pct(s.frames, 95)],
      ['longest frame while the map updates', 'ms', (s) => Math.max(...s.frames)],
    ];
    for (const [what, unit, f] of rows) {
      for (const v of ['full', 'pods'] as const) {
        const full = col(v, f);
        const empty = col('empty', f);
        result.rows.push({
          case: `${what}, ${PODS} pods / ${EDGES} edges, ${v === 'full' ? 'as the page opens (edges merged)' : 'every pod edge drawn (?edges=pods)'}`,
          metric: what,
          unit,
          value: summarize(full),
          baseline: { name: 'the same page with an empty map', metric: what, value: summarize(empty) },
          ratio: summarize(pairedRatios(full, empty)),
          ratioMeaning: 'time, lower is better',
        });
      }
    }
    result.tables.push({
      title: 'The service-map API call (median ms)',
      header: ['what', 'ms'],
      rows: [
        [`GET /api/v1/service-map from Node (${EDGES} edges, fetch + JSON parse)`, fmt(summarize(apiMs).median)],
        ['the same in the page (resource timing, median of its refreshes)', fmt(summarize(col('full', (s) => s.mapFetchMs)).median)],
      ],
    });
    result.checks.push({
      what: 'the page got every node and edge, drew every pod, and with ?edges=pods every edge',
      ok: [...samples.full, ...samples.pods].every((s) => s.edges >= EDGES && s.nodes >= PODS) && samples.pods.every((s) => s.drawnEdges >= EDGES),
      detail: `nodes/edges/drawn: ${[...samples.full, ...samples.pods].map((s) => `${s.nodes}/${s.edges}/${s.drawnEdges}`).join(', ')}`,
    });
    for (const v of ['full', 'pods'] as const) {
      const all = samples[v].flatMap((s) => s.frames);
      result.notes.push(`${v}: ${all.length} frames measured, ${all.filter((f) => f > 50).length} longer than 50 ms, ${all.filter((f) => f > 100).length} longer than 100 ms; ${samples[v].map((s) => s.drawnEdges).join('/')} edges drawn.`);
    }
    result.notes.push("Headless Chromium renders with software (no GPU); cytoscape's canvas renderer.");
  } finally {
    sending = false;
    await sender;
    await browser?.close();
    await api?.close();
    await agent?.close();
    await net.close();
    rmSync(dir, { recursive: true, force: true });
  }
  result.durationMs = (nowNs() - started) / 1e6;
  const path = writeResult(result);
  for (const r of result.rows) log(`${r.case}: ${fmtSummary(r.value)} ms vs ${fmtSummary(r.baseline!.value)} (empty map), ratio ${fmtSummary(r.ratio!, 2)}`);
  for (const t of result.tables) {
    log(t.title);
    for (const r of [t.header, ...t.rows]) log(`  ${r.join(' | ')}`);
  }
  for (const c of result.checks) log(`check ${c.ok ? 'ok  ' : 'FAIL'} ${c.what}: ${c.detail}`);
  for (const n of result.notes) log(n);
  log(`web-page: ${fmt(result.durationMs / 1000)} s, wrote ${path}`);
  if (result.checks.some((c) => !c.ok)) process.exitCode = 1;
}

await main();
