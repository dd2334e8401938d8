/**
 * The history store's tables, and how a buffered row goes into each column.
 * The DDL, the appender's column order and the schema check on open all come
 * from the one list per table below, so they cannot disagree.
 *
 * Column names and types here are constants, never input: they are the only
 * text the store splices into SQL (values are always bound parameters).
 */
import { timestampValue, type DuckDBAppender } from '@duckdb/node-api';

/**
 * Bumped when a column changes. A store of an older version whose columns
 * are this version's minus the ones added since (`addedIn`) is migrated on
 * open: the new columns are added (null in the old rows) and the version
 * set. Any other store (schema 1, a foreign one, a newer one) is moved aside
 * on open, not misread.
 */
export const SCHEMA_VERSION = '3';
/** The oldest version open() migrates; older ones are moved aside. */
export const MIGRATES_FROM = 2;

export const FLOWS_TABLE = 'flows';
export const EVENTS_TABLE = 'events';
export const META_TABLE = 'kubenetprobe_meta';

export interface Column<R> {
  name: string;
  /** The type as information_schema.columns spells it. */
  type: string;
  nullable: boolean;
  /** The schema version that added it (at the end of the table, nullable, so a migration can add it); absent: there from the start. */
  addedIn?: number;
  put(a: DuckDBAppender, row: R): void;
}

/** One flow record as buffered: plain values, identity already resolved. */
export interface FlowRow {
  /** ms since the epoch. */
  ts: number;
  firstSeen: number;
  reason: string;
  iface: string | undefined;
  ifindex: number;
  direction: string;
  family: string;
  protocol: string;
  protocolNumber: number;
  srcIp: string;
  srcPort: number;
  dstIp: string;
  dstPort: number;
  srcAddr: bigint;
  dstAddr: bigint;
  srcNamespace: string | undefined;
  srcPod: string | undefined;
  dstNamespace: string | undefined;
  dstPod: string | undefined;
  srcWorkloadKind: string | undefined;
  srcWorkloadName: string | undefined;
  srcService: string | undefined;
  dstWorkloadKind: string | undefined;
  dstWorkloadName: string | undefined;
  dstService: string | undefined;
  deltaPackets: number;
  deltaBytes: number;
  packets: number;
  bytes: number;
  packetsPerSec: number;
  bytesPerSec: number;
  /** Flag names joined with ',' ('' for none). */
  tcpFlags: string;
}

export interface EventRow {
  ts: number;
  type: string;
  severity: string;
  severityLevel: number;
  description: string;
  attackerIp: string;
  attackerPort: number;
  attackerAddr: bigint;
  targetIp: string;
  targetPort: number;
  targetAddr: bigint;
  iface: string | undefined;
  hook: string;
  protocol: string;
  count: number;
  threshold: number;
  windowMs: number;
  suppressed: number;
  tcpFlags: string;
  attackerNamespace: string | undefined;
  attackerPod: string | undefined;
  targetNamespace: string | undefined;
  targetPod: string | undefined;
  cpu: number;
  seq: bigint;
  attackerWorkloadKind: string | undefined;
  attackerWorkloadName: string | undefined;
  attackerService: string | undefined;
  targetWorkloadKind: string | undefined;
  targetWorkloadName: string | undefined;
  targetService: string | undefined;
}

/** TIMESTAMP holds microseconds; rows carry ms (all a Date has). */
export function timestampOf(ms: number): ReturnType<typeof timestampValue> {
  return timestampValue(BigInt(Math.trunc(ms)) * 1000n);
}

/** Counts arrive as doubles; a NaN or infinity (a bug upstream) is stored as 0 rather than failing the batch. */
function big(n: number): bigint {
  return Number.isFinite(n) ? BigInt(Math.round(n)) : 0n;
}

function u16(n: number): number {
  return Number.isInteger(n) && n >= 0 && n <= 0xffff ? n : 0;
}

function optVarchar(a: DuckDBAppender, s: string | undefined): void {
  if (s === undefined) a.appendNull();
  else a.appendVarchar(s);
}

