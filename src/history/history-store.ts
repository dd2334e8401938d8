/**
 * Flow history: flow records and security events in an embedded DuckDB
 * file, so `observe --since 1h` and `top --since 1h` can answer after the
 * live ring of recent flows has moved on, and after a restart.
 *
 * Why DuckDB: the questions asked of history are time-bucketed sums and
 * top-N aggregations over millions of rows, which a columnar engine answers
 * by reading two or three columns; it ships as a prebuilt binary package,
 * so nothing is compiled on the node (docs/history.md has the figures).
 *
 * How it behaves:
 * - append()/appendEvents() only buffer. The buffer is written every
 *   `flushIntervalMs`, or as soon as it holds `batchSize` rows, one
 *   transaction per batch (DuckDB's WAL is synced on commit), so a crash
 *   loses at most what was buffered.
 * - Every operation on the database runs through one queue on one
 *   connection: a flush, a query and a retention pass never interleave, so
 *   no explicit transaction is ever shared by accident.
 * - Retention runs on open and then on a timer: by time (rows older than
 *   `retentionMs`) and by size (see enforceSize()).
 * - A store that cannot be opened or fails the check on open is moved aside
 *   to `<path>.corrupt-<time>` and a new one started; a store that cannot be
 *   used at all (locked by another process, unwritable directory) falls back
 *   to an in-memory store. Either way open() resolves and says so in
 *   `recovery`, so an agent never crash-loops on its history.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { BIGINT, DuckDBInstance, INTEGER, LIST, TIMESTAMP, UHUGEINT, UTINYINT, VARCHAR, listValue, type DuckDBConnection, type DuckDBType, type DuckDBValue, type JS } from '@duckdb/node-api';
import type { FlowRecord, FlowRecordReason } from '../agent/flow-accounter.js';
import { FilterError, IDENTITY_FILTER_PARAMS, LIVE_IDENTITY_PARAMS, LIVE_ONLY_MESSAGE, parseFilter, parseIdentityFilter, type FilterIdentity, type FlowFilter, type IdentityFilter, type IdentityResolver } from '../agent/flow-filter.js';
import { SEVERITIES, type Severity } from '../abi/layouts.js';
import { ClosedError, InvalidArgumentError, KubeNetProbeError } from '../errors.js';
import type { Direction, IpFamily, SecurityEvent } from '../types.js';
import { addressRange, ipToBigInt, type AddressRange } from './ip.js';
import {
  EVENTS_TABLE,
  EVENT_COLUMNS,
  FLOWS_TABLE,
  FLOW_COLUMNS,
  META_TABLE,
  MIGRATES_FROM,
  SCHEMA_VERSION,
  expectedColumns,
  migrationStatements,
  schemaStatements,
  timestampOf,
  type Column,
  type EventRow,
  type FlowRow,
} from './schema.js';

// ---- Options ----------------------------------------------------------------

export interface HistoryStoreOptions {
  /** Rows older than this (by their time) are deleted. Default 7 days; Infinity keeps them. */
  retentionMs?: number;
  /** The file (with its WAL) is kept under this many bytes. Default 1 GiB; at least 4 MiB; Infinity for no limit. */
  maxBytes?: number;
  /** Buffered rows are written at least this often. Default 1000 ms. */
  flushIntervalMs?: number;
  /** Rows per transaction; a full buffer is written at once. Default 5000. */
  batchSize?: number;
  /** How often retention runs after the pass on open. Default 60 s. */
  retentionIntervalMs?: number;
  /** Rows held while writes fail or lag; beyond it new rows are dropped and counted. Default 20 * batchSize. */
  maxBuffered?: number;
  /** The pod of an address (namespace, pod, workload, service), resolved when a row is appended (pods come and go). */
  identity?: IdentityResolver;
  /** DuckDB worker threads. Default 1: the agent shares the node with the workloads it watches. */
  threads?: number;
  /** DuckDB's memory limit. Default 256 MiB. */
  memoryLimitBytes?: number;
  /**
   * The check on open. 'quick' (default): the tables are this store's, and
   * the file holds every block its metadata names (a truncated file fails).
   * 'full' also reads every block, so DuckDB checks each block's checksum:
   * about 1 s per million flow records on one thread, too slow to be the
   * default for a store of tens of millions. Damage that the quick check
   * can't see is found by the first query or checkpoint that reads it, and
   * recovered then the same way.
   */
  verify?: 'full' | 'quick';
  /** Things a caller should log: a store moved aside, a failed write, rows deleted for size. */
  onNotice?: (notice: HistoryNotice) => void;
  /** The clock retention uses (ms since the epoch); tests set it. */
  now?: () => number;
}

type Resolved = Required<Omit<HistoryStoreOptions, 'identity' | 'onNotice'>> & Pick<HistoryStoreOptions, 'identity' | 'onNotice'>;

const DAY = 86_400_000;
const MiB = 1024 * 1024;
export const MIN_MAX_BYTES = 4 * MiB;

/** Rows appended between yields to the event loop (~5 ms of synchronous work). */
const APPEND_SLICE = 1024;

/** A DuckDB file starts with three 4 KiB headers (the main one and two alternating database headers); blocks follow. */
const DB_HEADER_BYTES = 3 * 4096;

/** Size retention: past HIGH_WATER * maxBytes of live data, delete the oldest down to LOW_WATER * maxBytes. */
const HIGH_WATER = 0.9;
const LOW_WATER = 0.7;

/** Open attempts that never finished (the process died in DuckDB) before the file is treated as poison. */
const MAX_UNFINISHED_OPENS = 2;

function resolveOptions(o: HistoryStoreOptions): Resolved {
  const batchSize = o.batchSize ?? 5000;
  const r: Resolved = {
    retentionMs: o.retentionMs ?? 7 * DAY,
    maxBytes: o.maxBytes ?? 1024 * MiB,
    flushIntervalMs: o.flushIntervalMs ?? 1000,
    batchSize,
    retentionIntervalMs: o.retentionIntervalMs ?? 60_000,
    maxBuffered: o.maxBuffered ?? 20 * batchSize,
    threads: o.threads ?? 1,
    memoryLimitBytes: o.memoryLimitBytes ?? 256 * MiB,
    verify: o.verify ?? 'quick',
    now: o.now ?? Date.now,
    identity: o.identity,
    onNotice: o.onNotice,
  };
  const positive = (name: string, v: number, opts: { integer?: boolean; infinite?: boolean; min?: number } = {}): void => {
    const ok = (opts.infinite && v === Infinity) || (Number.isFinite(v) && v >= (opts.min ?? 1) && (!opts.integer || Number.isInteger(v)));
    if (!ok) {
      const what = `${opts.integer ? 'an integer' : 'a number'} >= ${opts.min ?? 1}${opts.infinite ? ' (or Infinity)' : ''}`;
      throw new InvalidArgumentError(`history store option ${name} must be ${what}, got ${String(v)}`);
    }
  };
  positive('retentionMs', r.retentionMs, { infinite: true });
  positive('maxBytes', r.maxBytes, { infinite: true, min: MIN_MAX_BYTES });
  positive('flushIntervalMs', r.flushIntervalMs, { integer: true });
  positive('batchSize', r.batchSize, { integer: true });
  positive('retentionIntervalMs', r.retentionIntervalMs, { integer: true });
  positive('maxBuffered', r.maxBuffered, { integer: true, min: r.batchSize });
  positive('threads', r.threads, { integer: true });
  positive('memoryLimitBytes', r.memoryLimitBytes, { integer: true, min: 16 * MiB });
  if (r.verify !== 'full' && r.verify !== 'quick') throw new InvalidArgumentError(`history store option verify must be 'full' or 'quick', got ${JSON.stringify(r.verify)}`);
  return r;
}

// ---- Public shapes ----------------------------------------------------------

export type HistoryNoticeKind = 'recovered' | 'migrated' | 'in-memory' | 'flush-failed' | 'dropped' | 'retention' | 'retention-failed' | 'compacted' | 'reopened' | 'close-failed';

export interface HistoryNotice {
  kind: HistoryNoticeKind;
  /** One line, ready to log. */
  message: string;
  error?: unknown;
}

/** What open() had to do to give the caller a working store. */
export interface RecoveryNote {
  /** 'moved-aside': the file was unusable and a new one started; 'in-memory': no file store could be used. */
  action: 'moved-aside' | 'in-memory';
  reason: string;
  /** Where the unusable files went (the store, and its WAL if there was one). */
  movedTo: string[];
  /** One line, ready to log. */
  message: string;
}

