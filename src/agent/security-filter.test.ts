import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FilterError, parseFilter, type FilterIdentity } from './flow-filter.js';
import { SECURITY_EVENT_TYPES, compileSecurityFilter, parseSecurityFilter, sourceMatcher } from './security-filter.js';

const ev = (type: string, severity: string, ip: string, target = '198.18.0.2') => ({ type, severity, attacker: { ip }, target: { ip: target } });

test('type, severity (at least) and source, combined with AND', () => {
  const m = (p: Record<string, string>, e = ev('tcp-port-scan', 'high', '198.18.1.5')) => compileSecurityFilter(parseSecurityFilter(p))(e);
  assert.ok(m({}));
  assert.ok(m({ type: 'tcp-port-scan' }));
  assert.ok(m({ type: 'udp-port-scan,tcp-port-scan' }), 'any of several types');
  assert.ok(m({ type: 'TCP-Port-Scan' }), 'types in any case');
  assert.ok(!m({ type: 'udp-port-scan' }));
  for (const [severity, matches] of [['info', true], ['low', true], ['medium', true], ['high', true], ['critical', false]] as const) {
    assert.equal(m({ severity }), matches, `high is at least ${severity}: ${matches}`);
  }
  assert.ok(!m({ severity: 'high' }, ev('tcp-null-scan', 'medium', '198.18.1.5')));
  assert.ok(m({ source: '198.18.1.5' }));
  assert.ok(!m({ source: '198.18.1.6' }));
  assert.ok(m({ source: '198.18.0.0/15' }));
  assert.ok(!m({ source: '10.0.0.0/8' }));
  assert.ok(m({ source: 'fd00::/8' }, ev('land', 'high', 'fd00:1::5')));
  assert.ok(!m({ source: '198.18.0.0/15' }, ev('land', 'high', 'fd00:1::5')), 'an IPv6 attacker is not in an IPv4 block');
  assert.ok(m({ type: 'tcp-port-scan', severity: 'medium', source: '198.18.1.0/24' }));
  assert.ok(!m({ type: 'tcp-port-scan', severity: 'critical', source: '198.18.1.0/24' }));
});

test('every type is known, blocked included', () => {
  assert.ok(SECURITY_EVENT_TYPES.includes('blocked'));
  assert.ok(SECURITY_EVENT_TYPES.includes('martian-source'));
  for (const t of SECURITY_EVENT_TYPES) assert.deepEqual(parseSecurityFilter({ type: t }), { types: [t] });
});

