import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FilterError, IDENTITY_FILTER_PARAMS, LIVE_IDENTITY_PARAMS, addressMatcher, compileFilter, compileIdentityFilter, parseFilter, type FilterIdentity } from './flow-filter.js';
import type { FlowKey } from '../types.js';

const key: FlowKey = { family: 'ipv4', srcIp: '198.18.1.5', dstIp: '198.18.2.9', srcPort: 40000, dstPort: 80, protocol: 'TCP', protocolNumber: 6, direction: 'ingress', ifindex: 4 };
const v6: FlowKey = { ...key, family: 'ipv6', srcIp: 'fd00::5', dstIp: 'fd00:1::9', protocol: 'UDP', protocolNumber: 17 };

test('each filter matches what it names, either end of the flow', () => {
  const m = (p: Record<string, string>, k = key, iface = 'veth1') => compileFilter(parseFilter(p))(k, iface);
  assert.ok(m({}));
  assert.ok(m({ ip: '198.18.2.9' }));
  assert.ok(!m({ ip: '198.18.2.10' }));
  assert.ok(m({ cidr: '198.18.1.0/24' }));
  assert.ok(!m({ cidr: '10.0.0.0/8' }));
  assert.ok(m({ cidr: 'fd00::/16' }, v6));
  assert.ok(m({ port: '80' }));
  assert.ok(m({ port: '40000' }));
  assert.ok(!m({ port: '81' }));
  assert.ok(m({ protocol: 'TCP' }));
  assert.ok(!m({ protocol: 'udp' }));
  assert.ok(m({ direction: 'ingress' }));
  assert.ok(!m({ direction: 'egress' }));
  assert.ok(m({ interface: 'veth1' }));
  assert.ok(!m({ interface: 'veth2' }));
  assert.ok(m({ ip: '198.18.1.5', port: '80', protocol: 'tcp', interface: 'veth1' }), 'filters combine with AND');
});

test('a bad value names its parameter', () => {
  const bad: [Record<string, string>, string][] = [
    [{ ip: '999.1.1.1' }, 'ip'],
    [{ cidr: '10.0.0.0/33' }, 'cidr'],
    [{ cidr: 'banana' }, 'cidr'],
    [{ port: '70000' }, 'port'],
    [{ port: '8o' }, 'port'],
    [{ protocol: 'sctp' }, 'protocol'],
    [{ direction: 'up' }, 'direction'],
    [{ interface: 'a b' }, 'interface'],
    [{ colour: 'red' }, 'colour'],
    [{ namespace: 'Shop' }, 'namespace'],
    [{ pod: 'a/b/c' }, 'pod'],
  ];
  for (const [p, param] of bad) {
    assert.throws(() => parseFilter(p), (e: unknown) => e instanceof FilterError && e.param === param && e.message.startsWith(`${param}: `), JSON.stringify(p));
  }
});

test('namespace and pod match either end where identity is known', () => {
  const who = (ip: string) => (ip === '198.18.1.5' ? { namespace: 'default', pod: 'client' } : ip === '198.18.2.9' ? { namespace: 'shop', pod: 'api' } : undefined);
  const m = (p: Record<string, string>, k = key) => compileFilter(parseFilter(p), who)(k, 'veth1');
  assert.ok(m({ namespace: 'shop' }));
  assert.ok(m({ namespace: 'default' }));
  assert.ok(!m({ namespace: 'data' }));
  assert.ok(m({ pod: 'api' }));
  assert.ok(m({ pod: 'shop/api' }));
  assert.ok(!m({ pod: 'default/api' }));
  assert.ok(!m({ pod: 'api' }, v6), 'unknown addresses never match an identity filter');
});

test('addressMatcher: the ip and cidr filters alone, for one address', () => {
  const m = (p: Record<string, string>, ip: string) => addressMatcher(parseFilter(p))(ip);
  assert.ok(m({}, '198.18.1.5'));
  assert.ok(m({ ip: '198.18.1.5', port: '80' }, '198.18.1.5'), 'port does not apply to an address');
  assert.ok(!m({ ip: '198.18.1.5' }, '198.18.1.6'));
  assert.ok(m({ cidr: '198.18.0.0/15' }, '198.18.1.6'));
  assert.ok(!m({ cidr: '198.18.0.0/15' }, 'fd00::1'));
  assert.ok(m({ cidr: 'fd00::/8' }, 'fd00::1'));
});