export interface TimeBounds {
  /** Inclusive. Default: no lower bound. */
  since?: Date;
  /** Exclusive. Default: no upper bound. */
  until?: Date;
}

export interface FlowQuery extends TimeBounds {
  filters?: FlowFilter;
  /** The newest this many rows (returned oldest first). Default 1000, at most 1,000,000. */
  limit?: number;
}

/** What owns a pod: a Deployment, StatefulSet, DaemonSet, CronJob, Job, or Pod for a bare one. */
export interface Workload {
  kind: string;
  name: string;
}

export interface HistoryFlow {
  time: Date;
  firstSeen: Date;
  reason: FlowRecordReason;
  interface: string | null;
  ifindex: number;
  direction: Direction;
  family: IpFamily;
  protocol: string;
  srcIp: string;
  srcPort: number;
  srcNamespace: string | null;
  srcPod: string | null;
  /** The end's workload and service when the record was written; null where unknown (and in rows written before schema 3). */
  srcWorkload: Workload | null;
  srcService: string | null;
  dstIp: string;
  dstPort: number;
  dstNamespace: string | null;
  dstPod: string | null;
  dstWorkload: Workload | null;
  dstService: string | null;
  packets: number;
  bytes: number;
  deltaPackets: number;
  deltaBytes: number;
  packetsPerSec: number;
  bytesPerSec: number;
  tcpFlags: string[];
}

export type TalkerGroup = 'pair' | 'source' | 'destination';

export interface TopTalkersQuery extends TimeBounds {
  by?: 'bytes' | 'packets';
  /** Default 10, at most 10,000. */
  limit?: number;
  /** 'pair' (default): source and destination; 'source' or 'destination' alone. */
  groupBy?: TalkerGroup;
  filters?: FlowFilter;
  /** See COUNT_ONCE below. Default false: every row counts. */
  countOnce?: boolean;
}

/*
 * COUNT_ONCE. A node sees one packet at several points: pod a's veth
 * (ingress), then pod b's veth (egress), then perhaps eth0. Each is a flow
 * record of its own, so summing every row counts such a packet two or three
 * times. With `countOnce`, each direction of a flow (protocol, addresses,
 * ports, identity) counts once: of the observation points (interface and
 * direction) that saw it in the range (or the bucket), only the one that saw
 * the most packets, as the agent's conversations do.
 */

/** One talker: the ends it is grouped by (an IP with the identity it had), and what it sent in the range. */
export interface TopTalker {
  srcIp?: string;
  srcNamespace?: string | null;
  srcPod?: string | null;
  srcWorkload?: Workload | null;
  srcService?: string | null;
  dstIp?: string;
  dstNamespace?: string | null;
  dstPod?: string | null;
  dstWorkload?: Workload | null;
  dstService?: string | null;
  /** Sums of the records' deltas in the range. */
  bytes: number;
  packets: number;
  /** Flow records summed. */
  records: number;
}

export interface TimeSeriesQuery extends TimeBounds {
  /** Bucket width; buckets start at multiples of it since the epoch. */
  bucketMs: number;
  filters?: FlowFilter;
  /** See COUNT_ONCE above: per bucket, each flow direction from its busiest observation point. Default false. */
  countOnce?: boolean;
}

export interface TimeSeriesPoint {
  start: Date;
  bytes: number;
  packets: number;
  records: number;
}

export interface TimeSeries {
  since: Date;
  until: Date;
  bucketMs: number;
  /** Every bucket from the one holding `since` to the one before `until`, empty ones as zeros. */
  points: TimeSeriesPoint[];
}

/** The identity filters (namespace, pod, workload, service) match when the attacker or the target was such a pod; label is refused (not kept). */
export interface EventQuery extends TimeBounds, IdentityFilter {
  /** Any of these types. */
  type?: string | readonly string[];
  /** At least this severity. */
  severity?: Severity;
  /** The attacker is this address or in this CIDR block. */
  source?: string;
  /** The newest this many (returned oldest first). Default 1000, at most 1,000,000. */
  limit?: number;
}

export interface HistoryEvent {
  time: Date;
  type: string;
  severity: Severity;
  description: string;
  attacker: { ip: string; port: number };
  target: { ip: string; port: number };
  interface: string | null;
  hook: string;
  protocol: string;
  count: number;
  threshold: number;
  windowMs: number;
  suppressed: number;
  tcpFlags: string[];
  /** Pod identity of each end when the event was written; null where unknown. */
  attackerNamespace: string | null;
  attackerPod: string | null;
  targetNamespace: string | null;
  targetPod: string | null;
  /** Workload and service of each end when the event was written; null where unknown (and in rows written before schema 3). */
  attackerWorkload: Workload | null;
  attackerService: string | null;
  targetWorkload: Workload | null;
  targetService: string | null;
  cpu: number;
  /** Per-CPU sequence number. */
  seq: bigint;
}

export interface HistoryStats {
  path: string;
  inMemory: boolean;
  flows: number;
  events: number;
  oldest: Date | undefined;
  newest: Date | undefined;
  /** The database file and its WAL. */
  bytesOnDisk: number;
  fileBytes: number;
  walBytes: number;
  /** Blocks holding live data (DuckDB reuses the rest before the file grows). */
  usedBytes: number;
  /** Appended, not yet written. */
  buffered: number;
  written: number;
  /** Lost to failed writes or a full buffer. */
  dropped: number;
  lastError: string | undefined;
  recovery: RecoveryNote | undefined;
}

export interface RetentionReport {
  deletedByTime: number;
  deletedBySize: number;
  compacted: boolean;
  bytesBefore: number;
  bytesAfter: number;
}

export class HistoryStoreError extends KubeNetProbeError {
  constructor(message: string, hint: string | undefined, cause?: unknown) {
    super('SYSTEM', message, { ...(hint ? { hint } : {}), cause });
  }
}

// ---- Helpers ----------------------------------------------------------------

const MAX_ROWS = 1_000_000;
const MAX_BUCKETS = 100_000;
const TYPE_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** DuckDB refuses a second process on the same file; that store is fine, just not ours to use. */
function isLockConflict(err: unknown): boolean {
  return /Could not set lock|Conflicting lock/i.test(message(err));
}

/** The database can no longer be used as it is: reopen it (the check on open decides whether it is corrupt). */
function isFatal(err: unknown): boolean {
  return /invalidated|Corrupt database|Could not read enough bytes|FATAL|INTERNAL Error|not a valid DuckDB/i.test(message(err));
}

function fileBytes(p: string): number {
  try {
    return statSync(p).size;
  } catch {
    return 0;
  }
}

function num(v: JS | undefined): number {
  if (typeof v === 'bigint') return Number(v);
  return typeof v === 'number' ? v : 0;
}

function str(v: JS | undefined): string {
  return typeof v === 'string' ? v : '';
}

function optStr(v: JS | undefined): string | null {
  return typeof v === 'string' ? v : null;
}

function workload(kind: JS | undefined, name: JS | undefined): Workload | null {
  return typeof kind === 'string' && typeof name === 'string' ? { kind, name } : null;
}

function date(v: JS | undefined): Date {
  return v instanceof Date ? v : new Date(NaN);
}

function flags(v: JS | undefined): string[] {
  const s = str(v);
  return s === '' ? [] : s.split(',');
}

function checkLimit(name: string, v: number | undefined, dflt: number, max: number): number {
  const n = v ?? dflt;
  if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${name} must be an integer from 1 to ${max}, got ${String(v)}`);
  return n;
}

function checkDate(name: string, d: Date | undefined): void {
  if (d !== undefined && !(d instanceof Date && Number.isFinite(d.getTime()))) throw new InvalidArgumentError(`${name} must be a valid Date, got ${String(d)}`);
}

/**
 * ATTACH takes no parameters, so the compaction file's path goes into the
 * SQL text: as a quoted literal with quotes doubled, and only a path this
 * store made from its own (absolute, NUL-free) path.
 */
function sqlString(s: string): string {
  if (s.includes('\0')) throw new InvalidArgumentError(`path contains a NUL byte: ${JSON.stringify(s)}`);
  return `'${s.replaceAll("'", "''")}'`;
}

/** Bound parameters with their types (DuckDB would otherwise guess DOUBLE for every JS number). */
class Params {
  readonly values: Record<string, DuckDBValue> = {};
  readonly types: Record<string, DuckDBType> = {};
  set(name: string, value: DuckDBValue, type: DuckDBType): string {
    this.values[name] = value;
    this.types[name] = type;
    return `$${name}`;
  }
}

