import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Inventory } from './inventory.js';

test('looks pods up by IP, and follows the file when it changes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'knp-inv-'));
  try {
    const f = join(dir, 'inv.json');
    writeFileSync(f, JSON.stringify({ pods: [{ name: 'api', namespace: 'shop', labels: { app: 'api' }, ip: '198.18.0.11' }] }));
    const inv = Inventory.load(f);
    assert.deepEqual(inv.lookup('198.18.0.11'), { namespace: 'shop', pod: 'api', labels: { app: 'api' } });
    assert.equal(inv.lookup('198.18.0.12'), undefined);
    // The pod is gone and its IP reused by another.
    writeFileSync(f, JSON.stringify({ pods: [{ name: 'db', namespace: 'data', ip: '198.18.0.11' }] }));
    utimesSync(f, new Date(), new Date(Date.now() + 5000));
    inv.reload();
    assert.deepEqual(inv.lookup('198.18.0.11'), { namespace: 'data', pod: 'db', labels: {} });
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('a bad inventory names the problem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'knp-inv-'));
  try {
    const f = join(dir, 'inv.json');
    assert.throws(() => Inventory.load(f), /inventory .*inv\.json: cannot read it \(ENOENT\)/);
    writeFileSync(f, '{pods:');
    assert.throws(() => Inventory.load(f), /inventory .*: not JSON/);
    writeFileSync(f, JSON.stringify({ pods: [{ name: 'x', namespace: 'y', ip: 'nope' }] }));
    assert.throws(() => Inventory.load(f), /inventory .*: pods\.0\.ip: not an IP address/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('the inventory may give workload, service and node too', () => {
  const dir = mkdtempSync(join(tmpdir(), 'knp-inv-'));
  try {
    const f = join(dir, 'inv.json');
    writeFileSync(f, JSON.stringify({ pods: [{ name: 'api-1', namespace: 'shop', ip: '198.18.0.11', workload: { kind: 'Deployment', name: 'api' }, service: 'api', node: 'node-1' }] }));
    assert.deepEqual(Inventory.load(f).lookup('198.18.0.11'), { namespace: 'shop', pod: 'api-1', labels: {}, workload: { kind: 'Deployment', name: 'api' }, service: 'api', node: 'node-1' });
    writeFileSync(f, JSON.stringify({ pods: [{ name: 'x', namespace: 'y', ip: '198.18.0.12', workload: { kind: 'Deployment' } }] }));
    assert.throws(() => Inventory.load(f), /inventory .*: pods\.0\.workload\.name: /);
  } finally {
    rmSync(dir, { recursive: true });
  }
});