function double(n: number): number {
  return Number.isFinite(n) ? n : 0;
}

export const FLOW_COLUMNS: readonly Column<FlowRow>[] = [
  { name: 'ts', type: 'TIMESTAMP', nullable: false, put: (a, r) => a.appendTimestamp(timestampOf(r.ts)) },
  { name: 'first_seen', type: 'TIMESTAMP', nullable: false, put: (a, r) => a.appendTimestamp(timestampOf(r.firstSeen)) },
  { name: 'reason', type: 'VARCHAR', nullable: false, put: (a, r) => a.appendVarchar(r.reason) },
  { name: 'interface', type: 'VARCHAR', nullable: true, put: (a, r) => optVarchar(a, r.iface) },
  { name: 'ifindex', type: 'UINTEGER', nullable: false, put: (a, r) => a.appendUInteger(r.ifindex >>> 0) },
  { name: 'direction', type: 'VARCHAR', nullable: false, put: (a, r) => a.appendVarchar(r.direction) },
  { name: 'family', type: 'VARCHAR', nullable: false, put: (a, r) => a.appendVarchar(r.family) },
  { name: 'protocol', type: 'VARCHAR', nullable: false, put: (a, r) => a.appendVarchar(r.protocol) },
  { name: 'protocol_number', type: 'UTINYINT', nullable: false, put: (a, r) => a.appendUTinyInt(r.protocolNumber & 0xff) },
  { name: 'src_ip', type: 'VARCHAR', nullable: false, put: (a, r) => a.appendVarchar(r.srcIp) },
  { name: 'src_port', type: 'USMALLINT', nullable: false, put: (a, r) => a.appendUSmallInt(u16(r.srcPort)) },
  { name: 'dst_ip', type: 'VARCHAR', nullable: false, put: (a, r) => a.appendVarchar(r.dstIp) },
  { name: 'dst_port', type: 'USMALLINT', nullable: false, put: (a, r) => a.appendUSmallInt(u16(r.dstPort)) },
  { name: 'src_addr', type: 'UHUGEINT', nullable: false, put: (a, r) => a.appendUHugeInt(r.srcAddr) },
  { name: 'dst_addr', type: 'UHUGEINT', nullable: false, put: (a, r) => a.appendUHugeInt(r.dstAddr) },
  { name: 'src_namespace', type: 'VARCHAR', nullable: true, put: (a, r) => optVarchar(a, r.srcNamespace) },
  { name: 'src_pod', type: 'VARCHAR', nullable: true, put: (a, r) => optVarchar(a, r.srcPod) },
  { name: 'dst_namespace', type: 'VARCHAR', nullable: true, put: (a, r) => optVarchar(a, r.dstNamespace) },
  { name: 'dst_pod', type: 'VARCHAR', nullable: true, put: (a, r) => optVarchar(a, r.dstPod) },
  { name: 'delta_packets', type: 'BIGINT', nullable: false, put: (a, r) => a.appendBigInt(big(r.deltaPackets)) },
  { name: 'delta_bytes', type: 'BIGINT', nullable: false, put: (a, r) => a.appendBigInt(big(r.deltaBytes)) },
  { name: 'packets', type: 'BIGINT', nullable: false, put: (a, r) => a.appendBigInt(big(r.packets)) },
  { name: 'bytes', type: 'BIGINT', nullable: false, put: (a, r) => a.appendBigInt(big(r.bytes)) },
  { name: 'packets_per_sec', type: 'DOUBLE', nullable: false, put: (a, r) => a.appendDouble(double(r.packetsPerSec)) },
  { name: 'bytes_per_sec', type: 'DOUBLE', nullable: false, put: (a, r) => a.appendDouble(double(r.bytesPerSec)) },
  { name: 'tcp_flags', type: 'VARCHAR', nullable: false, put: (a, r) => a.appendVarchar(r.tcpFlags) },
  // Schema 3: each end's workload (kind and name) and service as they were when the record was written.
  { name: 'src_workload_kind', type: 'VARCHAR', nullable: true, addedIn: 3, put: (a, r) => optVarchar(a, r.srcWorkloadKind) },
  { name: 'src_workload_name', type: 'VARCHAR', nullable: true, addedIn: 3, put: (a, r) => optVarchar(a, r.srcWorkloadName) },
  { name: 'src_service', type: 'VARCHAR', nullable: true, addedIn: 3, put: (a, r) => optVarchar(a, r.srcService) },
  { name: 'dst_workload_kind', type: 'VARCHAR', nullable: true, addedIn: 3, put: (a, r) => optVarchar(a, r.dstWorkloadKind) },
  { name: 'dst_workload_name', type: 'VARCHAR', nullable: true, addedIn: 3, put: (a, r) => optVarchar(a, r.dstWorkloadName) },
  { name: 'dst_service', type: 'VARCHAR', nullable: true, addedIn: 3, put: (a, r) => optVarchar(a, r.dstService) },
];

