/**
 * The flow-history store (src/history): how fast it takes flow records, and
 * how fast it answers the two questions `top --since` and a traffic chart
 * ask of it, over 1 M records spread over the last two hours.
 *
 * Each round, order rotated:
 *   write  1 M records through HistoryStore.append()+flush() in batches of
 *          5,000 (one transaction each), into a new file;
 *          baseline: the same records as JSON lines to a file, the same
 *          batches, fdatasync per batch (what a log-file history would do).
 *   top-10 talkers (source -> destination pairs, by bytes) over the last
 *          hour; baseline: the same aggregation in plain JS over an array of
 *          the same rows already in memory (the best case for JS: no I/O).
 *   time series, 1-minute buckets over the last hour; baseline: the same in
 *          plain JS.
 *   open of the 1 M-row store with the full check (every block read);
 *          baseline: the quick open (metadata only).
 * When the sqlite3 command is installed, the same two queries also run in
 * SQLite (the engine better-sqlite3 embeds) over the same rows, with an
 * index on the time column, for docs/history.md's choice of engine.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { FlowRecord } from '../src/agent/flow-accounter.js';
import { HistoryStore, type HistoryStoreOptions } from '../src/history/history-store.js';
import { envInt, fmt, fmtSummary, log, nowNs, pairedRatios, rotate, summarize, newResult, writeResult, type ResultRow } from './common.js';

const ROWS = envInt('BENCH_HISTORY_ROWS', 1_000_000);
const BATCH = 5000;
const WRITE_ROUNDS = envInt('BENCH_HISTORY_WRITE_ROUNDS', 3);
const ROUNDS = envInt('BENCH_ROUNDS', 9);
const SPAN_MS = 2 * 3_600_000;
const HOUR = 3_600_000;

/** A flat row: what the JS baselines aggregate over. */
interface Row {
  ts: number;
  src: string;
  dst: string;
  bytes: number;
  packets: number;
}

/**
 * ROWS records, oldest first (as the agent writes them), over the last two
 * hours: 5,000 sources talking to 300 destinations, with skewed volumes so
 * the top 10 is a real ranking rather than a tie.
 */
function makeRecords(now: number): { records: FlowRecord[]; rows: Row[] } {
  const records: FlowRecord[] = [];
  const rows: Row[] = [];
  let seed = 42;
  const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff);
  const start = now - SPAN_MS;
  for (let i = 0; i < ROWS; i++) {
    const r = rnd();
    const s = r % 5000;
    const d = (r >>> 13) % 300;
    const src = `10.${(s >> 8) & 255}.${s & 255}.${1 + (s % 250)}`;
    const dst = `10.96.${d >> 4}.${d & 15}`;
    // Low-numbered pairs send far more: bytes fall off as 1 / (1 + s % 97).
    const bytes = Math.floor(1_500_000 / (1 + (s % 97))) + (r % 1000);
    const packets = 1 + Math.floor(bytes / 900);
    const ts = start + Math.floor((i * SPAN_MS) / ROWS);
    const tcp = r % 3 !== 0;
    records.push({
      reason: r % 10 === 0 ? 'final' : 'active',
      deltaPackets: packets,
      deltaBytes: bytes,
      packetsPerSec: packets / 30,
      bytesPerSec: bytes / 30,
      flow: {
        key: { family: 'ipv4', srcIp: src, dstIp: dst, srcPort: 1024 + (r % 60000), dstPort: [443, 53, 8080, 5432][r % 4]!, protocol: tcp ? 'TCP' : 'UDP', protocolNumber: tcp ? 6 : 17, direction: r % 2 ? 'egress' : 'ingress', ifindex: 3 + (r % 40) },
        interface: `veth${r % 40}`,
        packets: packets * 4,
        bytes: bytes * 4,
        firstSeen: new Date(ts - 120_000),
        lastSeen: new Date(ts),
        tcpFlags: tcp ? ['SYN', 'ACK'] : [],
        synCount: tcp ? 1 : 0,
        finCount: 0,
        rstCount: 0,
        opened: tcp,
      },
    });
    rows.push({ ts, src, dst, bytes, packets });
  }
  return { records, rows };
}

