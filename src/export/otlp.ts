/**
 * The OTLP sink: every record becomes an OpenTelemetry log record, sent by
 * the OpenTelemetry JS SDK (a LoggerProvider with a BatchLogRecordProcessor
 * and the OTLP/HTTP log exporter, protobuf or JSON) to a collector.
 *
 * A log record carries the JSON line as its body, the line's fields
 * flattened into attributes under `kubenetprobe.` (nested objects with dots:
 * `kubenetprobe.attacker.ip`; null fields left out), `kubenetprobe.event`
 * (flow, security, block, lost) and the event name `kubenetprobe.<event>`,
 * the line's time as its timestamp, and a severity: a security event's own,
 * INFO for flow records.
 *
 * Nothing here throws into the agent: failed exports are counted and
 * reported through `onError`, and records that do not fit the queue (the
 * collector is slower than the node, or down) are dropped and counted.
 */
import { hostname } from 'node:os';
import { SeverityNumber, type Logger } from '@opentelemetry/api-logs';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordExporter, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { OTLPLogExporter as OTLPJsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as OTLPProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { KubeNetProbeError } from '../errors.js';
import type { ExportRecord } from './index.js';

export type OtlpProtocol = 'http/protobuf' | 'http/json';

export interface OtlpOptions {
  /** The collector: its base URL (http://collector:4318, to which /v1/logs is added) or the full logs URL. */
  endpoint: string;
  /** Extra HTTP headers (e.g. authorization). */
  headers?: Record<string, string>;
  /** Default 'http/protobuf', OTLP's default. */
  protocol?: OtlpProtocol;
  /** The resource's host.name. Default: this machine's hostname. */
  hostName?: string;
  /** Records accepted and not yet sent past which new ones are dropped (and counted). Default 16384. */
  maxQueue?: number;
  /** Records per request. Default 512 (each request is serialized in one go, on the event loop). */
  maxBatch?: number;
  /** How long a batch may wait for more records, ms. Default 1000. */
  scheduledDelayMs?: number;
  /** Time for one export request, retries included, ms. Default 10000. */
  exportTimeoutMs?: number;
  /** How long close() waits for the last batches before it counts them as dropped. Default 5000 ms. */
  closeTimeoutMs?: number;
  /** Where failed exports and losses are reported (never thrown); rate-limited. */
  onError?: (err: Error) => void;
}

export interface OtlpStats {
  endpoint: string;
  protocol: OtlpProtocol;
  /** Records the collector accepted. */
  recordsSent: number;
  /** Records in exports that failed (collector down, refused, timed out). */
  recordsFailed: number;
  /** Records never handed to the exporter: the queue was full, or they came after close(), or close() gave up on them. */
  recordsDropped: number;
  /** Records accepted and not yet settled. */
  queued: number;
  /** Export requests that failed. */
  exportErrors: number;
}

const REPORT_EVERY_MS = 10_000;
/** Records handed to the SDK per turn of the event loop: about 10 ms of work. */
const SLICE = 500;
const EVENT_NAMES: Record<ExportRecord['kind'], string> = { flow: 'kubenetprobe.flow', security: 'kubenetprobe.security', block: 'kubenetprobe.block', lost: 'kubenetprobe.lost' };

/** The logs URL for an endpoint: a base URL gets /v1/logs, as OTEL_EXPORTER_OTLP_ENDPOINT does. */
export function logsUrl(endpoint: string): string {
  const u = new URL(endpoint);
  if (!/\/v1\/logs\/?$/.test(u.pathname)) u.pathname = `${u.pathname.replace(/\/+$/, '')}/v1/logs`;
  return u.toString();
}

/** A security event's severity in OpenTelemetry's scale: low is worth a look (WARN), high means an attack (ERROR). */
const SECURITY_SEVERITY: Partial<Record<string, SeverityNumber>> = {
  info: SeverityNumber.INFO,
  low: SeverityNumber.WARN,
  medium: SeverityNumber.WARN2,
  high: SeverityNumber.ERROR,
  critical: SeverityNumber.FATAL,
};

/** OpenTelemetry severity for a record. */
export function severityOf(r: ExportRecord): { severityNumber: SeverityNumber; severityText: string } {
  switch (r.kind) {
    case 'flow':
      return { severityNumber: SeverityNumber.INFO, severityText: 'INFO' };
    case 'security':
      return { severityNumber: SECURITY_SEVERITY[r.line.severity] ?? SeverityNumber.WARN, severityText: r.line.severity };
    case 'block':
      return r.line.action === 'blocked' ? { severityNumber: SeverityNumber.WARN, severityText: 'WARN' } : { severityNumber: SeverityNumber.INFO, severityText: 'INFO' };
    case 'lost':
      // Losing events is what an operator must see.
      return { severityNumber: SeverityNumber.WARN, severityText: 'WARN' };
  }
}

type AttributeValue = string | number | boolean | (string | number | boolean)[];

/** A line's fields as OpenTelemetry attributes: `kubenetprobe.` + the field, nested objects joined with dots; nulls left out. */
export function attributesOf(r: ExportRecord): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = { 'kubenetprobe.event': r.kind };
  flatten(out, '', r.line);
  return out;
}

