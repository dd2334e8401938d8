/**
 * The agent's HTTP API (hono): flows, conversations, stats, security
 * events, blocks, detector settings, a live event stream (server-sent
 * events), health and readiness. Loopback unless the config says
 * otherwise. One error hierarchy becomes responses in one place (onError):
 * a bad parameter is a 400 that names it.
 *
 * The endpoints that change things (blocks, detector settings) take JSON
 * only and refuse requests that come from a web page (an Origin header):
 * a page in a browser on this node must not be able to block addresses.
 */
import { AgentMetrics } from '../metrics/agent-metrics.js';
import type { Server } from 'node:http';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { streamSSE } from 'hono/streaming';
import { bodyLimit } from 'hono/body-limit';
import { createAdaptorServer } from '@hono/node-server';
import type { Agent, LostReport } from '../agent/agent.js';
import { FLOW_FILTER_PARAMS, FilterError, addressMatcher, compileFilter, parseFilter, parseIdentityFilter } from '../agent/flow-filter.js';
import { SECURITY_FILTER_PARAMS, compileSecurityFilter, parseSecurityFilter, sourceMatcher } from '../agent/security-filter.js';
import { KubeNetProbeError } from '../errors.js';
import type { FlowRecord } from '../agent/flow-accounter.js';
import type { BlockChange, SecurityEvent } from '../types.js';
import { TIME_ARG_FORMS, parseTimeArg, type TimeRange } from '../history/time-range.js';
import { registerServiceMap } from './service-map.js';
import { registerWebPage } from './web.js';
// Types only: the store itself (and DuckDB) is the agent's, loaded when history is on.
import type { HistoryEvent, HistoryFlow, HistoryStore, TalkerGroup, TopTalker, Workload } from '../history/history-store.js';

/** JSON with bigints (sequence numbers, kernel timestamps) as strings. */
function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
}

type Status = 200 | 201 | 400 | 403 | 404 | 409 | 413 | 415 | 500 | 503;

function json(c: Context, body: unknown, status: Status = 200): Response {
  return c.body(toJson(body), status, { 'content-type': 'application/json; charset=utf-8' });
}

function filterOf(c: Context, extra: readonly string[] = []): ReturnType<typeof parseFilter> {
  const q = c.req.query();
  const params: Record<string, string> = {};
  for (const [k, v] of Object.entries(q)) {
    if (extra.includes(k)) continue;
    params[k] = v;
  }
  return parseFilter(params);
}

