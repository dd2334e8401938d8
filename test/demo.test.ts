/**
 * The demo: it starts, flows between the named pods show in the API within
 * seconds, scans show as security events, and nothing is left after it exits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { waitFor } from './helpers/attached.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

test('kubenetprobe demo: named pods, flows in the API, scans, and a clean exit', async () => {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  const demo = spawn(process.execPath, [CLI, 'demo', '--seconds', '14', '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  demo.stdout.on('data', (d: Buffer) => (out += d.toString()));
  demo.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => demo.once('exit', r));
  let historyPath: string | undefined;
  try {
    await waitFor('the API', () => out.includes('API at'), 30000);
    const frontendIp = new RegExp(`shop/frontend-6f7c9-x2k4q +Deployment/frontend +frontend +(198\\.18\\.\\d+\\.\\d+) +kd[0-9a-f]{6}0 `).exec(out)?.[1];
    assert.ok(frontendIp, `the pods are listed with workload, service, address and the veth the agent found:\n${out}`);
    let flows: { key: { dstIp: string; dstPort: number } }[] = [];
    await waitFor('client -> frontend flows through the API', () => {
      void fetch(`http://127.0.0.1:${port}/api/v1/flows?ip=${frontendIp}&port=80`)
        .then((r) => r.json())
        .then((b) => (flows = (b as { flows: typeof flows }).flows))
        .catch(() => {});
      return flows.some((f) => f.key.dstIp === frontendIp && f.key.dstPort === 80);
    }, 8000);
    await waitFor('a scan reported', () => /SECURITY MEDIUM tcp-(null|xmas)-scan: default\/debug-shell \(Pod\/debug-shell\) -> /.test(out), 12000);
    await waitFor('the port scan reported', () => /SECURITY HIGH tcp-port-scan: default\/debug-shell \(Pod\/debug-shell\) -> shop\/api-58d4b-9mzt7:\d+ \(Deployment\/api, svc api\)/.test(out), 12000);
    assert.match(out, /default\/loadgen-28731-hc2vd -> shop\/frontend-6f7c9-x2k4q:80 TCP svc\/frontend /);
    // History is on, in the demo's own directory.
    historyPath = /demo: flow history in (\S+),/.exec(out)?.[1];
    assert.ok(historyPath && existsSync(historyPath), out);
    const stats = (await (await fetch(`http://127.0.0.1:${port}/api/v1/stats`)).json()) as { history: { available: boolean; inMemory: boolean; path: string } };
    assert.deepEqual([stats.history.available, stats.history.inMemory, stats.history.path], [true, false, historyPath]);
    const since = await fetch(`http://127.0.0.1:${port}/api/v1/flows?since=5m`);
    assert.equal(since.status, 200);
  } finally {
    assert.equal(await exited, 0, out);
  }
  assert.match(out, /demo: removed 6 pods/);
  assert.ok(!existsSync(dirname(historyPath!)), 'the history directory is removed');
  assert.doesNotMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), /kdemo-/);
  assert.doesNotMatch(execFileSync('ip', ['link'], { encoding: 'utf8' }), /kdb[0-9a-f]{6}|kd[0-9a-f]{6}\d/);
});
