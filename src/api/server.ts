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
import { FLOW_FILTER_PARAMS, FilterError, addressMatcher, compileFilter, parseFilter } from '../agent/flow-filter.js';
import { SECURITY_FILTER_PARAMS, compileSecurityFilter, parseSecurityFilter, sourceMatcher } from '../agent/security-filter.js';
import { KubeNetProbeError } from '../errors.js';
import type { FlowRecord } from '../agent/flow-accounter.js';
import type { BlockChange, SecurityEvent } from '../types.js';

/** JSON with bigints (sequence numbers, kernel timestamps) as strings. */
function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
}

type Status = 200 | 201 | 400 | 403 | 404 | 413 | 415 | 500 | 503;

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
      const { contentType, body } = await metrics.scrape();
      return c.body(body, 200, { 'content-type': contentType });
    });
  }

  app.get('/healthz', (c) => json(c, { status: 'ok' }));
  app.get('/readyz', (c) => (agent.ready ? json(c, { status: 'ready' }) : json(c, { status: 'starting' }, 503)));

  app.get('/api/v1/flows', (c) => json(c, { flows: agent.flows(filterOf(c, ['limit']), limitOf(c)) }));
  app.get('/api/v1/conversations', (c) => json(c, { conversations: agent.conversations(filterOf(c)) }));
  app.get('/api/v1/stats', (c) => json(c, agent.stats()));

  app.get('/api/v1/security-events', (c) => {
    const q = only(c, [...SECURITY_FILTER_PARAMS, 'limit']);
    const filter = parseSecurityFilter(pick(q, SECURITY_FILTER_PARAMS));
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
    const matchSecurity = compileSecurityFilter(securityFilter);
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