function limitOf(c: Context): number {
  const raw = c.req.query('limit');
  if (raw === undefined) return 1000;
  if (!/^\d{1,7}$/.test(raw) || Number(raw) < 1) throw new FilterError('limit', `must be a whole number from 1, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

// ---- History (since/until) -------------------------------------------------------

/** The time-range parameters: with either, an endpoint answers from the flow history. */
const TIME_PARAMS = ['since', 'until'] as const;

/** `since` and `until` as the CLI's --since/--until take them; undefined if neither is given. */
function timeRangeOf(q: Record<string, string>): TimeRange | undefined {
  if (q['since'] === undefined && q['until'] === undefined) return undefined;
  const now = Date.now();
  const range: TimeRange = {};
  for (const name of TIME_PARAMS) {
    const raw = q[name];
    if (raw === undefined) continue;
    try {
      range[name] = parseTimeArg(raw, name, now);
    } catch {
      throw new FilterError(name, `${JSON.stringify(raw)} is not a duration or a time: give ${TIME_ARG_FORMS}`);
    }
  }
  if (range.since && range.until && range.since.getTime() >= range.until.getTime()) {
    throw new FilterError(
      'until',
      `${q['until']} (${range.until.toISOString()}) is not after since ${q['since']} (${range.since.toISOString()}); a duration counts back from now, so since takes the larger one (since=1h&until=10m)`,
    );
  }
  return range;
}

/** A limit for a history query: default `dflt`, at most `max` (the store's own bounds). */
function historyLimit(q: Record<string, string>, dflt: number, max: number): number {
  const raw = q['limit'];
  if (raw === undefined) return dflt;
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1 || Number(raw) > max) throw new FilterError('limit', `must be a whole number from 1 to ${max}, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** The agent's store, or a 409 (history off) / 503 (it could not be started) that says what to do. */
async function historyOf(agent: Agent): Promise<HistoryStore> {
  const store = agent.historyStore;
  if (!store) {
    const why = agent.historyUnavailable() ?? 'history is unavailable';
    if (agent.config.history === undefined) throw new ApiError(409, 'HISTORY_OFF', why);
    throw new ApiError(503, 'HISTORY_UNAVAILABLE', why);
  }
  // Every record up to now, not only what the last timed write took.
  await agent.flushHistory();
  return store;
}

const rangeView = (r: TimeRange): { since: Date | null; until: Date | null } => ({ since: r.since ?? null, until: r.until ?? null });

/** An end's identity as history wrote it, in the live shape (no labels: they are not kept); null where the pod was unknown. */
function identityOf(namespace: string | null, pod: string | null, workload: Workload | null, service: string | null): { namespace: string; pod: string; workload?: Workload; service?: string } | null {
  if (namespace === null || pod === null) return null;
  return { namespace, pod, ...(workload ? { workload } : {}), ...(service !== null ? { service } : {}) };
}

/**
 * A flow record from history, in the shape of the live flows (key, interface,
 * source, destination, ...) so the same clients read both. `packets` and
 * `bytes` are what this record counted (its deltas): the rows of a range add
 * up to the traffic in it. `totalPackets` and `totalBytes` are the flow's
 * totals as of this record.
 */
function historyFlowView(f: HistoryFlow): Record<string, unknown> {
  return {
    key: { family: f.family, srcIp: f.srcIp, dstIp: f.dstIp, srcPort: f.srcPort, dstPort: f.dstPort, protocol: f.protocol, direction: f.direction, ifindex: f.ifindex },
    interface: f.interface,
    record: f.reason,
    time: f.time,
    firstSeen: f.firstSeen,
    lastSeen: f.time,
    packets: f.deltaPackets,
    bytes: f.deltaBytes,
    deltaPackets: f.deltaPackets,
    deltaBytes: f.deltaBytes,
    totalPackets: f.packets,
    totalBytes: f.bytes,
    packetsPerSec: f.packetsPerSec,
    bytesPerSec: f.bytesPerSec,
    tcpFlags: f.tcpFlags,
    source: identityOf(f.srcNamespace, f.srcPod, f.srcWorkload, f.srcService),
    destination: identityOf(f.dstNamespace, f.dstPod, f.dstWorkload, f.dstService),
  };
}

/** A security event from history, in the shape of the live ones (identity as it was when the event was written). */
function historyEventView(e: HistoryEvent): Record<string, unknown> {
  return {
    timestamp: e.time,
    type: e.type,
    severity: e.severity,
    description: e.description,
    key: { protocol: e.protocol, direction: e.hook === 'tc-egress' ? 'egress' : 'ingress' },
    attacker: e.attacker,
    target: e.target,
    attackerIdentity: identityOf(e.attackerNamespace, e.attackerPod, e.attackerWorkload, e.attackerService),
    targetIdentity: identityOf(e.targetNamespace, e.targetPod, e.targetWorkload, e.targetService),
    interface: e.interface,
    hook: e.hook,
    count: e.count,
    threshold: e.threshold,
    windowMs: e.windowMs,
    suppressed: e.suppressed,
    tcpFlags: e.tcpFlags,
    cpu: e.cpu,
    seq: e.seq,
  };
}

const TALKER_GROUPS: readonly TalkerGroup[] = ['pair', 'source', 'destination'];

/** Parses a bucket width: a duration (30s, 1m, 1h, 1d) or milliseconds. */
function bucketOf(raw: string | undefined): number {
  if (raw === undefined) return 60_000;
  const m = /^(\d{1,9})(ms|s|m|h|d)?$/.exec(raw);
  const ms = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h' | 'd'] : NaN;
  if (!Number.isSafeInteger(ms) || ms < 1000) throw new FilterError('bucket', `must be a duration of at least a second (30s, 1m, 1h, 1d) or milliseconds, got ${JSON.stringify(raw)}`);
  return ms;
}

const MAX_BUCKETS = 10_000;

/** Query parameters outside `allowed` are refused, naming the first. */
function only(c: Context, allowed: readonly string[]): Record<string, string> {
  const q = c.req.query();
  for (const k of Object.keys(q)) if (!allowed.includes(k)) throw new FilterError(k, `unknown parameter (${allowed.join(', ') || 'none here'})`);
  return q;
}

const pick = (q: Record<string, string>, names: readonly string[]): Record<string, string> => Object.fromEntries(Object.entries(q).filter(([k]) => names.includes(k)));

/** What the live stream carries, by `kinds`. */
const KINDS = ['flow', 'security', 'block', 'lost'] as const;
type Kind = (typeof KINDS)[number];

function kindsOf(raw: string | undefined): Set<Kind> {
  if (raw === undefined || raw === '') return new Set(KINDS);
  const out = new Set<Kind>();
  for (const k of raw.split(',').map((s) => s.trim())) {
    if (!(KINDS as readonly string[]).includes(k)) throw new FilterError('kinds', `${JSON.stringify(k)} is not a kind of event (${KINDS.join(', ')})`);
    out.add(k as Kind);
  }
  return out;
}

class ApiError extends Error {
  constructor(
    readonly status: Status,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Endpoints that change things: JSON only, never from a web page, small bodies. */
const mutation: MiddlewareHandler = async (c, next) => {
  if (c.req.header('origin') !== undefined) {
    throw new ApiError(403, 'FORBIDDEN', 'requests from web pages (with an Origin header) may not change blocks or detector settings; use the CLI or a client without one');
  }
  if (c.req.method !== 'DELETE' && !/^application\/json\s*(;|$)/i.test(c.req.header('content-type') ?? '')) {
    throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'the body must be JSON, sent with content-type: application/json');
  }
  await next();
};
const smallBody = bodyLimit({ maxSize: 16 << 10, onError: (c) => json(c, { error: { code: 'BODY_TOO_LARGE', message: 'the body is larger than 16 KiB' } }, 413) });

async function jsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new FilterError('body', `not JSON (${(err as Error).message})`);
  }
}

function blockRequest(body: unknown): { ip: string; ttlMs: number | undefined } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new FilterError('body', 'must be a JSON object: {"ip": "198.18.0.2", "ttlMs": 60000}');
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'ip' && k !== 'ttlMs') throw new FilterError(k, 'unknown field (ip, ttlMs)');
  if (o['ip'] === undefined) throw new FilterError('ip', 'missing: the address to block');
  if (typeof o['ip'] !== 'string') throw new FilterError('ip', `not an IP address: ${JSON.stringify(o['ip'])}`);
  if (o['ttlMs'] !== undefined && typeof o['ttlMs'] !== 'number') throw new FilterError('ttlMs', `must be a number of milliseconds, got ${JSON.stringify(o['ttlMs'])}`);
  return { ip: o['ip'], ttlMs: o['ttlMs'] as number | undefined };
}

