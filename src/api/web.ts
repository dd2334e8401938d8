/**
 * The web page (web/, built by Vite into dist/web): served by the agent on
 * its API port at `/`, its bundled scripts and styles under `/assets/`.
 * Nothing comes from elsewhere (no CDN): the page's Content-Security-Policy
 * allows this origin only. Only files the build put in the folder are
 * served, by a name without path separators; the page reads the API and
 * changes nothing (the API refuses changes from web pages anyway).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Context, Hono } from 'hono';
import { packageRoot } from '../paths.js';

/** Where `vite build` puts the page (see web/vite.config.ts). */
export function webRoot(): string {
  return join(packageRoot(), 'dist', 'web');
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/** Same origin only; uPlot and cytoscape set element styles from script, hence the inline styles. */
export const PAGE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SAFE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,200}$/;

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>KubeNetProbe</title>
<p>The web page is not built. Run <code>bash scripts/setup.sh</code> (or <code>npx vite build --config web/vite.config.ts</code>) and reload.</p>
<p>The API is at <a href="/api/v1/stats">/api/v1/stats</a>.</p>`;

async function fileOr404(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch {
    return undefined;
  }
}

function pageHeaders(type: string, cache: string): Record<string, string> {
  return { 'content-type': type, 'cache-control': cache, 'x-content-type-options': 'nosniff', 'content-security-policy': PAGE_CSP, 'referrer-policy': 'no-referrer' };
}

/** Registers `/` (the page) and `/assets/NAME`; `root` is the built folder. */
export function registerWebPage(app: Hono, root: string = webRoot()): void {
  const page = async (c: Context): Promise<Response> => {
    const html = await fileOr404(join(root, 'index.html'));
    if (!html) return c.body(NOT_BUILT, 503, pageHeaders('text/html; charset=utf-8', 'no-store'));
    return c.body(new Uint8Array(html), 200, pageHeaders('text/html; charset=utf-8', 'no-cache'));
  };
  app.get('/', page);
  app.get('/index.html', page);
  app.get('/assets/:name', async (c) => {
    const name = c.req.param('name');
    const ext = /\.[a-z0-9]+$/.exec(name)?.[0] ?? '';
    const type = TYPES[ext];
    const body = SAFE_NAME.test(name) && type ? await fileOr404(join(root, 'assets', name)) : undefined;
    if (!body || !type) return c.body('not found', 404, { 'content-type': 'text/plain; charset=utf-8' });
    // Vite puts a content hash in every asset's name: cache for good.
    return c.body(new Uint8Array(body), 200, pageHeaders(type, 'public, max-age=31536000, immutable'));
  });
}
