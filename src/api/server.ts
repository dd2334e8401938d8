/**
 * The agent's HTTP API (hono): flows, conversations, stats, a live event
 * stream (server-sent events), health and readiness. Loopback unless the
 * config says otherwise. One error hierarchy becomes responses in one place
 * (onError): a bad parameter is a 400 that names it.
 */
import type { Server } from 'node:http';
import { Hono, type Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { createAdaptorServer } from '@hono/node-server';
import type { Agent } from '../agent/agent.js';
import { FilterError, compileFilter, parseFilter } from '../agent/flow-filter.js';
import { KubeNetProbeError } from '../errors.js';
import type { FlowRecord } from '../agent/flow-accounter.js';
import type { SecurityEvent } from '../types.js';

/** JSON with bigints (sequence numbers, kernel timestamps) as strings. */
function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
}

function json(c: Context, body: unknown, status: 200 | 400 | 404 | 500 | 503 = 200): Response {
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

export function createApp(agent: Agent): Hono {
  const app = new Hono();

  app.get('/healthz', (c) => json(c, { status: 'ok' }));
  app.get('/readyz', (c) => (agent.ready ? json(c, { status: 'ready' }) : json(c, { status: 'starting' }, 503)));

  app.get('/api/v1/flows', (c) => json(c, { flows: agent.flows(filterOf(c, ['limit']), limitOf(c)) }));
  app.get('/api/v1/conversations', (c) => json(c, { conversations: agent.conversations(filterOf(c)) }));
  app.get('/api/v1/stats', (c) => json(c, agent.stats()));

  app.get('/api/v1/events', (c) => {
    const match = compileFilter(filterOf(c), (ip) => agent.identity(ip));
    return streamSSE(c, async (stream) => {
      const onRecord = (r: FlowRecord): void => {
        if (match(r.flow.key, r.flow.interface)) void stream.writeSSE({ event: 'flow', data: toJson(r) });
      };
      const onSecurity = (e: SecurityEvent): void => {
        if (match(e.key, e.interface)) void stream.writeSSE({ event: 'security', data: toJson(e) });
      };
      agent.on('record', onRecord);
      agent.on('security', onSecurity);
      await stream.writeSSE({ event: 'hello', data: toJson({ ready: agent.ready }) });
      await new Promise<void>((resolve) => stream.onAbort(resolve));
      agent.off('record', onRecord);
      agent.off('security', onSecurity);
    });
  });

  app.notFound((c) => json(c, { error: { code: 'NOT_FOUND', message: `no such endpoint: ${c.req.method} ${c.req.path}` } }, 404));

  app.onError((err, c) => {
    if (err instanceof FilterError) return json(c, { error: { code: 'BAD_PARAMETER', parameter: err.param, message: err.message } }, 400);
    if (err instanceof KubeNetProbeError) return json(c, { error: { code: err.code, message: err.message } }, err.code === 'CLOSED' ? 503 : 500);
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
  const server = createAdaptorServer({ fetch: createApp(agent).fetch }) as Server;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const where = `${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}`;
      if (err.code === 'EADDRINUSE') reject(new KubeNetProbeError('INVALID_ARGUMENT', `listen ${where}: the port is in use`, { hint: 'stop what uses it, or choose another with --listen HOST:PORT' }));
      else if (err.code === 'EADDRNOTAVAIL') reject(new KubeNetProbeError('INVALID_ARGUMENT', `listen ${where}: no such address on this machine`, { hint: 'use 127.0.0.1 (the default) or an address of this node' }));
      else if (err.code === 'EACCES') reject(new KubeNetProbeError('PERMISSION_DENIED', `listen ${where}: permission denied`, { hint: 'use a port above 1023' }));
      else reject(err);
    });
    server.listen(listen.port, listen.host, () => resolve());
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
