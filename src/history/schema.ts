/**
 * The history store's tables, and how a buffered row goes into each column.
 * The DDL, the appender's column order and the schema check on open all come
 * from the one list per table below, so they cannot disagree.
 *
 * Column names and types here are constants, never input: they are the only
 * text the store splices into SQL (values are always bound parameters).
 */
import { timestampValue, type DuckDBAppender } from '@duckdb/node-api';

/** Bumped when a column changes; a store with another version is moved aside on open, not misread. */
export const SCHEMA_VERSION = '2';

export const FLOWS_TABLE = 'flows';
export const EVENTS_TABLE = 'events';
export const META_TABLE = 'kubenetprobe_meta';

export interface Column<R> {
  name: string;
  /** The type as information_schema.columns spells it. */
  type: string;
  nullable: boolean;
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

/** What information_schema.columns should say about each table, as "name TYPE" lines. */
export function expectedColumns(): Map<string, string[]> {
  return new Map([
    [FLOWS_TABLE, FLOW_COLUMNS.map((c) => `${c.name} ${c.type}`)],
    [EVENTS_TABLE, EVENT_COLUMNS.map((c) => `${c.name} ${c.type}`)],
    [META_TABLE, ['key VARCHAR', 'value VARCHAR']],
  ]);
}