/** Attribute names by field path; the lines have a fixed set of fields, so this stays small. It spares a string per field per record. */
const attributeNames = new Map<string, string>();
function attributeName(path: string): string {
  let name = attributeNames.get(path);
  if (name === undefined) attributeNames.set(path, (name = `kubenetprobe.${path}`));
  return name;
}

const isPrimitive = (v: unknown): v is string | number | boolean => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

// A loop, not Object.entries and closures: this runs for every flow record.
function flatten(out: Record<string, AttributeValue>, prefix: string, o: object): void {
  for (const k in o) {
    const v: unknown = (o as Record<string, unknown>)[k];
    if (v === null || v === undefined) continue;
    const path = prefix ? `${prefix}.${k}` : k;
    if (isPrimitive(v)) out[attributeName(path)] = v;
    else if (Array.isArray(v)) out[attributeName(path)] = (v as unknown[]).filter(isPrimitive);
    else if (typeof v === 'object') flatten(out, path, v);
  }
}

/** Counts what each export request carried, and how it ended. */
class CountingExporter implements LogRecordExporter {
  constructor(
    private readonly inner: LogRecordExporter,
    private readonly settled: (records: number, error: Error | undefined) => void,
  ) {}

  export(logs: ReadableLogRecord[], done: (result: ExportResult) => void): void {
    let once = false;
    const finish = (result: ExportResult): void => {
      if (once) return;
      once = true;
      this.settled(logs.length, result.code === ExportResultCode.SUCCESS ? undefined : (result.error ?? new Error('the exporter gave no reason')));
      done(result);
    };
    try {
      this.inner.export(logs, finish);
    } catch (err) {
      finish({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
    }
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
}

export class OtlpSink {
  readonly url: string;
  readonly protocol: OtlpProtocol;
  private readonly provider: LoggerProvider;
  private readonly logger: Logger;
  private readonly maxQueue: number;
  private readonly closeTimeoutMs: number;
  private readonly onError: (err: Error) => void;
  private readonly counts = { recordsSent: 0, recordsFailed: 0, recordsDropped: 0, exportErrors: 0 };
  /** Records handed to the SDK; minus those settled, what is in its queue or in flight. */
  private accepted = 0;
  private settledCount = 0;
  /** Set when close() gave up: later results of abandoned records are no longer counted. */
  private abandoned = false;
  private closing: Promise<void> | undefined;
  private readonly lastReport = new Map<string, number>();
  /** Records accepted and not yet handed to the SDK, from `next` on. */
  private waiting: { r: ExportRecord; json: string; observed: number }[] = [];
  private next = 0;
  private draining: NodeJS.Immediate | undefined;

  constructor(options: OtlpOptions) {
    let url: string | undefined;
    try {
      url = logsUrl(options.endpoint);
    } catch {
      // reported below
    }
    if (!url || !/^https?:$/.test(new URL(url).protocol)) {
      throw new KubeNetProbeError('INVALID_ARGUMENT', `otlpEndpoint: not an http:// or https:// URL: ${JSON.stringify(options.endpoint)}`, { hint: 'e.g. http://otel-collector:4318' });
    }
    this.url = url;
    this.protocol = options.protocol ?? 'http/protobuf';
    this.maxQueue = options.maxQueue ?? 16384;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 5000;
    this.onError = options.onError ?? (() => {});
    const config = { url, headers: { ...(options.headers ?? {}) }, timeoutMillis: options.exportTimeoutMs ?? 10_000 };
    const inner = this.protocol === 'http/json' ? new OTLPJsonLogExporter(config) : new OTLPProtoLogExporter(config);
    const exporter = new CountingExporter(inner, (n, err) => this.settle(n, err));
    const maxBatch = Math.min(options.maxBatch ?? 512, this.maxQueue);
    this.provider = new LoggerProvider({
      resource: resourceFromAttributes({ 'service.name': 'kubenetprobe', 'host.name': options.hostName ?? hostname() }),
      processors: [
        new BatchLogRecordProcessor({
          exporter,
          // Our own bound (maxQueue, counted) is what limits the queue; the SDK's must never be the one that drops, silently.
          maxQueueSize: this.maxQueue + maxBatch,
          maxExportBatchSize: maxBatch,
          scheduledDelayMillis: options.scheduledDelayMs ?? 1000,
          exportTimeoutMillis: (options.exportTimeoutMs ?? 10_000) + 5000,
        }),
      ],
    });
    this.logger = this.provider.getLogger('kubenetprobe');
  }

  /**
   * Sends one record (eventually, in a batch). Never throws. The record
   * waits here and is handed to the SDK a slice at a time: making a log
   * record costs 10-20 us, and a pipeline cycle can bring tens of thousands
   * at once, which must not hold the event loop (and the API) for that long.
   */
  emit(r: ExportRecord, json: string): void {
    if (this.closing) return this.drop(1, 'closed', `OTLP export to ${this.url}: a record came after close()`);
    if (this.accepted - this.settledCount >= this.maxQueue) {
      return this.drop(1, 'queue', `OTLP export to ${this.url}: ${this.maxQueue} records are waiting to be sent: dropping records until the collector catches up`);
    }
    this.accepted++;
    this.waiting.push({ r, json, observed: Date.now() });
    this.draining ??= setImmediate(() => this.drain(SLICE));
  }

  /** Hands up to `max` waiting records to the SDK; the rest on a later turn of the event loop. */
  private drain(max: number): void {
    this.draining = undefined;
    const n = Math.min(max, this.waiting.length - this.next);
    for (let i = 0; i < n; i++) {
      const { r, json, observed } = this.waiting[this.next++]!;
      try {
        this.logger.emit({
          eventName: EVENT_NAMES[r.kind],
          timestamp: new Date(r.line.time),
          observedTimestamp: new Date(observed),
          ...severityOf(r),
          body: json,
          attributes: attributesOf(r),
        });
      } catch (err) {
        // Not expected from the SDK; if it happens, the record is lost, counted and reported.
        this.accepted--;
        this.drop(1, 'emit', `OTLP export to ${this.url}: the SDK refused a record (${(err as Error).message})`);
      }
    }
    if (this.next === this.waiting.length) {
      this.waiting = [];
      this.next = 0;
    } else {
      this.draining = setImmediate(() => this.drain(SLICE));
    }
  }

  stats(): OtlpStats {
    return { endpoint: this.url, protocol: this.protocol, ...this.counts, queued: this.abandoned ? 0 : this.accepted - this.settledCount };
  }

  /** Sends what is queued (forceFlush, then shutdown) within closeTimeoutMs; what is left is counted as dropped. Safe to call twice. */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.closeTimeoutMs)));
    // What still waits goes to the SDK now, to be flushed with the rest.
    if (this.draining) clearImmediate(this.draining);
    this.drain(Number.POSITIVE_INFINITY);
    const flushed = (async () => {
      try {
        await this.provider.forceFlush();
        await this.provider.shutdown();
      } catch (err) {
        this.report('shutdown', new KubeNetProbeError('SYSTEM', `OTLP export to ${this.url}: shutdown failed (${(err as Error).message})`, { cause: err }));
      }
    })();
    const outcome = await Promise.race([flushed, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      const left = this.accepted - this.settledCount;
      this.abandoned = true;
      if (left > 0) this.drop(left, 'close', `OTLP export to ${this.url}: ${left} records not sent within ${this.closeTimeoutMs} ms of close()`, true);
      // Let the SDK finish in the background; its results are no longer counted.
      void flushed;
    }
  }

  private settle(n: number, err: Error | undefined): void {
    if (this.abandoned) return;
    this.settledCount += n;
    if (!err) {
      this.counts.recordsSent += n;
      return;
    }
    this.counts.recordsFailed += n;
    this.counts.exportErrors++;
    this.report(
      'export',
      new KubeNetProbeError('SYSTEM', `OTLP export to ${this.url} failed: ${err.message} (${this.counts.recordsFailed} records not delivered since start; export.otlp in the agent's stats)`, {
        hint: 'check that the collector runs and listens there (otlpEndpoint), and that otlpHeaders carry what it asks for',
        cause: err,
      }),
    );
  }

  private drop(n: number, kind: string, message: string, force = false): void {
    this.counts.recordsDropped += n;
    this.report(kind, new KubeNetProbeError('SYSTEM', `${message} (${this.counts.recordsDropped} records dropped since start; export.otlp in the agent's stats)`), force);
  }

  private report(kind: string, err: Error, force = false): void {
    const now = Date.now();
    if (!force && now - (this.lastReport.get(kind) ?? -Infinity) < REPORT_EVERY_MS) return;
    this.lastReport.set(kind, now);
    this.onError(err);
  }
}