export const EVENT_COLUMNS: readonly Column<EventRow>[] = [
  { name: 'ts', type: 'TIMESTAMP', nullable: false, put: (a, r) => a.appendTimestamp(timestampOf(r.ts)) },
  { name: 'type', type: 'VARCHAR', nullable: false, put: (a, r) => a.appendVarchar(r.type) },
  { name: 'severity', type: 'VARCHAR', nullable: false, put: (a, r) => a.appendVarchar(r.severity) },
  { name: 'severity_level', type: 'UTINYINT', nullable: false, put: (a, r) => a.appendUTinyInt(r.severityLevel) },
  { name: 'description', type: 'VARCHAR', nullable: false, put: (a, r) => a.appendVarchar(r.description) },
  { name: 'attacker_ip', type: 'VARCHAR', nullable: false, put: (a, r) => a.appendVarchar(r.attackerIp) },
  { name: 'attacker_port', type: 'USMALLINT', nullable: false, put: (a, r) => a.appendUSmallInt(u16(r.attackerPort)) },
  { name: 'attacker_addr', type: 'UHUGEINT', nullable: false, put: (a, r) => a.appendUHugeInt(r.attackerAddr) },
  { name: 'target_ip', type: 'VARCHAR', nullable: false, put: (a, r) => a.appendVarchar(r.targetIp) },
  { name: 'target_port', type: 'USMALLINT', nullable: false, put: (a, r) => a.appendUSmallInt(u16(r.targetPort)) },
  { name: 'target_addr', type: 'UHUGEINT', nullable: false, put: (a, r) => a.appendUHugeInt(r.targetAddr) },
  { name: 'interface', type: 'VARCHAR', nullable: true, put: (a, r) => optVarchar(a, r.iface) },
  { name: 'hook', type: 'VARCHAR', nullable: false, put: (a, r) => a.appendVarchar(r.hook) },
  { name: 'protocol', type: 'VARCHAR', nullable: false, put: (a, r) => a.appendVarchar(r.protocol) },
  { name: 'count', type: 'BIGINT', nullable: false, put: (a, r) => a.appendBigInt(big(r.count)) },
  { name: 'threshold', type: 'BIGINT', nullable: false, put: (a, r) => a.appendBigInt(big(r.threshold)) },
  { name: 'window_ms', type: 'BIGINT', nullable: false, put: (a, r) => a.appendBigInt(big(r.windowMs)) },
  { name: 'suppressed', type: 'BIGINT', nullable: false, put: (a, r) => a.appendBigInt(big(r.suppressed)) },
  { name: 'tcp_flags', type: 'VARCHAR', nullable: false, put: (a, r) => a.appendVarchar(r.tcpFlags) },
  // Schema 2: pod identity of each end as it was when the event was written, and the event's CPU and per-CPU sequence number.
  { name: 'attacker_namespace', type: 'VARCHAR', nullable: true, put: (a, r) => optVarchar(a, r.attackerNamespace) },
  { name: 'attacker_pod', type: 'VARCHAR', nullable: true, put: (a, r) => optVarchar(a, r.attackerPod) },
  { name: 'target_namespace', type: 'VARCHAR', nullable: true, put: (a, r) => optVarchar(a, r.targetNamespace) },
  { name: 'target_pod', type: 'VARCHAR', nullable: true, put: (a, r) => optVarchar(a, r.targetPod) },
  { name: 'cpu', type: 'UINTEGER', nullable: false, put: (a, r) => a.appendUInteger(r.cpu >>> 0) },
  { name: 'seq', type: 'UBIGINT', nullable: false, put: (a, r) => a.appendUBigInt(r.seq) },
  // Schema 3: each end's workload (kind and name) and service as they were when the event was written.
  { name: 'attacker_workload_kind', type: 'VARCHAR', nullable: true, addedIn: 3, put: (a, r) => optVarchar(a, r.attackerWorkloadKind) },
  { name: 'attacker_workload_name', type: 'VARCHAR', nullable: true, addedIn: 3, put: (a, r) => optVarchar(a, r.attackerWorkloadName) },
  { name: 'attacker_service', type: 'VARCHAR', nullable: true, addedIn: 3, put: (a, r) => optVarchar(a, r.attackerService) },
  { name: 'target_workload_kind', type: 'VARCHAR', nullable: true, addedIn: 3, put: (a, r) => optVarchar(a, r.targetWorkloadKind) },
  { name: 'target_workload_name', type: 'VARCHAR', nullable: true, addedIn: 3, put: (a, r) => optVarchar(a, r.targetWorkloadName) },
  { name: 'target_service', type: 'VARCHAR', nullable: true, addedIn: 3, put: (a, r) => optVarchar(a, r.targetService) },
];