const STORE_OPTIONS: HistoryStoreOptions = { retentionMs: Infinity, maxBytes: Infinity, flushIntervalMs: 3_600_000, retentionIntervalMs: 3_600_000, batchSize: BATCH };

async function writeStore(path: string, records: readonly FlowRecord[]): Promise<{ ms: number; store: HistoryStore }> {
  const store = await HistoryStore.open(path, STORE_OPTIONS);
  const t0 = nowNs();
  for (let i = 0; i < records.length; i += BATCH) {
    store.append(records.slice(i, i + BATCH));
    await store.flush();
  }
  return { ms: (nowNs() - t0) / 1e6, store };
}

/** The baseline writer: the same fields as the store's columns, as JSON lines, synced per batch. */
function writeJsonLines(path: string, records: readonly FlowRecord[]): number {
  const t0 = nowNs();
  const fd = openSync(path, 'w');
  try {
    for (let i = 0; i < records.length; i += BATCH) {
      let out = '';
      for (const r of records.slice(i, i + BATCH)) {
        const f = r.flow;
        const k = f.key;
        out +=
          JSON.stringify({
            time: f.lastSeen.toISOString(),
            firstSeen: f.firstSeen.toISOString(),
            reason: r.reason,
            interface: f.interface ?? null,
            ifindex: k.ifindex,
            direction: k.direction,
            family: k.family,
            protocol: k.protocol,
            protocolNumber: k.protocolNumber,
            srcIp: k.srcIp,
            srcPort: k.srcPort,
            dstIp: k.dstIp,
            dstPort: k.dstPort,
            srcNamespace: null,
            srcPod: null,
            dstNamespace: null,
            dstPod: null,
            deltaPackets: r.deltaPackets,
            deltaBytes: r.deltaBytes,
            packets: f.packets,
            bytes: f.bytes,
            packetsPerSec: r.packetsPerSec,
            bytesPerSec: r.bytesPerSec,
            tcpFlags: f.tcpFlags.join(','),
          }) + '\n';
      }
      writeSync(fd, out);
      fdatasyncSync(fd);
    }
  } finally {
    closeSync(fd);
  }
  return (nowNs() - t0) / 1e6;
}

function jsTopTalkers(rows: readonly Row[], since: number, until: number): [string, number][] {
  const m = new Map<string, number>();
  for (const r of rows) {
    if (r.ts < since || r.ts >= until) continue;
    const k = `${r.src}>${r.dst}`;
    m.set(k, (m.get(k) ?? 0) + r.bytes);
  }
  return [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 10);
}

function jsTimeSeries(rows: readonly Row[], since: number, until: number, bucket: number): Map<number, { bytes: number; packets: number }> {
  const m = new Map<number, { bytes: number; packets: number }>();
  for (const r of rows) {
    if (r.ts < since || r.ts >= until) continue;
    const b = Math.floor(r.ts / bucket) * bucket;
    const e = m.get(b);
    if (e) {
      e.bytes += r.bytes;
      e.packets += r.packets;
    } else m.set(b, { bytes: r.bytes, packets: r.packets });
  }
  return m;
}

async function timeIt<T>(fn: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const t0 = nowNs();
  const value = await fn();
  return { ms: (nowNs() - t0) / 1e6, value };
}

/**
 * The same queries in SQLite, through the sqlite3 command (`.timer on`
 * times each statement inside the engine, not the process start). The rows
 * go over as CSV from the DuckDB file, all columns, so SQLite's rows are as
 * wide as the store's.
 */