export function createApp(agent: Agent, metrics?: AgentMetrics): Hono {
  const app = new Hono();

  if (metrics) {
    app.get('/metrics', async (c) => {
      // The identity filters alone scope it (none: everything).
      const { contentType, body } = await metrics.scrape(parseIdentityFilter(c.req.query()));
      return c.body(body, 200, { 'content-type': contentType });
    });
  }

  app.get('/healthz', (c) => json(c, { status: 'ok' }));
  app.get('/readyz', (c) => (agent.ready ? json(c, { status: 'ready' }) : json(c, { status: 'starting' }, 503)));

  app.get('/api/v1/flows', async (c) => {
    const q = c.req.query();
    const range = timeRangeOf(q);
    const filter = filterOf(c, ['limit', ...TIME_PARAMS]);
    if (!range) return json(c, { flows: agent.flows(filter, limitOf(c)) });
    const limit = historyLimit(q, 1000, 1_000_000);
    const store = await historyOf(agent);
    const flows = await store.queryFlows({ ...range, filters: filter, limit });
    return json(c, { flows: flows.map(historyFlowView), history: rangeView(range) });
  });

  // Top talkers from the history: each flow direction counted once (from the interface that saw the most of it).
  app.get('/api/v1/top', async (c) => {
    const q = only(c, [...FLOW_FILTER_PARAMS, ...TIME_PARAMS, 'by', 'group', 'limit']);
    const range = timeRangeOf(q) ?? {};
    const by = q['by'] ?? 'bytes';
    if (by !== 'bytes' && by !== 'packets') throw new FilterError('by', `must be bytes or packets, got ${JSON.stringify(by)}`);
    const group = (q['group'] ?? 'pair') as TalkerGroup;
    if (!TALKER_GROUPS.includes(group)) throw new FilterError('group', `must be ${TALKER_GROUPS.join(', ')}, got ${JSON.stringify(group)}`);
    const filters = parseFilter(pick(q, FLOW_FILTER_PARAMS));
    const limit = historyLimit(q, 10, 10_000);
    const store = await historyOf(agent);
    const talkers: TopTalker[] = await store.topTalkers({ ...range, by, groupBy: group, filters, limit, countOnce: true });
    return json(c, { talkers, by, group, history: rangeView(range) });
  });

  // Bytes and packets per bucket from the history, counted as /top counts them.
  app.get('/api/v1/timeseries', async (c) => {
    const q = only(c, [...FLOW_FILTER_PARAMS, ...TIME_PARAMS, 'bucket']);
    const bucketMs = bucketOf(q['bucket']);
    const range = timeRangeOf(q) ?? {};
    const until = range.until ?? new Date();
    const since = range.since ?? new Date(until.getTime() - 3_600_000);
    if (since.getTime() >= until.getTime()) throw new FilterError('since', `${since.toISOString()} is not before until (${until.toISOString()})`);
    const buckets = Math.ceil((until.getTime() - Math.floor(since.getTime() / bucketMs) * bucketMs) / bucketMs);
    if (buckets > MAX_BUCKETS) throw new FilterError('bucket', `${buckets} buckets of ${bucketMs} ms from ${since.toISOString()} to ${until.toISOString()} is more than ${MAX_BUCKETS}: use wider buckets or a shorter range`);
    const filters = parseFilter(pick(q, FLOW_FILTER_PARAMS));
    const store = await historyOf(agent);
    return json(c, await store.timeSeries({ since, until, bucketMs, filters, countOnce: true }));
  });
  app.get('/api/v1/conversations', (c) => json(c, { conversations: agent.conversations(filterOf(c)) }));
  app.get('/api/v1/stats', async (c) => {
    // The history figures fresh, unless the store is busy for longer than a moment (then the last ones, with their time).
    await Promise.race([agent.refreshHistoryStats(), new Promise((r) => setTimeout(r, 500).unref())]);
    return json(c, agent.stats());
  });

  app.get('/api/v1/security-events', async (c) => {
    const q = only(c, [...SECURITY_FILTER_PARAMS, 'limit', ...TIME_PARAMS]);
    const filter = parseSecurityFilter(pick(q, SECURITY_FILTER_PARAMS));
    const range = timeRangeOf(q);
    if (range) {
      const limit = historyLimit(q, 1000, 1_000_000);
      const store = await historyOf(agent);
      // The identity filters (namespace, pod, workload, service) as the history wrote each end; label is refused there (not kept).
      const { types, severity, source, ...identity } = filter;
      const events = await store.queryEvents({
        ...range,
        ...(types ? { type: types } : {}),
        ...(severity ? { severity } : {}),
        ...(source ? { source } : {}),
        ...identity,
        limit,
      });
      return json(c, { events: events.map(historyEventView), lost: agent.securityEventsLost(), history: rangeView(range) });
    }
    const events = agent.recentSecurityEvents(filter, limitOf(c)).map((e) => agent.securityView(e));
    return json(c, { events, lost: agent.securityEventsLost() });
  });

  app.get('/api/v1/blocks', (c) => {
    only(c, []);
    return json(c, { blocks: agent.blocks() });
  });
  app.get('/api/v1/blocks/history', (c) => {
    only(c, ['limit']);
    return json(c, { changes: agent.recentBlockChanges(limitOf(c)) });
  });
  app.post('/api/v1/blocks', mutation, smallBody, async (c) => {
    const { ip, ttlMs } = blockRequest(await jsonBody(c));
    return json(c, { block: agent.block(ip, ttlMs) }, 201);
  });
  app.delete('/api/v1/blocks/:ip', mutation, (c) => {
    const ip = c.req.param('ip').replace(/^\[(.*)\]$/, '$1');
    const block = agent.unblock(ip);
    if (!block) throw new ApiError(404, 'NOT_BLOCKED', `${ip} is not blocked`);
    return json(c, { block });
  });

  app.get('/api/v1/detectors', (c) => {
    only(c, []);
    return json(c, { detectors: agent.detectorConfig() });
  });
  app.patch('/api/v1/detectors', mutation, smallBody, async (c) => json(c, { detectors: agent.configureDetectors(await jsonBody(c)) }));

  app.get('/api/v1/events', (c) => {
    const q = only(c, [...FLOW_FILTER_PARAMS, ...SECURITY_FILTER_PARAMS, 'kinds']);
    const kinds = kindsOf(q['kinds']);
    const flowFilter = parseFilter(pick(q, FLOW_FILTER_PARAMS));
    const securityFilter = parseSecurityFilter(pick(q, SECURITY_FILTER_PARAMS));
    const match = compileFilter(flowFilter, (ip) => agent.identity(ip));
    const matchSecurity = compileSecurityFilter(securityFilter, (ip) => agent.identity(ip));
    const matchAddress = addressMatcher(flowFilter);
    const matchSource = sourceMatcher(securityFilter.source);
    return streamSSE(c, async (stream) => {
      const onRecord = (r: FlowRecord): void => {
        if (match(r.flow.key, r.flow.interface)) void stream.writeSSE({ event: 'flow', data: toJson(r) });
      };
      const onSecurity = (e: SecurityEvent): void => {
        if (match(e.key, e.interface) && matchSecurity(e)) void stream.writeSSE({ event: 'security', data: toJson(agent.securityView(e)) });
      };
      // A block has one address: the ip, cidr and source filters apply to it.
      const onBlock = (b: BlockChange): void => {
        if (matchAddress(b.block.ip) && matchSource(b.block.ip)) void stream.writeSSE({ event: 'block', data: toJson(b) });
      };
      // Loss is never filtered: what was lost might have matched.
      const onLost = (l: LostReport): void => void stream.writeSSE({ event: 'lost', data: toJson(l) });
      if (kinds.has('flow')) agent.on('record', onRecord);
      if (kinds.has('security')) agent.on('security', onSecurity);
      if (kinds.has('block')) agent.on('block', onBlock);
      if (kinds.has('lost')) agent.on('lost', onLost);
      await stream.writeSSE({ event: 'hello', data: toJson({ ready: agent.ready, kinds: [...kinds] }) });
      await new Promise<void>((resolve) => stream.onAbort(resolve));
      agent.off('record', onRecord);
      agent.off('security', onSecurity);
      agent.off('block', onBlock);
      agent.off('lost', onLost);
    });
  });

  // The service map and the web page that shows it (service-map.ts, web.ts).
  registerServiceMap(app, agent, json);
  registerWebPage(app);

  app.notFound((c) => json(c, { error: { code: 'NOT_FOUND', message: `no such endpoint: ${c.req.method} ${c.req.path}` } }, 404));

  app.onError((err, c) => {
    if (err instanceof ApiError) return json(c, { error: { code: err.code, message: err.message } }, err.status);
    if (err instanceof FilterError) return json(c, { error: { code: 'BAD_PARAMETER', parameter: err.param, message: err.message } }, 400);
    if (err instanceof KubeNetProbeError) {
      const status = err.code === 'INVALID_ARGUMENT' ? 400 : err.code === 'CLOSED' ? 503 : 500;
      return json(c, { error: { code: err.code, message: err.message } }, status);
    }
    return json(c, { error: { code: 'INTERNAL', message: 'internal error' } }, 500);
  });
  return app;
}

