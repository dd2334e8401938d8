/**
 * The interface watcher against the kernel: veths that appear are reported
 * within 2 s, deleted ones are forgotten, and only names matching the
 * patterns count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { InterfaceWatcher, interfaceMatcher, type InterfaceRef } from '../src/agent/interface-watcher.js';
import { InvalidArgumentError } from '../src/errors.js';
import { sh } from './helpers/testnet.js';
import { waitFor } from './helpers/attached.js';

test('patterns: names and globs, and nothing else', () => {
  const m = interfaceMatcher(['eth0', 'veth*', 'cali?x', 'lxc[0-9]*']);
  assert.ok(m('eth0'));
  assert.ok(!m('eth1'));
  assert.ok(m('veth12ab'));
  assert.ok(m('cali1x'));
  assert.ok(m('lxc7abc'));
  assert.ok(!m('lxcabc'));
  for (const bad of ['eth0; rm -rf /', 'a/b', '', '{a,b}', 'x'.repeat(65)]) {
    assert.throws(() => interfaceMatcher([bad]), InvalidArgumentError, bad);
  }
  assert.throws(() => interfaceMatcher([]), /no interface patterns given/);
});

test('veths that appear are reported within 2 s; deleted ones are forgotten', async () => {
  const id = randomBytes(3).toString('hex');
  const a = `kw${id}a`;
  const b = `kw${id}b`;
  const other = `kx${id}a`;
  const watcher = InterfaceWatcher.start([`kw${id}*`]);
  const added: InterfaceRef[] = [];
  const removed: InterfaceRef[] = [];
  watcher.on('added', (r) => added.push(r));
  watcher.on('removed', (r) => removed.push(r));
  try {
    assert.deepEqual(watcher.current(), []);
    const t0 = Date.now();
    sh('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
    sh('ip', ['link', 'add', other, 'type', 'veth', 'peer', 'name', `kx${id}b`]);
    await waitFor('both veth ends', () => added.length >= 2, 2000);
    assert.ok(Date.now() - t0 < 2000);
    assert.deepEqual(added.map((r) => r.name).sort(), [a, b]);
    for (const r of added) assert.ok(r.ifindex > 0);
    // Bringing a link up is a change of state, not a new interface.
    sh('ip', ['link', 'set', a, 'up']);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(added.length, 2);
    assert.deepEqual(watcher.current().map((r) => r.name).sort(), [a, b]);

    sh('ip', ['link', 'del', a]); // takes its peer with it
    await waitFor('both ends removed', () => removed.length >= 2, 2000);
    assert.deepEqual(removed.map((r) => r.name).sort(), [a, b]);
    assert.deepEqual(watcher.current(), []);
    assert.ok(!added.some((r) => r.name === other), 'a non-matching name is ignored');
  } finally {
    watcher.close();
    watcher.close();
    for (const n of [a, other]) {
      try {
        sh('ip', ['link', 'del', n]);
      } catch {
        /* already gone */
      }
    }
  }
});