function timeClauses(q: TimeBounds, p: Params, where: string[]): void {
  checkDate('since', q.since);
  checkDate('until', q.until);
  if (q.since) where.push(`ts >= ${p.set('since', timestampOf(q.since.getTime()), TIMESTAMP)}`);
  if (q.until) where.push(`ts < ${p.set('until', timestampOf(q.until.getTime()), TIMESTAMP)}`);
}

/**
 * The flow filter as SQL over bound parameters, with the same meanings as
 * compileFilter() in src/agent/flow-filter.ts. The filter goes through
 * parseFilter() first, so a bad value fails here with the same message the
 * API and CLI give.
 */
function filterClauses(filters: FlowFilter | undefined, p: Params, where: string[]): void {
  if (!filters) return;
  const asStrings: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(filters)) if (v !== undefined) asStrings[k] = String(v);
  const f = parseFilter(asStrings);
  if (f.ip !== undefined) {
    const ip = p.set('ip', ipToBigInt(f.ip)!, UHUGEINT);
    where.push(`(src_addr = ${ip} OR dst_addr = ${ip})`);
  }
  if (f.cidr !== undefined) {
    const r = addressRange(f.cidr)!;
    const lo = p.set('cidr_lo', r.lo, UHUGEINT);
    const hi = p.set('cidr_hi', r.hi, UHUGEINT);
    where.push(`(src_addr BETWEEN ${lo} AND ${hi} OR dst_addr BETWEEN ${lo} AND ${hi})`);
  }
  if (f.port !== undefined) {
    const port = p.set('port', f.port, INTEGER);
    where.push(`(src_port = ${port} OR dst_port = ${port})`);
  }
  if (f.protocol !== undefined) where.push(`lower(protocol) = ${p.set('protocol', f.protocol, VARCHAR)}`);
  if (f.direction !== undefined) where.push(`direction = ${p.set('direction', f.direction, VARCHAR)}`);
  if (f.interface !== undefined) where.push(`interface = ${p.set('interface', f.interface, VARCHAR)}`);
  identityClauses(f, ['src', 'dst'], p, where);
}

/**
 * The identity filters as SQL over the identity columns of a row's two ends
 * (`src`/`dst` in flows, `attacker`/`target` in events), with the meanings
 * of compileIdentityFilter() in src/agent/flow-filter.ts: each filter given
 * matches when either end's identity, as written, does. Values are already
 * checked. Labels are not kept: a label filter is refused.
 */
function identityClauses(f: IdentityFilter, ends: readonly [string, string], p: Params, where: string[]): void {
  for (const name of LIVE_IDENTITY_PARAMS) {
    if (f[name] !== undefined) throw new FilterError(name, LIVE_ONLY_MESSAGE);
  }
  // The prefixes are constants (above), never input.
  const either = (clause: (end: string) => string): void => void where.push(`(${ends.map(clause).join(' OR ')})`);
  /** "name" or "<qualifier>/name": the parts, the qualifier bound only when given. */
  const split = (raw: string, param: string, qualifier: string): { name: string; qual: string | undefined } => {
    const slash = raw.indexOf('/');
    return {
      name: p.set(param, raw.slice(slash + 1), VARCHAR),
      qual: slash < 0 ? undefined : p.set(`${param}_${qualifier}`, qualifier === 'kind' ? raw.slice(0, slash).toLowerCase() : raw.slice(0, slash), VARCHAR),
    };
  };
  if (f.namespace !== undefined) {
    const ns = p.set('namespace', f.namespace, VARCHAR);
    either((e) => `${e}_namespace = ${ns}`);
  }
  if (f.pod !== undefined) {
    const { name, qual } = split(f.pod, 'pod', 'namespace');
    either((e) => (qual === undefined ? `${e}_pod = ${name}` : `(${e}_namespace = ${qual} AND ${e}_pod = ${name})`));
  }
  if (f.workload !== undefined) {
    // The kind in any case, as live.
    const { name, qual } = split(f.workload, 'workload', 'kind');
    either((e) => (qual === undefined ? `${e}_workload_name = ${name}` : `(lower(${e}_workload_kind) = ${qual} AND ${e}_workload_name = ${name})`));
  }
  if (f.service !== undefined) {
    // A service is in its pods' namespace.
    const { name, qual } = split(f.service, 'service', 'namespace');
    either((e) => (qual === undefined ? `${e}_service = ${name}` : `(${e}_namespace = ${qual} AND ${e}_service = ${name})`));
  }
}

function whereSql(where: string[]): string {
  return where.length ? `WHERE ${where.join(' AND ')}` : '';
}

/** A flow direction: what is counted once (COUNT_ONCE), whatever saw it. */
const DIRECTION_COLUMNS =
  'protocol_number, src_addr, src_port, dst_addr, dst_port, src_ip, src_namespace, src_pod, src_workload_kind, src_workload_name, src_service, ' +
  'dst_ip, dst_namespace, dst_pod, dst_workload_kind, dst_workload_name, dst_service';

/**
 * COUNT_ONCE: each flow direction's sums from its busiest observation point
 * (interface and direction), per `bucket` if one is given (an SQL
 * expression over ts, or ''). Columns: bucket (if given), the direction
 * columns, bytes, packets, records.
 */
function onceSql(bucket: string, where: string): string {
  const part = bucket ? `${bucket}, ${DIRECTION_COLUMNS}` : DIRECTION_COLUMNS;
  return (
    `SELECT * FROM (SELECT ${bucket ? `${bucket} AS bucket, ` : ''}${DIRECTION_COLUMNS}, ` +
    'sum(delta_bytes) AS bytes, sum(delta_packets) AS packets, count(*) AS records, ' +
    `row_number() OVER (PARTITION BY ${part} ORDER BY sum(delta_packets) DESC, sum(delta_bytes) DESC, ifindex, direction) AS observation ` +
    `FROM ${FLOWS_TABLE} ${where} GROUP BY ${part}, ifindex, interface, direction) WHERE observation = 1`
  );
}

const END_COLUMNS = (end: 'src' | 'dst'): string[] => [`${end}_ip`, `${end}_namespace`, `${end}_pod`, `${end}_workload_kind`, `${end}_workload_name`, `${end}_service`];
const TALKER_COLUMNS: Record<TalkerGroup, readonly string[]> = {
  pair: [...END_COLUMNS('src'), ...END_COLUMNS('dst')],
  source: END_COLUMNS('src'),
  destination: END_COLUMNS('dst'),
};
const TALKER_ORDER: Record<'bytes' | 'packets', string> = {
  bytes: 'bytes DESC, packets DESC',
  packets: 'packets DESC, bytes DESC',
};

// ---- The database handle ----------------------------------------------------

interface Db {
  instance: DuckDBInstance;
  conn: DuckDBConnection;
  inMemory: boolean;
}

function closeDb(db: Db): void {
  try {
    db.conn.closeSync();
  } finally {
    db.instance.closeSync();
  }
}

// ---- The store --------------------------------------------------------------

export class HistoryStore {
  readonly path: string;
  /** Set when open() had to move the store aside or fall back to memory. */
  recovery: RecoveryNote | undefined;