test('workload, service and label: parsing names the parameter', () => {
  assert.deepEqual(parseFilter({ workload: 'web', service: 'shop/api', label: 'app.kubernetes.io/name=web' }), { workload: 'web', service: 'shop/api', label: 'app.kubernetes.io/name=web' });
  assert.deepEqual(parseFilter({ workload: 'Deployment/web', label: 'tier=' }), { workload: 'Deployment/web', label: 'tier=' });
  const bad: [Record<string, string>, string][] = [
    [{ workload: 'a/b/c' }, 'workload'],
    [{ workload: 'Web' }, 'workload'],
    [{ workload: '9x/web' }, 'workload'],
    [{ service: 'a/b/c' }, 'service'],
    [{ service: 'API' }, 'service'],
    [{ label: 'app' }, 'label'],
    [{ label: '=web' }, 'label'],
    [{ label: 'app=we b' }, 'label'],
    [{ label: 'Bad_Prefix/app=web' }, 'label'],
    [{ label: `app=${'x'.repeat(64)}` }, 'label'],
  ];
  for (const [p, param] of bad) {
    assert.throws(() => parseFilter(p), (e: unknown) => e instanceof FilterError && e.param === param && e.message.startsWith(`${param}: `), JSON.stringify(p));
  }
});

test('workload, service and label match either end where identity knows them', () => {
  const who = (ip: string): FilterIdentity | undefined =>
    ip === '198.18.1.5'
      ? { namespace: 'default', pod: 'client-1', labels: { app: 'client' }, workload: { kind: 'Pod', name: 'client-1' } }
      : ip === '198.18.2.9'
        ? { namespace: 'shop', pod: 'api-7d9f-x', labels: { app: 'api', tier: '' }, workload: { kind: 'Deployment', name: 'api' }, service: 'api-svc' }
        : undefined;
  const m = (p: Record<string, string>, k = key) => compileFilter(parseFilter(p), who)(k, 'veth1');
  assert.ok(m({ workload: 'api' }));
  assert.ok(m({ workload: 'Deployment/api' }));
  assert.ok(m({ workload: 'deployment/api' }), 'the kind in any case');
  assert.ok(!m({ workload: 'StatefulSet/api' }));
  assert.ok(m({ workload: 'Pod/client-1' }));
  assert.ok(m({ service: 'api-svc' }));
  assert.ok(m({ service: 'shop/api-svc' }));
  assert.ok(!m({ service: 'default/api-svc' }));
  assert.ok(!m({ service: 'client' }));
  assert.ok(m({ label: 'app=client' }));
  assert.ok(m({ label: 'tier=' }), 'an empty value matches a label set to ""');
  assert.ok(!m({ label: 'app=db' }));
  assert.ok(!m({ label: 'constructor=' }), 'only the labels themselves');
  assert.ok(m({ workload: 'api', label: 'app=api', service: 'api-svc', port: '80' }), 'filters combine with AND');
  assert.ok(!m({ workload: 'api' }, v6), 'unknown addresses never match an identity filter');
  assert.ok(!compileFilter(parseFilter({ workload: 'x' }), () => ({ namespace: 'a', pod: 'x' }))(key, 'veth1'), 'an identity without a workload (an old inventory) never matches');
});

test('compileIdentityFilter: each identity filter matches some end; nothing to resolve without one', () => {
  assert.equal(compileIdentityFilter(parseFilter({ port: '80', ip: '198.18.1.5' })), undefined, 'no identity part: callers resolve nothing');
  let asked = 0;
  const counting = (ip: string): FilterIdentity | undefined => {
    asked++;
    return ip === '198.18.1.5' ? { namespace: 'default', pod: 'client-1' } : undefined;
  };
  assert.ok(compileFilter(parseFilter({ port: '80' }), counting)(key, 'veth1'));
  assert.equal(asked, 0, 'a filter without identity never asks');
  assert.ok(compileFilter(parseFilter({ namespace: 'default', pod: 'client-1' }), counting)(key, 'veth1'));
  assert.equal(asked, 2, 'each end resolved once, however many identity filters');
  const m = compileIdentityFilter(parseFilter({ namespace: 'shop', workload: 'Deployment/api' }))!;
  const api = { namespace: 'shop', pod: 'api-0', workload: { kind: 'Deployment', name: 'api' } };
  assert.ok(m([undefined, api]));
  assert.ok(m([{ namespace: 'shop', pod: 'x' }, { namespace: 'default', pod: 'y', workload: { kind: 'Deployment', name: 'api' } }]), 'each filter by either end');
  assert.ok(!m([{ namespace: 'default', pod: 'x' }, { namespace: 'default', pod: 'y', workload: { kind: 'Deployment', name: 'api' } }]));
  assert.ok(!m([undefined, undefined]));
  assert.ok(!m([]));
});

test('only label is refused with since/until (the history keeps the rest)', () => {
  assert.deepEqual([...LIVE_IDENTITY_PARAMS], ['label']);
  assert.deepEqual([...IDENTITY_FILTER_PARAMS], ['namespace', 'pod', 'workload', 'service', 'label']);
});
