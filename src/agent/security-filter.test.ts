import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FilterError } from './flow-filter.js';
import { SECURITY_EVENT_TYPES, compileSecurityFilter, parseSecurityFilter, sourceMatcher } from './security-filter.js';

const ev = (type: string, severity: string, ip: string) => ({ type, severity, attacker: { ip } });

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
    [{ colour: 'red' }, 'colour', /^colour: unknown filter \(type, severity, source\)/],
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