  private readonly opts: Resolved;
  private db: Db | undefined;
  private flowBuf: FlowRow[] = [];
  private eventBuf: EventRow[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  private flushQueued = false;
  private closed = false;
  private closing: Promise<void> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private written = 0;
  private dropped = 0;
  private lastError: string | undefined;
  private lastReopen = 0;

  private constructor(path: string, opts: Resolved) {
    this.path = path;
    this.opts = opts;
  }

  /**
   * Opens (or creates) the store at `path`. Resolves with a working store
   * even when the file is corrupt, unreadable or locked: `recovery` says what
   * was done and should be logged. Rejects only on invalid options.
   */
  static async open(path: string, options: HistoryStoreOptions = {}): Promise<HistoryStore> {
    if (typeof path !== 'string' || path === '' || path === ':memory:' || path.includes('\0')) {
      throw new InvalidArgumentError(`history store path must be a file path, got ${JSON.stringify(path)}`, 'e.g. /var/lib/kubenetprobe/history.duckdb');
    }
    const store = new HistoryStore(resolve(path), resolveOptions(options));
    store.db = await store.openWithRecovery();
    try {
      await store.retention();
    } catch (err) {
      store.notice('retention-failed', `history: retention on open failed: ${message(err)}`, err);
    }
    store.flushTimer = setInterval(() => store.timedFlush(), store.opts.flushIntervalMs);
    store.retentionTimer = setInterval(() => {
      // Failures are reported through onNotice; a timer must never throw.
      if (!store.closed) void store.enforceRetention().catch(() => {});
    }, store.opts.retentionIntervalMs);
    // History must never keep a process alive that is otherwise done.
    store.flushTimer.unref();
    store.retentionTimer.unref();
    return store;
  }

  // ---- Writing --------------------------------------------------------------

  /** Buffers flow records; `at` is their time (default: each flow's lastSeen). */
  append(records: readonly FlowRecord[], opts: { at?: Date } = {}): void {
    this.assertOpen();
    const at = opts.at?.getTime();
    for (const r of this.admit(records)) {
      const f = r.flow;
      const k = f.key;
      const src = this.identify(k.srcIp);
      const dst = this.identify(k.dstIp);
      const t = at ?? f.lastSeen.getTime();
      this.flowBuf.push({
        ts: Number.isFinite(t) ? t : this.opts.now(),
        firstSeen: Number.isFinite(f.firstSeen.getTime()) ? f.firstSeen.getTime() : 0,
        reason: r.reason,
        iface: f.interface,
        ifindex: k.ifindex,
        direction: k.direction,
        family: k.family,
        protocol: k.protocol,
        protocolNumber: k.protocolNumber,
        srcIp: k.srcIp,
        srcPort: k.srcPort,
        dstIp: k.dstIp,
        dstPort: k.dstPort,
        srcAddr: ipToBigInt(k.srcIp) ?? 0n,
        dstAddr: ipToBigInt(k.dstIp) ?? 0n,
        srcNamespace: src?.namespace,
        srcPod: src?.pod,
        dstNamespace: dst?.namespace,
        dstPod: dst?.pod,
        srcWorkloadKind: src?.workload?.kind,
        srcWorkloadName: src?.workload?.name,
        srcService: src?.service,
        dstWorkloadKind: dst?.workload?.kind,
        dstWorkloadName: dst?.workload?.name,
        dstService: dst?.service,
        deltaPackets: r.deltaPackets,
        deltaBytes: r.deltaBytes,
        packets: f.packets,
        bytes: f.bytes,
        packetsPerSec: r.packetsPerSec,
        bytesPerSec: r.bytesPerSec,
        tcpFlags: f.tcpFlags.join(','),
      });
    }
    this.afterAppend();
  }

  /** Buffers security events. */
  appendEvents(events: readonly SecurityEvent[]): void {
    this.assertOpen();
    for (const e of this.admit(events)) {
      const t = e.timestamp.getTime();
      const level = SEVERITIES.indexOf(e.severity);
      const attacker = this.identify(e.attacker.ip);
      const target = this.identify(e.target.ip);
      this.eventBuf.push({
        ts: Number.isFinite(t) ? t : this.opts.now(),
        type: e.type,
        severity: e.severity,
        severityLevel: level < 0 ? 0 : level,
        description: e.description,
        attackerIp: e.attacker.ip,
        attackerPort: e.attacker.port,
        attackerAddr: ipToBigInt(e.attacker.ip) ?? 0n,
        targetIp: e.target.ip,
        targetPort: e.target.port,
        targetAddr: ipToBigInt(e.target.ip) ?? 0n,
        iface: e.interface,
        hook: e.hook,
        protocol: e.key.protocol,
        count: e.count,
        threshold: e.threshold,
        windowMs: e.windowMs,
        suppressed: e.suppressed,
        tcpFlags: e.tcpFlags.join(','),
        attackerNamespace: attacker?.namespace,
        attackerPod: attacker?.pod,
        targetNamespace: target?.namespace,
        targetPod: target?.pod,
        cpu: Number.isInteger(e.cpu) && e.cpu >= 0 ? e.cpu : 0,
        seq: typeof e.seq === 'bigint' && e.seq >= 0n && e.seq < 1n << 64n ? e.seq : 0n,
        attackerWorkloadKind: attacker?.workload?.kind,
        attackerWorkloadName: attacker?.workload?.name,
        attackerService: attacker?.service,
        targetWorkloadKind: target?.workload?.kind,
        targetWorkloadName: target?.workload?.name,
        targetService: target?.service,
      });
    }
    this.afterAppend();
  }

  /** Writes everything buffered so far; rejects if a batch could not be written (its rows are counted as dropped). */
  async flush(): Promise<void> {
    this.assertOpen();
    return this.exclusive(() => this.flushAll());
  }

  // ---- Queries --------------------------------------------------------------

  async queryFlows(q: FlowQuery = {}): Promise<HistoryFlow[]> {
    this.assertOpen();
    const p = new Params();
    const where: string[] = [];
    timeClauses(q, p, where);
    filterClauses(q.filters, p, where);
    const limit = p.set('limit', checkLimit('limit', q.limit, 1000, MAX_ROWS), BIGINT);
    const sql =
      'SELECT ts, first_seen, reason, interface, ifindex, direction, family, protocol, src_ip, src_port, src_namespace, src_pod, ' +
      'src_workload_kind, src_workload_name, src_service, dst_ip, dst_port, dst_namespace, dst_pod, dst_workload_kind, dst_workload_name, dst_service, ' +
      'packets, bytes, delta_packets, delta_bytes, packets_per_sec, bytes_per_sec, tcp_flags ' +
      `FROM ${FLOWS_TABLE} ${whereSql(where)} ORDER BY ts DESC, rowid DESC LIMIT ${limit}`;
    const rows = await this.read(sql, p);
    return rows.reverse().map((r) => ({
      time: date(r['ts']),
      firstSeen: date(r['first_seen']),
      reason: str(r['reason']) as FlowRecordReason,
      interface: optStr(r['interface']),
      ifindex: num(r['ifindex']),
      direction: str(r['direction']) as Direction,
      family: str(r['family']) as IpFamily,
      protocol: str(r['protocol']),
      srcIp: str(r['src_ip']),
      srcPort: num(r['src_port']),
      srcNamespace: optStr(r['src_namespace']),
      srcPod: optStr(r['src_pod']),
      srcWorkload: workload(r['src_workload_kind'], r['src_workload_name']),
      srcService: optStr(r['src_service']),
      dstIp: str(r['dst_ip']),
      dstPort: num(r['dst_port']),
      dstNamespace: optStr(r['dst_namespace']),
      dstPod: optStr(r['dst_pod']),
      dstWorkload: workload(r['dst_workload_kind'], r['dst_workload_name']),
      dstService: optStr(r['dst_service']),
      packets: num(r['packets']),
      bytes: num(r['bytes']),
      deltaPackets: num(r['delta_packets']),
      deltaBytes: num(r['delta_bytes']),
      packetsPerSec: num(r['packets_per_sec']),
      bytesPerSec: num(r['bytes_per_sec']),
      tcpFlags: flags(r['tcp_flags']),
    }));
  }

  /** The biggest senders in the range, by the sum of their records' deltas. */
  async topTalkers(q: TopTalkersQuery = {}): Promise<TopTalker[]> {
    this.assertOpen();
    const by = q.by ?? 'bytes';
    const groupBy = q.groupBy ?? 'pair';
    // Column names can't be bound: both come from fixed tables, after this check.
    if (!Object.hasOwn(TALKER_ORDER, by)) throw new InvalidArgumentError(`by must be bytes or packets, got ${JSON.stringify(by)}`);
    if (!Object.hasOwn(TALKER_COLUMNS, groupBy)) throw new InvalidArgumentError(`groupBy must be pair, source or destination, got ${JSON.stringify(groupBy)}`);
    const cols = TALKER_COLUMNS[groupBy];
    const p = new Params();
    const where: string[] = [];
    timeClauses(q, p, where);
    filterClauses(q.filters, p, where);
    const limit = p.set('limit', checkLimit('limit', q.limit, 10, 10_000), BIGINT);
    const source = q.countOnce ? `(${onceSql('', whereSql(where))})` : FLOWS_TABLE;
    const [bytes, packets, records] = q.countOnce ? ['bytes', 'packets', 'records'] : ['delta_bytes', 'delta_packets', '*'];
    const sql =
      `SELECT ${cols.join(', ')}, sum(${bytes}) AS bytes, sum(${packets}) AS packets, ${q.countOnce ? `sum(${records})` : 'count(*)'} AS records ` +
      `FROM ${source} ${q.countOnce ? '' : whereSql(where)} GROUP BY ${cols.join(', ')} ` +
      `ORDER BY ${TALKER_ORDER[by]}, ${cols.join(', ')} LIMIT ${limit}`;
    const rows = await this.read(sql, p);
    return rows.map((r) => {
      const t: TopTalker = { bytes: num(r['bytes']), packets: num(r['packets']), records: num(r['records']) };
      const end = (e: 'src' | 'dst'): Partial<TopTalker> => ({
        [`${e}Ip`]: str(r[`${e}_ip`]),
        [`${e}Namespace`]: optStr(r[`${e}_namespace`]),
        [`${e}Pod`]: optStr(r[`${e}_pod`]),
        [`${e}Workload`]: workload(r[`${e}_workload_kind`], r[`${e}_workload_name`]),
        [`${e}Service`]: optStr(r[`${e}_service`]),
      });
      if (groupBy !== 'destination') Object.assign(t, end('src'));
      if (groupBy !== 'source') Object.assign(t, end('dst'));
      return t;
    });
  }

  /**
   * Bytes and packets per bucket (sums of the records' deltas). `until`
   * defaults to now and `since` to an hour before it; the first and last
   * buckets are partial when the range doesn't fall on bucket edges.
   */
  async timeSeries(q: TimeSeriesQuery): Promise<TimeSeries> {
    this.assertOpen();
    if (!Number.isInteger(q.bucketMs) || q.bucketMs < 1) throw new InvalidArgumentError(`bucketMs must be a positive integer, got ${String(q.bucketMs)}`);
    checkDate('since', q.since);
    checkDate('until', q.until);
    const until = q.until ?? new Date(this.opts.now());
    const since = q.since ?? new Date(until.getTime() - 3_600_000);
    if (since.getTime() >= until.getTime()) throw new InvalidArgumentError(`since (${since.toISOString()}) must be before until (${until.toISOString()})`);
    const first = Math.floor(since.getTime() / q.bucketMs) * q.bucketMs;
    const count = Math.ceil((until.getTime() - first) / q.bucketMs);
    if (count > MAX_BUCKETS) {
      throw new InvalidArgumentError(`${count} buckets of ${q.bucketMs} ms from ${since.toISOString()} to ${until.toISOString()} is more than ${MAX_BUCKETS}`, 'use wider buckets or a shorter range');
    }
    const p = new Params();
    const where: string[] = [];
    timeClauses({ since, until }, p, where);
    filterClauses(q.filters, p, where);
    const bucket = p.set('bucket', q.bucketMs, BIGINT);
    const bucketOf = `(epoch_ms(ts) // ${bucket}) * ${bucket}`;
    const sql = q.countOnce
      ? `SELECT bucket, sum(bytes) AS bytes, sum(packets) AS packets, sum(records) AS records FROM (${onceSql(bucketOf, whereSql(where))}) GROUP BY 1 ORDER BY 1`
      : `SELECT ${bucketOf} AS bucket, sum(delta_bytes) AS bytes, sum(delta_packets) AS packets, count(*) AS records ` +
        `FROM ${FLOWS_TABLE} ${whereSql(where)} GROUP BY 1 ORDER BY 1`;
    const rows = await this.read(sql, p);
    const byStart = new Map(rows.map((r) => [num(r['bucket']), r]));
    const points: TimeSeriesPoint[] = [];
    for (let i = 0; i < count; i++) {
      const start = first + i * q.bucketMs;
      const r = byStart.get(start);
      points.push({ start: new Date(start), bytes: num(r?.['bytes']), packets: num(r?.['packets']), records: num(r?.['records']) });
    }
    return { since, until, bucketMs: q.bucketMs, points };
  }

  async queryEvents(q: EventQuery = {}): Promise<HistoryEvent[]> {
    this.assertOpen();
    const p = new Params();
    const where: string[] = [];
    timeClauses(q, p, where);
    if (q.type !== undefined) {
      const types = typeof q.type === 'string' ? [q.type] : [...q.type];
      const bad = types.find((t) => !TYPE_NAME.test(t));
      if (bad !== undefined || types.length === 0) throw new InvalidArgumentError(`type: not an event type name: ${JSON.stringify(bad ?? q.type)}`, 'e.g. tcp-port-scan');
      where.push(`list_contains(${p.set('types', listValue(types), LIST(VARCHAR))}, type)`);
    }
    if (q.severity !== undefined) {
      const level = SEVERITIES.indexOf(q.severity);
      if (level < 0) throw new InvalidArgumentError(`severity must be ${SEVERITIES.join(', ')}; got ${JSON.stringify(q.severity)}`);
      where.push(`severity_level >= ${p.set('severity', level, UTINYINT)}`);
    }
    if (q.source !== undefined) {
      const r: AddressRange | undefined = addressRange(q.source);
      if (!r) throw new InvalidArgumentError(`source: not an IP address or CIDR block: ${JSON.stringify(q.source)}`, 'e.g. 198.18.0.2 or 10.0.0.0/8');
      where.push(`attacker_addr BETWEEN ${p.set('source_lo', r.lo, UHUGEINT)} AND ${p.set('source_hi', r.hi, UHUGEINT)}`);
    }
    // Checked as the API and the CLI check them, so a bad value fails with the same message.
    const ident = parseIdentityFilter(Object.fromEntries(IDENTITY_FILTER_PARAMS.map((name) => [name, q[name] === '' ? undefined : q[name]])));
    identityClauses(ident, ['attacker', 'target'], p, where);
    const limit = p.set('limit', checkLimit('limit', q.limit, 1000, MAX_ROWS), BIGINT);
    const sql =
      'SELECT ts, type, severity, description, attacker_ip, attacker_port, target_ip, target_port, interface, hook, protocol, ' +
      'count, threshold, window_ms, suppressed, tcp_flags, attacker_namespace, attacker_pod, target_namespace, target_pod, cpu, seq, ' +
      'attacker_workload_kind, attacker_workload_name, attacker_service, target_workload_kind, target_workload_name, target_service ' +
      `FROM ${EVENTS_TABLE} ${whereSql(where)} ORDER BY ts DESC, rowid DESC LIMIT ${limit}`;
    const rows = await this.read(sql, p);
    return rows.reverse().map((r) => ({
      time: date(r['ts']),
      type: str(r['type']),
      severity: str(r['severity']) as Severity,
      description: str(r['description']),
      attacker: { ip: str(r['attacker_ip']), port: num(r['attacker_port']) },
      target: { ip: str(r['target_ip']), port: num(r['target_port']) },
      interface: optStr(r['interface']),
      hook: str(r['hook']),
      protocol: str(r['protocol']),
      count: num(r['count']),
      threshold: num(r['threshold']),
      windowMs: num(r['window_ms']),
      suppressed: num(r['suppressed']),
      tcpFlags: flags(r['tcp_flags']),
      attackerNamespace: optStr(r['attacker_namespace']),
      attackerPod: optStr(r['attacker_pod']),
      targetNamespace: optStr(r['target_namespace']),
      targetPod: optStr(r['target_pod']),
      attackerWorkload: workload(r['attacker_workload_kind'], r['attacker_workload_name']),
      attackerService: optStr(r['attacker_service']),
      targetWorkload: workload(r['target_workload_kind'], r['target_workload_name']),
      targetService: optStr(r['target_service']),
      cpu: num(r['cpu']),
      seq: typeof r['seq'] === 'bigint' ? r['seq'] : BigInt(num(r['seq'])),
    }));
  }

  async stats(): Promise<HistoryStats> {
    this.assertOpen();
    return this.exclusive(async () => {
      const db = this.handle();
      const reader = await db.conn.runAndReadAll(
        `SELECT (SELECT count(*) FROM ${FLOWS_TABLE}) AS flows, (SELECT count(*) FROM ${EVENTS_TABLE}) AS events, ` +
          `least((SELECT min(ts) FROM ${FLOWS_TABLE}), (SELECT min(ts) FROM ${EVENTS_TABLE})) AS oldest, ` +
          `greatest((SELECT max(ts) FROM ${FLOWS_TABLE}), (SELECT max(ts) FROM ${EVENTS_TABLE})) AS newest`,
      );
      const r = reader.getRowObjectsJS()[0] ?? {};
      const size = await this.sizeInfo(db);
      return {
        path: this.path,
        inMemory: db.inMemory,
        flows: num(r['flows']),
        events: num(r['events']),
        oldest: r['oldest'] instanceof Date ? r['oldest'] : undefined,
        newest: r['newest'] instanceof Date ? r['newest'] : undefined,
        bytesOnDisk: size.fileBytes + size.walBytes,
        fileBytes: size.fileBytes,
        walBytes: size.walBytes,
        usedBytes: size.usedBytes,
        buffered: this.flowBuf.length + this.eventBuf.length,
        written: this.written,
        dropped: this.dropped,
        lastError: this.lastError,
        recovery: this.recovery,
      };
    });
  }

  /** Runs retention now (it also runs on open and every retentionIntervalMs). */
  async enforceRetention(): Promise<RetentionReport> {
    this.assertOpen();
    return this.exclusive(async () => {
      try {
        return await this.retention();
      } catch (err) {
        this.notice('retention-failed', `history: retention failed: ${message(err)}`, err);
        await this.reopenIfFatal(err);
        throw err;
      }
    });
  }

  /** Writes what is buffered, then closes the database. Safe to call twice; later calls return the same promise. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    clearInterval(this.flushTimer);
    clearInterval(this.retentionTimer);
    // Behind whatever is queued; a failed final write is reported, not thrown,
    // so that shutdown always releases the file.
    await this.exclusive(async () => {
      try {
        await this.flushAll();
      } catch {
        // flushAll reported it (notice, dropped count).
      }
      const db = this.db;
      this.db = undefined;
      try {
        if (db) closeDb(db);
      } catch (err) {
        // The file is released either way; what DuckDB could not checkpoint is in the WAL, replayed on the next open.
        this.notice('close-failed', `history: closing ${this.path} failed: ${message(err)}`, err);
      }
    });
  }

  // ---- Internals: buffering and writing ---------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('history store');
  }

  private identify(ip: string): FilterIdentity | undefined {
    if (!this.opts.identity) return undefined;
    try {
      return this.opts.identity(ip);
    } catch {
      // A resolver failing must not cost the record: store it without identity.
      return undefined;
    }
  }

  /** What fits in the buffer; the rest is dropped and counted (memory stays bounded while writes fail). */
  private admit<T>(items: readonly T[]): readonly T[] {
    const room = this.opts.maxBuffered - this.flowBuf.length - this.eventBuf.length;
    if (items.length <= room) return items;
    this.dropped += items.length - Math.max(0, room);
    return items.slice(0, Math.max(0, room));
  }

  private afterAppend(): void {
    const buffered = this.flowBuf.length + this.eventBuf.length;
    if (buffered >= this.opts.maxBuffered && !this.lastError?.startsWith('buffer full')) {
      this.lastError = `buffer full (${buffered} rows): writes are failing or slower than appends`;
      this.notice('dropped', `history: ${this.lastError}; further rows are dropped until it drains`);
    }
    if (buffered >= this.opts.batchSize) this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushQueued || this.closed) return;
    this.flushQueued = true;
    void this.exclusive(async () => {
      this.flushQueued = false;
      await this.flushAll();
    }).catch(() => {
      // Reported by flushAll (notice, lastError, dropped count).
    });
  }

