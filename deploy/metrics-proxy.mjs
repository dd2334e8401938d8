#!/usr/bin/env node
// A read-only front for the agent's API, for the DaemonSet (deploy/kubernetes/daemonset.yaml).
//
// The agent runs with hostNetwork, so whatever it listens on is on the node's addresses; its API
// has endpoints that change things (POST /api/v1/blocks blocks an address on the node, PATCH
// /api/v1/detectors) and no authentication. So the agent listens on 127.0.0.1 only, and this
// proxy, in its own container without capabilities, serves just GET/HEAD /metrics, /healthz and
// /readyz on the node's IP for Prometheus. Everything else is 404 (405 for other methods).
//
//   METRICS_PROXY_LISTEN    HOST:PORT to listen on (default 127.0.0.1:9471; the DaemonSet gives
//                           the node's IP from the downward API)
//   METRICS_PROXY_UPSTREAM  the agent (default http://127.0.0.1:9470)
import http from 'node:http';

export const ALLOWED_PATHS = new Set(['/metrics', '/healthz', '/readyz']);

/** Splits HOST:PORT (IPv6 as [addr]:port). */
export function parseListen(text) {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) throw new Error(`METRICS_PROXY_LISTEN: expected HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: m[1] ?? m[2], port };
}

/** Creates (does not start) the proxy server. */
export function createMetricsProxy(upstream) {
  const base = new URL(upstream);
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (!ALLOWED_PATHS.has(path)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: this port serves /metrics, /healthz and /readyz only\n');
      return;
    }
    const headers = { accept: req.headers.accept ?? '*/*' };
    const up = http.request(
      { host: base.hostname.replace(/^\[|\]$/g, ''), port: base.port || 80, path, method: req.method, headers, timeout: 10_000 },
      (upRes) => {
        const out = {};
        for (const h of ['content-type', 'content-length', 'content-encoding']) if (upRes.headers[h] !== undefined) out[h] = upRes.headers[h];
        res.writeHead(upRes.statusCode ?? 502, out);
        upRes.pipe(res);
      },
    );
    up.on('timeout', () => up.destroy(new Error('upstream timed out')));
    up.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`agent not reachable at ${upstream}: ${err.message}\n`);
    });
    up.end();
  });
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const { host, port } = parseListen(process.env.METRICS_PROXY_LISTEN ?? '127.0.0.1:9471');
  const upstream = process.env.METRICS_PROXY_UPSTREAM ?? 'http://127.0.0.1:9470';
  const server = createMetricsProxy(upstream);
  server.on('error', (err) => {
    console.error(`metrics-proxy: cannot listen on ${host}:${port}: ${err.message}`);
    process.exit(1);
  });
  server.listen(port, host, () => console.log(`metrics-proxy: http://${host.includes(':') ? `[${host}]` : host}:${port} -> ${upstream} (GET /metrics, /healthz, /readyz)`));
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
}
