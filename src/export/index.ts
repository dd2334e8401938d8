/**
 * The exporters, wired in one place: the agent's records (flow records,
 * security events, block changes, lost-event reports) as the stable JSON
 * lines, to a JSON lines file or stdout and to an OTLP collector, as the
 * config asks. Each record is turned into its line and into JSON text once,
 * whatever the number of sinks.
 *
 * Exporting never throws into the agent: a sink that fails or falls behind
 * drops, counts (stats()) and reports through the agent's 'error' event.
 */
import type { EventEmitter } from 'node:events';
import type { AgentEvents, LostReport } from '../agent/agent.js';
import type { AgentConfig } from '../agent/config.js';
import type { FlowRecord } from '../agent/flow-accounter.js';
import type { PodIdentity } from '../agent/inventory.js';
import type { BlockChange, SecurityEvent } from '../types.js';
import type { BlockChangeLine, FlowRecordLine, LostLine, SecurityLine } from './lines.js';
import type { OtlpSink, OtlpStats } from './otlp.js';
import { JsonLinesSink, type JsonLinesStats } from './json-lines.js';
import { blockChangeRecordLine, flowRecordLine, lostRecordLine, securityEventLine } from './records.js';

export type ExportRecord =
  | { kind: 'flow'; line: FlowRecordLine }
  | { kind: 'security'; line: SecurityLine }
  | { kind: 'block'; line: BlockChangeLine }
  | { kind: 'lost'; line: LostLine };

/** What the exporters did; null where that exporter is off. */
export interface ExportStats {
  jsonLines: JsonLinesStats | null;
  otlp: OtlpStats | null;
}

export interface Exporters {
  stats(): ExportStats;
  /** Reopens the JSON lines file (what SIGHUP does, for logrotate). */
  reopen(): void;
  /** Unsubscribes, then flushes and closes every sink. Safe to call twice. */
  close(): Promise<void>;
}

/** What the exporters need of the agent: its events, and pod identity by address. */
export interface ExportSource extends EventEmitter<AgentEvents> {
  identity(ip: string): PodIdentity | undefined;
}

export type ExportConfig = Pick<AgentConfig, 'exportJsonLines' | 'exportMaxBytes' | 'exportKeepFiles' | 'otlpEndpoint' | 'otlpHeaders' | 'otlpProtocol'>;

export interface ExportTuning {
  /** JSON lines: bytes waiting to be written before lines are dropped. */
  maxBacklogBytes?: number;
  /** OTLP: records waiting to be sent before they are dropped; and batching. */
  otlpMaxQueue?: number;
  otlpScheduledDelayMs?: number;
  /** Reopen the JSON lines file on SIGHUP. Default true. */
  reopenOnSighup?: boolean;
}

export const NO_EXPORT_STATS: ExportStats = { jsonLines: null, otlp: null };

/**
 * Starts the sinks the config names, subscribed to the source's events.
 * A JSON lines file that cannot be opened is an error naming the field.
 */
export async function startExporters(source: ExportSource, config: ExportConfig, tuning: ExportTuning = {}): Promise<Exporters> {
  // The agent's 'error' event when someone listens; a process warning otherwise (an unheard 'error' event would throw).
  const report = (err: Error): void => {
    if (source.listenerCount('error') > 0) source.emit('error', err);
    else process.emitWarning(err.message, { code: 'KUBENETPROBE_EXPORT' });
  };
  const json = config.exportJsonLines
    ? await JsonLinesSink.open({
        target: config.exportJsonLines,
        maxBytes: config.exportMaxBytes,
        keepFiles: config.exportKeepFiles,
        ...(tuning.maxBacklogBytes !== undefined ? { maxBacklogBytes: tuning.maxBacklogBytes } : {}),
        onError: report,
      })
    : undefined;
  let otlp: OtlpSink | undefined;
  if (config.otlpEndpoint) {
    try {
      // Loaded only when asked for: the OpenTelemetry SDK is most of the exporters' start-up cost.
      const { OtlpSink } = await import('./otlp.js');
      otlp = new OtlpSink({
        endpoint: config.otlpEndpoint,
        headers: config.otlpHeaders ?? {},
        protocol: config.otlpProtocol,
        ...(tuning.otlpMaxQueue !== undefined ? { maxQueue: tuning.otlpMaxQueue } : {}),
        ...(tuning.otlpScheduledDelayMs !== undefined ? { scheduledDelayMs: tuning.otlpScheduledDelayMs } : {}),
        onError: report,
      });
    } catch (err) {
      await json?.close();
      throw err;
    }
  }
  if (!json && !otlp) return { stats: () => NO_EXPORT_STATS, reopen: () => {}, close: async () => {} };

  const identify = (ip: string): PodIdentity | undefined => source.identity(ip);
  const send = (make: () => ExportRecord): void => {
    // Listeners run inside the agent's pipeline: nothing may escape from here.
    try {
      const r = make();
      const text = JSON.stringify(r.line);
      json?.writeText(text);
      otlp?.emit(r, text);
    } catch (err) {
      report(err instanceof Error ? err : new Error(String(err)));
    }
  };
  const onRecord = (r: FlowRecord): void => send(() => ({ kind: 'flow', line: flowRecordLine(r, identify) }));
  const onSecurity = (e: SecurityEvent): void => send(() => ({ kind: 'security', line: securityEventLine(e, identify) }));
  const onBlock = (c: BlockChange): void => send(() => ({ kind: 'block', line: blockChangeRecordLine(c) }));
  const onLost = (l: LostReport): void => send(() => ({ kind: 'lost', line: lostRecordLine(l) }));
  source.on('record', onRecord);
  source.on('security', onSecurity);
  source.on('block', onBlock);
  source.on('lost', onLost);
  // logrotate moves the file and sends SIGHUP; without a handler SIGHUP would end the process.
  const onHup = (): void => json?.reopen();
  const hup = json !== undefined && json.target !== 'stdout' && (tuning.reopenOnSighup ?? true);
  if (hup) process.on('SIGHUP', onHup);

  let closing: Promise<void> | undefined;
  return {
    stats: () => ({ jsonLines: json?.stats() ?? null, otlp: otlp?.stats() ?? null }),
    reopen: () => json?.reopen(),
    close() {
      closing ??= (async () => {
        source.off('record', onRecord);
        source.off('security', onSecurity);
        source.off('block', onBlock);
        source.off('lost', onLost);
        if (hup) process.off('SIGHUP', onHup);
        await Promise.all([json?.close(), otlp?.close()]);
      })();
      return closing;
    },
  };
}