  private timedFlush(): void {
    if (this.flowBuf.length + this.eventBuf.length > 0) this.scheduleFlush();
  }

  /** One transaction per batch until the buffer is empty; a failed batch is dropped, counted and reported. */
  private async flushAll(): Promise<void> {
    while (this.flowBuf.length + this.eventBuf.length > 0) {
      const events = this.eventBuf.splice(0, this.opts.batchSize);
      const flows = this.flowBuf.splice(0, this.opts.batchSize - events.length);
      try {
        await this.writeBatch(flows, events);
        this.written += flows.length + events.length;
        if (this.lastError?.startsWith('buffer full')) this.lastError = undefined;
      } catch (err) {
        this.dropped += flows.length + events.length;
        this.lastError = message(err);
        this.notice('flush-failed', `history: writing ${flows.length} flow records and ${events.length} events failed, they are lost: ${message(err)}`, err);
        await this.reopenIfFatal(err);
        throw new HistoryStoreError(`history store ${this.path}: write failed: ${message(err)}`, 'see the cause; a full disk or a damaged file are the usual ones', err);
      }
      // Let timers and I/O run between batches of a large backlog.
      if (this.flowBuf.length + this.eventBuf.length > 0) await new Promise((r) => setImmediate(r));
    }
  }

  private async writeBatch(flows: FlowRow[], events: EventRow[]): Promise<void> {
    const conn = this.handle().conn;
    await conn.run('BEGIN TRANSACTION');
    try {
      await this.appendRows(conn, FLOWS_TABLE, FLOW_COLUMNS, flows);
      await this.appendRows(conn, EVENTS_TABLE, EVENT_COLUMNS, events);
      await conn.run('COMMIT');
    } catch (err) {
      await conn.run('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  /**
   * The appender writes inside the connection's open transaction (rolled
   * back with it). Appending is synchronous native calls, so it goes a slice
   * at a time and lets the event loop run in between (the queue keeps
   * everything else off this connection meanwhile).
   */
  private async appendRows<R>(conn: DuckDBConnection, table: string, cols: readonly Column<R>[], rows: readonly R[]): Promise<void> {
    if (rows.length === 0) return;
    const a = await conn.createAppender(table);
    try {
      for (let start = 0; start < rows.length; start += APPEND_SLICE) {
        if (start > 0) await new Promise((r) => setImmediate(r));
        const end = Math.min(rows.length, start + APPEND_SLICE);
        for (let i = start; i < end; i++) {
          const row = rows[i]!;
          for (const c of cols) c.put(a, row);
          a.endRow();
        }
        a.flushSync();
      }
    } catch (err) {
      // Drop the half-appended rows so closing doesn't try to write them; the
      // transaction's rollback discards what was flushed. The first error is
      // the one worth reporting.
      try {
        a.clear();
        a.closeSync();
      } catch {
        // See above.
      }
      throw err;
    }
    a.closeSync();
  }

  // ---- Internals: the queue and queries ----------------------------------------

  /** Runs `fn` after everything queued before it; a failure doesn't stop the queue. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => {});
    return run;
  }

  private handle(): Db {
    if (!this.db) throw new ClosedError('history store');
    return this.db;
  }

  private read(sql: string, p: Params): Promise<Record<string, JS>[]> {
    return this.exclusive(async () => {
      try {
        const reader = await this.handle().conn.runAndReadAll(sql, p.values, p.types);
        return reader.getRowObjectsJS();
      } catch (err) {
        await this.reopenIfFatal(err);
        throw new HistoryStoreError(`history store ${this.path}: query failed: ${message(err)}`, undefined, err);
      }
    });
  }

  private notice(kind: HistoryNoticeKind, msg: string, error?: unknown): void {
    try {
      this.opts.onNotice?.({ kind, message: msg, ...(error !== undefined ? { error } : {}) });
    } catch {
      // A logger that throws must not break the store.
    }
  }

  // ---- Internals: retention ---------------------------------------------------

  private async retention(): Promise<RetentionReport> {
    const db = this.handle();
    const before = await this.sizeInfo(db);
    let deletedByTime = 0;
    if (this.opts.retentionMs !== Infinity) {
      const cutoff = timestampOf(this.opts.now() - this.opts.retentionMs);
      for (const table of [FLOWS_TABLE, EVENTS_TABLE]) {
        const r = await db.conn.run(`DELETE FROM ${table} WHERE ts < $cutoff`, { cutoff }, { cutoff: TIMESTAMP });
        deletedByTime += r.rowsChanged;
      }
    }
    const size = await this.enforceSize(deletedByTime > 0);
    const after = await this.sizeInfo(this.handle());
    const report: RetentionReport = {
      deletedByTime,
      deletedBySize: size.deleted,
      compacted: size.compacted,
      bytesBefore: before.fileBytes + before.walBytes,
      bytesAfter: after.fileBytes + after.walBytes,
    };
    if (size.deleted > 0 || size.compacted) {
      this.notice(
        'retention',
        `history: over ${this.opts.maxBytes} bytes: deleted the ${size.deleted} oldest rows${size.compacted ? ' and compacted the file' : ''} (${report.bytesBefore} -> ${report.bytesAfter} bytes)`,
      );
    }
    return report;
  }

  /**
   * Keeps the store under maxBytes. DuckDB never gives space back on DELETE:
   * freed blocks go on a free list and are reused before the file grows, only
   * free blocks at the very end are truncated at a checkpoint, and VACUUM
   * reclaims nothing. Checkpoints also leave free blocks behind without any
   * delete (a row group that grew is rewritten), about a row group's worth
   * (~2-3 MB here), which matters only for small limits. So:
   * - past 90 % of the limit in live blocks, the oldest rows go until 70 %:
   *   the room they leave is reused, and the file stops growing;
   * - over the limit on disk (a burst between passes, fragmentation, a lowered
   *   limit), the oldest rows go until 70 % and the live rows are copied to a
   *   new file that replaces the old one, leaving 30 % of headroom before the
   *   next copy.
   */
  private async enforceSize(deletedSomething: boolean): Promise<{ deleted: number; compacted: boolean }> {
    const max = this.opts.maxBytes;
    if (max === Infinity) return { deleted: 0, compacted: false };
    const db = this.handle();
    let size = await this.sizeInfo(db);
    const onDisk = (): number => size.fileBytes + size.walBytes;
    if (onDisk() <= HIGH_WATER * max && size.usedBytes <= HIGH_WATER * max && !deletedSomething) return { deleted: 0, compacted: false };
    // A checkpoint folds the WAL into the file and frees the blocks of deleted rows.
    await db.conn.run('CHECKPOINT');
    size = await this.sizeInfo(db);
    let deleted = 0;
    if (onDisk() > max || size.usedBytes > HIGH_WATER * max) {
      deleted = await this.deleteOldest(db, LOW_WATER * max);
      size = await this.sizeInfo(db);
    }
    // Decided after the deletes: their checkpoint may have truncated a freed
    // tail, or grown the file (it rewrites the row groups it thins out).
    if (!db.inMemory && onDisk() > max) {
      await this.compact();
      return { deleted, compacted: true };
    }
    return { deleted, compacted: false };
  }

  /** Deletes the oldest rows (flows and events alike) until live blocks are at or under `target` bytes. */
  private async deleteOldest(db: Db, target: number): Promise<number> {
    let deleted = 0;
    let size = await this.sizeInfo(db);
    for (let round = 0; round < 4 && size.usedBytes > target; round++) {
      const counts = (await db.conn.runAndReadAll(`SELECT (SELECT count(*) FROM ${FLOWS_TABLE}) + (SELECT count(*) FROM ${EVENTS_TABLE}) AS n`)).getRowObjectsJS()[0];
      const rows = num(counts?.['n']);
      if (rows === 0) break;
      // Rows cost about the same each: keep the share of them that fits the
      // target (the fixed overhead makes it an underestimate, hence the rounds).
      const keep = Math.floor((rows * target) / size.usedBytes);
      const cut = await db.conn.runAndReadAll(
        `SELECT ts FROM (SELECT ts FROM ${FLOWS_TABLE} UNION ALL SELECT ts FROM ${EVENTS_TABLE}) ORDER BY ts DESC LIMIT 1 OFFSET $keep`,
        { keep },
        { keep: BIGINT },
      );
      const cutoff = cut.getRowObjectsJS()[0]?.['ts'];
      if (!(cutoff instanceof Date)) break;
      // <= : rows sharing the cut's time go too, so a run of equal times can't stall the loop.
      for (const table of [FLOWS_TABLE, EVENTS_TABLE]) {
        const r = await db.conn.run(`DELETE FROM ${table} WHERE ts <= $cutoff`, { cutoff: timestampOf(cutoff.getTime()) }, { cutoff: TIMESTAMP });
        deleted += r.rowsChanged;
      }
      await db.conn.run('CHECKPOINT');
      size = await this.sizeInfo(db);
    }
    return deleted;
  }

  private async sizeInfo(db: Db): Promise<{ fileBytes: number; walBytes: number; usedBytes: number }> {
    if (db.inMemory) {
      const r = (await db.conn.runAndReadAll('SELECT sum(memory_usage_bytes) AS used FROM duckdb_memory()')).getRowObjectsJS()[0];
      return { fileBytes: 0, walBytes: 0, usedBytes: num(r?.['used']) };
    }
    const r = (await db.conn.runAndReadAll('SELECT block_size, used_blocks FROM pragma_database_size() WHERE database_name = current_database()')).getRowObjectsJS()[0];
    return {
      fileBytes: fileBytes(this.path),
      walBytes: fileBytes(`${this.path}.wal`),
      usedBytes: num(r?.['block_size']) * num(r?.['used_blocks']),
    };
  }

  /**
   * Copies the live rows to `<path>.compact`, then renames it
   * over the store. A crash before the rename leaves the old store and a
   * stale copy (removed on the next open); the rename itself is atomic.
   */
  private async compact(): Promise<void> {
    const tmp = `${this.path}.compact`;
    rmSync(tmp, { force: true });
    rmSync(`${tmp}.wal`, { force: true });
    const db = this.handle();
    await db.conn.run(`ATTACH ${sqlString(tmp)} AS knp_compact`);
    try {
      for (const stmt of schemaStatements('knp_compact.')) await db.conn.run(stmt);
      // No ORDER BY: rows are already in the order written (about time order,
      // which keeps the ts zone maps tight), DuckDB preserves it, and a sort
      // of the whole store would spill to disk under the memory limit.
      await db.conn.run(`INSERT INTO knp_compact.${FLOWS_TABLE} SELECT * FROM ${FLOWS_TABLE}`);
      await db.conn.run(`INSERT INTO knp_compact.${EVENTS_TABLE} SELECT * FROM ${EVENTS_TABLE}`);
      await db.conn.run(`INSERT INTO knp_compact.${META_TABLE} SELECT * FROM ${META_TABLE}`);
    } catch (err) {
      await db.conn.run('DETACH knp_compact').catch(() => {});
      rmSync(tmp, { force: true });
      rmSync(`${tmp}.wal`, { force: true });
      throw err;
    }
    await db.conn.run('DETACH knp_compact');
    // From here the store is closed for a moment; whatever happens, it is
    // reopened (the new file if the swap went through, else the old one).
    this.db = undefined;
    try {
      closeDb(db);
      // The copy holds everything committed; a WAL left by the old file must
      // not be replayed onto the new one.
      rmSync(`${this.path}.wal`, { force: true });
      renameSync(tmp, this.path);
    } catch (err) {
      rmSync(tmp, { force: true });
      rmSync(`${tmp}.wal`, { force: true });
      this.db = await this.openWithRecovery('quick');
      throw err;
    }
    this.db = await this.openWithRecovery('quick');
    this.notice('compacted', `history: compacted ${this.path} to ${fileBytes(this.path)} bytes`);
  }

  // ---- Internals: opening and recovery ----------------------------------------

  private duckdbOptions(): Record<string, string> {
    const max = this.opts.maxBytes;
    // The WAL counts against maxBytes too, so a small limit checkpoints sooner
    // than DuckDB's 16 MiB; not much sooner, as each checkpoint of a growing
    // row group rewrites it and leaves free blocks behind.
    const walLimit = max === Infinity ? 16 * MiB : Math.max(MiB, Math.min(16 * MiB, Math.floor(max / 8)));
    return {
      threads: String(this.opts.threads),
      memory_limit: `${Math.floor(this.opts.memoryLimitBytes / MiB)}MiB`,
      checkpoint_threshold: `${walLimit}B`,
      // The agent runs offline: never fetch an extension.
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
    };
  }

  /** Opens the file, creating it if new, and checks it; throws if it is unusable. */
  private async openChecked(verify: 'full' | 'quick'): Promise<Db> {
    mkdirSync(dirname(this.path), { recursive: true });
    const instance = await DuckDBInstance.create(this.path, this.duckdbOptions());
    let conn: DuckDBConnection | undefined;
    try {
      conn = await instance.connect();
      const length = await this.lengthFits(conn);
      await this.ensureSchema(conn);
      if (verify === 'full' || !length.fits) {
        // hash() of every row reads every block, and DuckDB checks each
        // block's checksum as it reads it; counts and min/max alone come from
        // metadata and pass on a damaged or truncated file.
        try {
          await conn.run(`SELECT bit_xor(hash(f)) FROM ${FLOWS_TABLE} f`);
          await conn.run(`SELECT bit_xor(hash(e)) FROM ${EVENTS_TABLE} e`);
        } catch (err) {
          if (length.fits) throw err;
          throw new Error(`the file is truncated: ${length.why}, and reading it fails: ${message(err).split('\n')[0]}`, { cause: err });
        }
      }
      return { instance, conn, inMemory: false };
    } catch (err) {
      try {
        conn?.closeSync();
        instance.closeSync();
      } catch {
        // Already failing; the first error is the one to report.
      }
      throw err;
    }
  }

  /**
   * Whether the file is its headers and then whole blocks, as DuckDB writes
   * it. One that isn't was most likely cut short (a full disk, a copy
   * interrupted), and DuckDB would open it and answer from metadata until a
   * query reached a missing block; it may also just end in a partly written
   * block nothing uses (power lost while a checkpoint grew the file). So a
   * misfit length earns the full read, which tells the two apart.
   */
  private async lengthFits(conn: DuckDBConnection): Promise<{ fits: boolean; why: string }> {
    const r = (await conn.runAndReadAll('SELECT block_size FROM pragma_database_size() WHERE database_name = current_database()')).getRowObjectsJS()[0];
    const block = num(r?.['block_size']);
    const actual = fileBytes(this.path);
    const fits = block <= 0 || actual <= DB_HEADER_BYTES || (actual - DB_HEADER_BYTES) % block === 0;
    return { fits, why: `${actual} bytes is not ${DB_HEADER_BYTES} bytes of headers and whole blocks of ${block}` };
  }

  /** Creates the tables in a new store, or checks an existing one is ours and of this version. */
  private async ensureSchema(conn: DuckDBConnection): Promise<void> {
    const rows = (
      await conn.runAndReadAll(
        "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_catalog = current_database() AND table_schema = 'main' ORDER BY table_name, ordinal_position",
      )
    ).getRowObjectsJS();
    if (rows.length === 0) {
      for (const stmt of schemaStatements()) await conn.run(stmt);
      await conn.run(`INSERT INTO ${META_TABLE} VALUES ('schema_version', $v)`, { v: SCHEMA_VERSION }, { v: VARCHAR });
      return;
    }
    const found = new Map<string, string[]>();
    for (const r of rows) {
      const t = str(r['table_name']);
      found.set(t, [...(found.get(t) ?? []), `${str(r['column_name'])} ${str(r['data_type'])}`]);
    }
    const current = Number(SCHEMA_VERSION);
    // The version the store says it is (where it has our meta table): an older one we can migrate is checked against its own columns.
    let version: unknown;
    if (found.get(META_TABLE)?.join(',') === expectedColumns().get(META_TABLE)!.join(',')) {
      version = (await conn.runAndReadAll(`SELECT value FROM ${META_TABLE} WHERE key = 'schema_version'`)).getRowObjectsJS()[0]?.['value'];
    }
    const from = typeof version === 'string' && /^\d{1,4}$/.test(version) ? Number(version) : NaN;
    const migrate = from >= MIGRATES_FROM && from < current;
    for (const [table, cols] of expectedColumns(migrate ? from : current)) {
      const have = found.get(table);
      if (!have || have.join(',') !== cols.join(',')) {
        throw new SchemaMismatch(`table ${table} is ${have ? `(${have.join(', ')})` : 'missing'}, not a KubeNetProbe history store of schema ${migrate ? from : current}`);
      }
    }
    if (migrate) {
      await this.migrate(conn, from);
      return;
    }
    if (version !== SCHEMA_VERSION) throw new SchemaMismatch(`schema version ${JSON.stringify(version ?? null)}, this build reads ${SCHEMA_VERSION}`);
  }

  /**
   * Takes a store of an older schema (from MIGRATES_FROM) to this one, in one
   * transaction: the columns added since (null in the rows already there),
   * then the version. A failure leaves the store as it was, and open() moves
   * it aside.
   */
  private async migrate(conn: DuckDBConnection, from: number): Promise<void> {
    await conn.run('BEGIN TRANSACTION');
    try {
      for (const stmt of migrationStatements(from)) await conn.run(stmt);
      await conn.run('COMMIT');
    } catch (err) {
      await conn.run('ROLLBACK').catch(() => {});
      throw new Error(`migrating it from schema ${from} to ${SCHEMA_VERSION} failed: ${message(err).split('\n')[0]}`, { cause: err });
    }
    this.notice(
      'migrated',
      `history: migrated ${this.path} from schema ${from} to ${SCHEMA_VERSION}: rows now keep each end's workload and service (null in the rows written before)`,
    );
  }

  /**
   * open() and reopen: the file store if it can be had, recovered if it is
   * damaged, in memory if no file store can be used. Never throws for a bad
   * file, so a restart can't loop on it.
   */
  private async openWithRecovery(verify: 'full' | 'quick' = this.opts.verify): Promise<Db> {
    // A crash mid-compaction leaves its copy; the store itself is intact.
    rmSync(`${this.path}.compact`, { force: true });
    rmSync(`${this.path}.compact.wal`, { force: true });
    const marker = `${this.path}.opening`;
    const unfinished = readMarker(marker);
    let reason: string | undefined;
    if (unfinished >= MAX_UNFINISHED_OPENS && existsSync(this.path)) {
      // The process died inside DuckDB while opening this file, twice: a
      // native crash on a damaged file is the likely cause, and a third try
      // would crash again.
      reason = `the last ${unfinished} attempts to open it never finished (the process died while opening or checking it)`;
    } else {
      writeMarker(marker, unfinished + 1);
      try {
        const db = await this.openChecked(verify);
        rmSync(marker, { force: true });
        return db;
      } catch (err) {
        if (isLockConflict(err)) {
          rmSync(marker, { force: true });
          return this.inMemory(`it is locked by another process (${message(err)})`);
        }
        reason = message(err).split('\n')[0]!;
      }
    }
    rmSync(marker, { force: true });
    let isFile = false;
    try {
      isFile = statSync(this.path).isFile();
    } catch {
      // Missing: nothing to move; the open failed for another reason (directory not writable, ...).
    }
    if (!isFile) return this.inMemory(`it can't be created or opened (${reason})`);
    let movedTo: string[];
    try {
      movedTo = moveAside(this.path);
    } catch (err) {
      return this.inMemory(`it is unusable (${reason}) and could not be moved aside (${message(err)})`);
    }
    try {
      const db = await this.openChecked('quick');
      const note: RecoveryNote = {
        action: 'moved-aside',
        reason,
        movedTo,
        message: `history: store ${this.path} was unusable (${reason}); moved it to ${movedTo.join(' and ')} and started an empty one`,
      };
      this.recovery = note;
      this.notice('recovered', note.message);
      return db;
    } catch (err) {
      return this.inMemory(`it was unusable (${reason}), was moved to ${movedTo.join(' and ')}, and a new one can't be created (${message(err)})`, movedTo);
    }
  }

  private async inMemory(why: string, movedTo: string[] = []): Promise<Db> {
    const instance = await DuckDBInstance.create(':memory:', { ...this.duckdbOptions(), checkpoint_threshold: '16MiB' });
    const conn = await instance.connect();
    for (const stmt of schemaStatements()) await conn.run(stmt);
    const note: RecoveryNote = {
      action: 'in-memory',
      reason: why,
      movedTo,
      message: `history: store ${this.path} not used: ${why}; keeping history in memory until restart`,
    };
    this.recovery = note;
    this.notice('in-memory', note.message);
    return { instance, conn, inMemory: true };
  }

  /** After an error that leaves DuckDB unusable, reopen (and recover) at most once a minute. */
  private async reopenIfFatal(err: unknown): Promise<void> {
    if (!isFatal(err) || this.closed) return;
    const now = Date.now();
    if (now - this.lastReopen < 60_000) return;
    this.lastReopen = now;
    const old = this.db;
    this.db = undefined;
    if (old) {
      try {
        closeDb(old);
      } catch {
        // It is broken; closing is best effort.
      }
    }
    // The full check this time, whatever open() used: this is the moment to find out whether the file is damaged.
    this.db = await this.openWithRecovery('full');
    this.notice('reopened', `history: reopened ${this.path} after: ${message(err)}`);
  }
}

class SchemaMismatch extends Error {}

function readMarker(p: string): number {
  try {
    const n = Number(readFileSync(p, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : 1;
  } catch {
    return 0;
  }
}

function writeMarker(p: string, n: number): void {
  try {
    writeFileSync(p, `${n}\n`);
  } catch {
    // Without a writable directory the open fails anyway and says why.
  }
}

/** Renames the store (and its WAL, keeping DuckDB's pairing name) to `<path>.corrupt-<time>`. */
function moveAside(path: string): string[] {
  const to = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  renameSync(path, to);
  const moved = [to];
  if (existsSync(`${path}.wal`)) {
    renameSync(`${path}.wal`, `${to}.wal`);
    moved.push(`${to}.wal`);
  }
  return moved;
}