async function sqliteFigures(dir: string, duckPath: string, since: number, until: number): Promise<{ version: string; topMs: number[]; seriesMs: number[] } | undefined> {
  const probe = spawnSync('sqlite3', ['--version'], { encoding: 'utf8' });
  if (probe.status !== 0) return undefined;
  const csv = join(dir, 'flows.csv');
  const inst = await DuckDBInstance.create(duckPath, { access_mode: 'READ_ONLY' });
  const conn = await inst.connect();
  // COPY takes no parameters; the path is this bench's own temporary file.
  await conn.run(
    'COPY (SELECT epoch_ms(ts) AS ts, epoch_ms(first_seen) AS first_seen, reason, interface, ifindex, direction, family, protocol, protocol_number, ' +
      'src_ip, src_port, dst_ip, dst_port, src_namespace, src_pod, dst_namespace, dst_pod, delta_packets, delta_bytes, packets, bytes, ' +
      `packets_per_sec, bytes_per_sec, tcp_flags FROM flows) TO '${csv.replaceAll("'", "''")}' (HEADER false)`,
  );
  conn.closeSync();
  inst.closeSync();
  const db = join(dir, 'flows.sqlite');
  const setup = [
    'CREATE TABLE flows (ts INTEGER NOT NULL, first_seen INTEGER, reason TEXT, interface TEXT, ifindex INTEGER, direction TEXT, family TEXT, protocol TEXT, protocol_number INTEGER, ' +
      'src_ip TEXT, src_port INTEGER, dst_ip TEXT, dst_port INTEGER, src_namespace TEXT, src_pod TEXT, dst_namespace TEXT, dst_pod TEXT, delta_packets INTEGER, delta_bytes INTEGER, ' +
      'packets INTEGER, bytes INTEGER, packets_per_sec REAL, bytes_per_sec REAL, tcp_flags TEXT);',
    `.import --csv ${csv} flows`,
    'CREATE INDEX flows_ts ON flows(ts);',
    'ANALYZE;',
  ].join('\n');
  const s = spawnSync('sqlite3', [db], { input: setup, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (s.status !== 0) throw new Error(`sqlite3 setup failed: ${s.stderr}`);
  const top = `SELECT src_ip, dst_ip, sum(delta_bytes) AS b FROM flows WHERE ts >= ${since} AND ts < ${until} GROUP BY src_ip, dst_ip ORDER BY b DESC LIMIT 10;`;
  const series = `SELECT ts / 60000 * 60000 AS bucket, sum(delta_bytes), sum(delta_packets) FROM flows WHERE ts >= ${since} AND ts < ${until} GROUP BY 1 ORDER BY 1;`;
  const script = ['.timer on', ...Array.from({ length: ROUNDS }, () => `${top}\n${series}`)].join('\n');
  const q = spawnSync('sqlite3', [db], { input: script, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (q.status !== 0) throw new Error(`sqlite3 queries failed: ${q.stderr}`);
  const times = [...q.stdout.matchAll(/Run Time: real ([\d.]+)/g)].map((m) => Number(m[1]) * 1000);
  rmSync(csv, { force: true });
  return { version: probe.stdout.trim().split(' ')[0] ?? '?', topMs: times.filter((_, i) => i % 2 === 0), seriesMs: times.filter((_, i) => i % 2 === 1) };
}

async function main(): Promise<void> {
  const started = nowNs();
  const result = newResult('history-store', { rows: ROWS, batch: BATCH, writeRounds: WRITE_ROUNDS, rounds: ROUNDS, spanMs: SPAN_MS, threads: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'knp-bench-history-'));
  try {
    const now = Date.now();
    log(`history-store: making ${ROWS} records`);
    const { records, rows } = makeRecords(now);

    // ---- Writes
    const storeMs: number[] = [];
    const jsonMs: number[] = [];
    const storePath = join(dir, 'history.duckdb');
    let store: HistoryStore | undefined;
    for (let round = 0; round < WRITE_ROUNDS; round++) {
      for (const which of rotate(['store', 'json'] as const, round)) {
        if (which === 'json') {
          jsonMs.push(writeJsonLines(join(dir, 'flows.jsonl'), records));
          rmSync(join(dir, 'flows.jsonl'), { force: true });
        } else {
          await store?.close();
          rmSync(storePath, { force: true });
          rmSync(`${storePath}.wal`, { force: true });
          const w = await writeStore(storePath, records);
          storeMs.push(w.ms);
          store = w.store;
        }
      }
      log(`  write round ${round}: store ${fmt(storeMs.at(-1)!)} ms, JSON lines ${fmt(jsonMs.at(-1)!)} ms`);
    }
    const rate = (ms: number[]): number[] => ms.map((m) => ROWS / (m / 1000));
    const writeRow: ResultRow = {
      case: `append ${ROWS} flow records, batches of ${BATCH} (one transaction each)`,
      metric: 'rows/s',
      unit: 'rows/s',
      value: summarize(rate(storeMs)),
      baseline: { name: 'same records as JSON lines, fdatasync per batch', metric: 'rows/s', value: summarize(rate(jsonMs)) },
      ratio: summarize(pairedRatios(rate(storeMs), rate(jsonMs))),
      ratioMeaning: 'write: rows/s, store / JSON lines (higher is better)',
      goal: { text: '>= 20,000 records/s (an agent at 1 M flows and a 60 s active timeout makes ~17 k/s)', pass: summarize(rate(storeMs)).median >= 20_000 },
    };
    result.rows.push(writeRow);
    log(`  write: ${fmtSummary(writeRow.value, 0)} rows/s, JSON lines ${fmtSummary(writeRow.baseline!.value, 0)} rows/s`);
    const st = await store!.stats();
    result.checks.push({ what: `the store holds all ${ROWS} rows`, ok: st.flows === ROWS, detail: `${st.flows} rows` });

    // ---- Queries
    const since = new Date(now - HOUR);
    const until = new Date(now + 1);
    const topStore: number[] = [];
    const topJs: number[] = [];
    const seriesStore: number[] = [];
    const seriesJs: number[] = [];
    let topOk = true;
    let seriesOk = true;
    for (let round = 0; round < ROUNDS; round++) {
      for (const which of rotate(['top-store', 'top-js', 'series-store', 'series-js'] as const, round)) {
        switch (which) {
          case 'top-store': {
            const t = await timeIt(() => store!.topTalkers({ since, until, limit: 10 }));
            topStore.push(t.ms);
            const js = jsTopTalkers(rows, since.getTime(), until.getTime());
            const got = t.value.map((x) => [`${x.srcIp}>${x.dstIp}`, x.bytes]);
            if (JSON.stringify(got) !== JSON.stringify(js)) topOk = false;
            break;
          }
          case 'top-js':
            topJs.push((await timeIt(() => jsTopTalkers(rows, since.getTime(), until.getTime()))).ms);
            break;
          case 'series-store': {
            const t = await timeIt(() => store!.timeSeries({ since, until, bucketMs: 60_000 }));
            seriesStore.push(t.ms);
            const js = jsTimeSeries(rows, since.getTime(), until.getTime(), 60_000);
            for (const p of t.value.points) {
              const e = js.get(p.start.getTime()) ?? { bytes: 0, packets: 0 };
              if (e.bytes !== p.bytes || e.packets !== p.packets) seriesOk = false;
            }
            break;
          }
          case 'series-js':
            seriesJs.push((await timeIt(() => jsTimeSeries(rows, since.getTime(), until.getTime(), 60_000))).ms);
            break;
        }
      }
    }
    const inHour = rows.filter((r) => r.ts >= since.getTime() && r.ts < until.getTime()).length;
    result.checks.push({ what: 'top-10 talkers: the store and the JS aggregation agree (pairs, order, bytes)', ok: topOk, detail: topOk ? 'yes' : 'no' });
    result.checks.push({ what: '1-minute buckets: the store and the JS aggregation agree in every bucket', ok: seriesOk, detail: seriesOk ? 'yes' : 'no' });
    const queryRow = (what: string, ours: number[], base: number[]): ResultRow => ({
      case: `${what}, last hour (${inHour} of ${ROWS} rows)`,
      metric: 'ms per query',
      unit: 'ms',
      value: summarize(ours),
      baseline: { name: 'same aggregation in plain JS over an in-memory array of the rows', metric: 'ms', value: summarize(base) },
      ratio: summarize(pairedRatios(ours, base)),
      ratioMeaning: 'queries: time, store / JS (lower is better)',
    });
    result.rows.push(queryRow('top-10 talkers (pairs, by bytes)', topStore, topJs));
    result.rows.push(queryRow('time series, 1-minute buckets', seriesStore, seriesJs));
    log(`  top-10: store ${fmtSummary(summarize(topStore))} ms, JS ${fmtSummary(summarize(topJs))} ms`);
    log(`  series: store ${fmtSummary(summarize(seriesStore))} ms, JS ${fmtSummary(summarize(seriesJs))} ms`);

    // ---- Open with the full check
    await store!.close();
    const bytes = statSync(storePath).size;
    result.notes.push(`On disk: ${fmt(bytes / 1024 / 1024)} MiB for ${ROWS} flow records (${fmt(bytes / ROWS)} bytes/record) after close (checkpointed, no WAL).`);
    const fullMs: number[] = [];
    const quickMs: number[] = [];
    for (let round = 0; round < Math.min(ROUNDS, 5); round++) {
      for (const verify of rotate(['full', 'quick'] as const, round)) {
        const t = await timeIt(() => HistoryStore.open(storePath, { ...STORE_OPTIONS, verify }));
        (verify === 'full' ? fullMs : quickMs).push(t.ms);
        await t.value.close();
      }
    }
    result.rows.push({
      case: `open a ${ROWS}-row store with the full check (reads every block)`,
      metric: 'ms',
      unit: 'ms',
      value: summarize(fullMs),
      baseline: { name: "open with verify: 'quick' (metadata only)", metric: 'ms', value: summarize(quickMs) },
      ratio: summarize(pairedRatios(fullMs, quickMs)),
      ratioMeaning: 'open: time, full / quick (lower is better)',
    });
    log(`  open: full ${fmtSummary(summarize(fullMs))} ms, quick ${fmtSummary(summarize(quickMs))} ms`);

    // ---- SQLite, for the choice of engine
    const sq = await sqliteFigures(dir, storePath, since.getTime(), until.getTime());
    if (sq) {
      const tm = summarize(topStore).median;
      const sm = summarize(seriesStore).median;
      result.tables.push({
        title: `The same queries in SQLite ${sq.version} (the engine better-sqlite3 embeds), same rows and columns, index on ts, timed inside the engine`,
        header: ['query', 'SQLite ms', 'this store (DuckDB) ms', 'SQLite / DuckDB'],
        rows: [
          ['top-10 talkers, last hour', fmtSummary(summarize(sq.topMs)), fmt(tm), `${fmt(summarize(sq.topMs).median / tm)}×`],
          ['1-minute time series, last hour', fmtSummary(summarize(sq.seriesMs)), fmt(sm), `${fmt(summarize(sq.seriesMs).median / sm)}×`],
        ],
      });
      log(`  SQLite ${sq.version}: top-10 ${fmtSummary(summarize(sq.topMs))} ms, series ${fmtSummary(summarize(sq.seriesMs))} ms`);
    } else {
      result.notes.push('sqlite3 is not installed: no SQLite comparison this run.');
    }
    result.notes.push(
      'The store runs DuckDB with 1 thread (its default: the agent shares the node). Store times include the JS side: binding, reading and converting the results.',
      'The JS baselines aggregate rows already in memory; the store reads them from its file (in the page cache here).',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  result.durationMs = (nowNs() - started) / 1e6;
  log(`history-store: wrote ${writeResult(result)}`);
}

await main();