test('a bad value names its parameter', () => {
  const bad: [Record<string, string>, string, RegExp][] = [
    [{ type: 'port-knock' }, 'type', /^type: not a security event type: "port-knock" \(types: tcp-null-scan, /],
    [{ type: 'tcp-port-scan,nope' }, 'type', /^type: not a security event type: "nope"/],
    [{ type: ',' }, 'type', /^type: not a security event type: ","/],
    [{ severity: 'urgent' }, 'severity', /^severity: must be info, low, medium, high, critical; got "urgent"/],
    [{ source: '999.1.1.1' }, 'source', /^source: not an IP address or CIDR block: "999\.1\.1\.1"/],
    [{ source: '10.0.0.0/33' }, 'source', /^source: not an IP address or CIDR block/],
    [{ source: 'fd00::/129' }, 'source', /^source: /],
    [{ colour: 'red' }, 'colour', /^colour: unknown filter \(type, severity, source, namespace, pod, workload, service, label\)/],
    [{ port: '22' }, 'port', /^port: unknown filter \(type, /],
    [{ namespace: 'Shop' }, 'namespace', /^namespace: not a namespace name: "Shop"/],
    [{ pod: 'a/b/c' }, 'pod', /^pod: not a pod name or namespace\/name/],
    [{ workload: 'Deploy-ment/web' }, 'workload', /^workload: not a workload name or kind\/name \(e\.g\. Deployment\/web\)/],
    [{ service: 'shop/API' }, 'service', /^service: not a service name or namespace\/name/],
    [{ label: 'app' }, 'label', /^label: not key=value/],
  ];
  for (const [p, param, re] of bad) {
    assert.throws(() => parseSecurityFilter(p), (e: unknown) => e instanceof FilterError && e.param === param && re.test(e.message), JSON.stringify(p));
  }
});

test('sourceMatcher: everything without a source', () => {
  assert.ok(sourceMatcher(undefined)('203.0.113.9'));
  assert.ok(sourceMatcher('203.0.113.0/24')('203.0.113.9'));
  assert.ok(!sourceMatcher('203.0.113.0/24')('203.0.114.9'));
});

/** The pods of the fixtures' addresses, as the agent's identity() gives them. */
const PODS: Record<string, FilterIdentity> = {
  '198.18.1.5': { namespace: 'default', pod: 'client-5c6d-aaaaa', labels: { app: 'client' }, workload: { kind: 'Deployment', name: 'client' } },
  '198.18.0.2': { namespace: 'shop', pod: 'api-7d9f-bbbbb', labels: { app: 'api' }, workload: { kind: 'Deployment', name: 'api' }, service: 'api' },
  '198.18.0.3': { namespace: 'shop', pod: 'db-0', labels: { app: 'db' }, workload: { kind: 'StatefulSet', name: 'db' }, service: 'db' },
};
const who = (ip: string): FilterIdentity | undefined => PODS[ip];

test('namespace, pod, workload, service and label: the attacker or the target is such a pod', () => {
  const inside = ev('tcp-port-scan', 'high', '198.18.1.5', '198.18.0.2'); // default/client -> shop/api
  const fromOutside = ev('tcp-null-scan', 'medium', '203.0.113.9', '198.18.0.3'); // unknown -> shop/db
  const unknown = ev('land', 'high', '203.0.113.9', '203.0.113.10');
  const keep = (p: Record<string, string>): string[] =>
    [inside, fromOutside, unknown].filter(compileSecurityFilter(parseSecurityFilter(p), who)).map((e) => `${e.attacker.ip}>${e.target.ip}`);
  const ALL = ['198.18.1.5>198.18.0.2', '203.0.113.9>198.18.0.3', '203.0.113.9>203.0.113.10'];
  assert.deepEqual(keep({}), ALL);
  assert.deepEqual(keep({ namespace: 'shop' }), ALL.slice(0, 2), 'the target in shop');
  assert.deepEqual(keep({ namespace: 'default' }), ALL.slice(0, 1), 'the attacker in default');
  assert.deepEqual(keep({ namespace: 'data' }), []);
  assert.deepEqual(keep({ pod: 'db-0' }), ALL.slice(1, 2));
  assert.deepEqual(keep({ pod: 'shop/db-0' }), ALL.slice(1, 2));
  assert.deepEqual(keep({ pod: 'default/db-0' }), []);
  assert.deepEqual(keep({ workload: 'Deployment/api' }), ALL.slice(0, 1));
  assert.deepEqual(keep({ workload: 'deployment/client' }), ALL.slice(0, 1), 'the kind in any case');
  assert.deepEqual(keep({ workload: 'db' }), ALL.slice(1, 2), 'a name alone: any kind');
  assert.deepEqual(keep({ workload: 'Deployment/db' }), [], 'the kind must match');
  assert.deepEqual(keep({ service: 'api' }), ALL.slice(0, 1));
  assert.deepEqual(keep({ service: 'shop/db' }), ALL.slice(1, 2));
  assert.deepEqual(keep({ service: 'default/db' }), []);
  assert.deepEqual(keep({ label: 'app=client' }), ALL.slice(0, 1));
  assert.deepEqual(keep({ label: 'app=web' }), []);
  // Combined with AND, each by either end; and with the other filters.
  assert.deepEqual(keep({ namespace: 'default', workload: 'Deployment/api' }), ALL.slice(0, 1), 'attacker in default, target of Deployment/api');
  assert.deepEqual(keep({ namespace: 'shop', type: 'tcp-null-scan' }), ALL.slice(1, 2));
  assert.deepEqual(keep({ service: 'db', source: '198.18.0.0/15' }), [], 'the source is the attacker alone');
  assert.deepEqual(keep({ service: 'db', severity: 'high' }), []);
  // Without a resolver nothing is known: an identity filter keeps nothing.
  assert.equal(compileSecurityFilter(parseSecurityFilter({ namespace: 'shop' }))(inside), false);
});

test('the identity filters parse as the flow filters do', () => {
  const p = { namespace: 'shop', pod: 'shop/api-0', workload: 'StatefulSet/db', service: 'api', label: 'app.kubernetes.io/name=web' };
  assert.deepEqual(parseSecurityFilter({ ...p, type: 'land' }), { ...parseFilter(p), types: ['land'] });
});
