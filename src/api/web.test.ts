import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { PAGE_CSP, registerWebPage } from './web.js';

test('serves the built page and its assets, nothing else, with a same-origin CSP', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'knp-web-'));
  try {
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>x</title>');
    writeFileSync(join(dir, 'assets', 'index-abc.js'), 'console.log(1)');
    writeFileSync(join(dir, 'secret.txt'), 'no');
    const app = new Hono();
    registerWebPage(app, dir);
    const page = await app.request('/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /text\/html/);
    assert.equal(page.headers.get('content-security-policy'), PAGE_CSP);
    assert.ok(!PAGE_CSP.includes('http'), 'no other origin');
    const js = await app.request('/assets/index-abc.js');
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type')!, /javascript/);
    assert.equal(await js.text(), 'console.log(1)');
    for (const path of ['/assets/..%2Fsecret.txt', '/assets/..%2F..%2Fpackage.json', '/assets/.hidden.js', '/assets/missing.js', '/assets/index-abc.exe']) {
      assert.equal((await app.request(path)).status, 404, path);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unbuilt page says how to build it', async () => {
  const app = new Hono();
  registerWebPage(app, join(tmpdir(), 'knp-web-none-such'));
  const r = await app.request('/');
  assert.equal(r.status, 503);
  assert.match(await r.text(), /vite build/);
});
