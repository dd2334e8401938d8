import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IpIndex } from './ip-index.js';
import { canonicalIp, labelFilter, slimEndpointSlice, slimNode, slimPod, slimService } from './slim.js';
import { endpointSlice, node, pod, service } from '../../test/helpers/fake-kube-api.js';

test('canonicalIp', () => {
  assert.equal(canonicalIp('10.1.2.3'), '10.1.2.3');
  assert.equal(canonicalIp('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(canonicalIp('::FFFF:a01:203'), '10.1.2.3');
  assert.equal(canonicalIp('FD00:0:0::0001'), 'fd00::1');
  assert.equal(canonicalIp('2001:db8::1'), '2001:db8::1');
});

test('labelFilter: exact keys and prefixes; empty keeps none', () => {
  const f = labelFilter(['app', 'app.kubernetes.io/*']);
  assert.ok(f('app'));
  assert.ok(f('app.kubernetes.io/name'));
  assert.ok(!f('pod-template-hash'));
  assert.ok(!labelFilter([])('app'));
});

test('slim records keep only the fields used', () => {
  const p = slimPod(pod({ name: 'p', ip: ['10.0.0.1', 'fd00::1'], labels: { app: 'a', other: 'x' }, owner: { kind: 'ReplicaSet', name: 'rs' } }), labelFilter(['app']));
  assert.deepEqual(Object.keys(p).sort(), ['hostNetwork', 'ips', 'labels', 'metadata', 'node', 'owner']);
  assert.deepEqual(Object.keys(p.metadata).sort(), ['name', 'namespace', 'uid']);
  assert.deepEqual(p.ips, ['10.0.0.1', 'fd00::1']);
  assert.deepEqual(p.labels, { app: 'a' });
  assert.deepEqual(p.owner, { kind: 'ReplicaSet', name: 'rs' });
  assert.deepEqual(slimPod(pod({ name: 'p', ip: '10.0.0.1', phase: 'Failed' }), labelFilter([])).ips, []);
  const s = slimService(service({ name: 's', clusterIP: '10.96.0.1', ports: [53] }));
  assert.deepEqual(s.clusterIPs, ['10.96.0.1']);
  assert.deepEqual(s.ports, [{ name: 'p53', protocol: 'TCP', port: 53 }]);
  assert.deepEqual(slimService(service({ name: 'h', clusterIP: 'None' })).clusterIPs, []);
  const e = slimEndpointSlice(endpointSlice({ name: 'e', service: 's', addresses: ['10.0.0.1', '10.0.0.2'] }));
  assert.deepEqual([e.service, e.addresses], ['s', ['10.0.0.1', '10.0.0.2']]);
  assert.deepEqual(slimNode(node({ name: 'n', ip: '192.168.0.1' })).internalIPs, ['192.168.0.1']);
});

test('IpIndex: the newest claimant owns an IP; releases fall back; re-assertion does not take over', () => {
  const ix = new IpIndex<string>();
  ix.set('a', ['1.1.1.1'], 'A', []);
  ix.set('b', ['1.1.1.1'], 'B', []);
  assert.equal(ix.get('1.1.1.1'), 'B');
  ix.set('a', ['1.1.1.1'], 'A2', ['1.1.1.1']);
  assert.equal(ix.get('1.1.1.1'), 'B');
  ix.remove('1.1.1.1', 'b');
  assert.equal(ix.get('1.1.1.1'), 'A2', 'A still holds it');
  const r = ix.set('a', ['2.2.2.2'], 'A3', ['1.1.1.1']);
  assert.deepEqual(r, { acquired: ['2.2.2.2'], released: ['1.1.1.1'] });
  assert.equal(ix.get('1.1.1.1'), undefined);
  assert.equal(ix.size, 1);
});