function createTable<R>(prefix: string, table: string, cols: readonly Column<R>[]): string {
  const defs = cols.map((c) => `${c.name} ${c.type}${c.nullable ? '' : ' NOT NULL'}`);
  return `CREATE TABLE IF NOT EXISTS ${prefix}${table} (${defs.join(', ')})`;
}

/**
 * The statements that create an empty store. `prefix` is '' for the store
 * itself or 'catalog.' for a copy being written (compaction).
 */
export function schemaStatements(prefix = ''): string[] {
  return [
    createTable(prefix, FLOWS_TABLE, FLOW_COLUMNS),
    createTable(prefix, EVENTS_TABLE, EVENT_COLUMNS),
    // No primary key: an index is one more structure to load (and to damage) for a table of one row.
    `CREATE TABLE IF NOT EXISTS ${prefix}${META_TABLE} (key VARCHAR NOT NULL, value VARCHAR NOT NULL)`,
  ];
}

/**
 * What information_schema.columns should say about each table, as "name
 * TYPE" lines: in a store of this version, or of an older one (`version`,
 * from MIGRATES_FROM), whose tables lack the columns added since.
 */
export function expectedColumns(version = Number(SCHEMA_VERSION)): Map<string, string[]> {
  const at = <R>(cols: readonly Column<R>[]): string[] => cols.filter((c) => (c.addedIn ?? 0) <= version).map((c) => `${c.name} ${c.type}`);
  return new Map([
    [FLOWS_TABLE, at(FLOW_COLUMNS)],
    [EVENTS_TABLE, at(EVENT_COLUMNS)],
    [META_TABLE, ['key VARCHAR', 'value VARCHAR']],
  ]);
}

/**
 * The statements that take a store of `from` (MIGRATES_FROM or later) to
 * this version: each column added since, in the lists' order (new columns
 * are only ever appended, so the result is the table a new store gets),
 * then the version. Run in one transaction.
 */
export function migrationStatements(from: number): string[] {
  const out: string[] = [];
  const add = <R>(table: string, cols: readonly Column<R>[]): void => {
    for (const c of cols) if ((c.addedIn ?? 0) > from) out.push(`ALTER TABLE ${table} ADD COLUMN ${c.name} ${c.type}`);
  };
  add(FLOWS_TABLE, FLOW_COLUMNS);
  add(EVENTS_TABLE, EVENT_COLUMNS);
  out.push(`UPDATE ${META_TABLE} SET value = '${SCHEMA_VERSION}' WHERE key = 'schema_version'`);
  return out;
}