export interface ApiServer {
  url: string;
  close(): Promise<void>;
}

/** Listens on host:port; a taken port or an address that isn't ours is a clear error. */
export async function startApiServer(agent: Agent, listen: { host: string; port: number }): Promise<ApiServer> {
  // The metrics live as long as the server that serves them.
  const metrics = new AgentMetrics(agent, { podSeriesBudget: agent.config.podSeriesBudget });
  const server = createAdaptorServer({ fetch: createApp(agent, metrics).fetch }) as Server;
  server.once('close', () => metrics.close());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const where = `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
      if (err.code === 'EADDRINUSE') reject(new KubeNetProbeError('INVALID_ARGUMENT', `listen ${where}: the port is in use`, { hint: 'stop what uses it, or choose another with --listen HOST:PORT' }));
      else if (err.code === 'EADDRNOTAVAIL') reject(new KubeNetProbeError('INVALID_ARGUMENT', `listen ${where}: no such address on this machine`, { hint: 'use 127.0.0.1 (the default) or an address of this node' }));
      else if (err.code === 'EACCES') reject(new KubeNetProbeError('PERMISSION_DENIED', `listen ${where}: permission denied`, { hint: 'use a port above 1023' }));
      else reject(err);
    });
    server.listen(listen.port, listen.host, () => resolve());
  }).catch((err: unknown) => {
    metrics.close();
    throw err;
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : listen.port;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
