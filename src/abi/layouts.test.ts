/**
 * The TypeScript decoders read the kernel's structs at fixed offsets. This
 * checks every offset and size they use against the BTF that clang wrote
 * into the built object, in both directions: a field the C struct has and
 * the layout lacks fails too (explicit padding included).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ObjectSpec } from '../loader/object.js';
import { builtinObjectPath } from '../paths.js';
import { ALL_LAYOUTS, COUNTER, COUNTER_SLOTS, DESCRIPTION_LEN, HOOKS, IFACE_FLAG, IFACE_FLAG_SLOTS, OUTCOMES, SECURITY_TYPES, TCP_OPENED } from './layouts.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';

test('every layout matches the struct in the object BTF', () => {
  const spec = ObjectSpec.open(builtinObjectPath());
  try {
    for (const l of ALL_LAYOUTS) {
      const btf = spec.structLayout(l.struct);
      assert.ok(btf, `struct ${l.struct} missing from BTF`);
      assert.equal(l.size, btf.size, `sizeof(struct ${l.struct})`);
      assert.deepEqual(l.offsets, btf.offsets, `offsets of struct ${l.struct}`);
    }
  } finally {
    spec.close();
  }
});

/** Enum values from the shared header, parsed from its text. */
function headerEnum(name: string): Map<string, number> {
  const h = readFileSync(join(packageRoot(), 'bpf', 'kubenetprobe.h'), 'utf8');
  const body = new RegExp(`enum ${name} \\{([^}]*)\\}`).exec(h)?.[1];
  assert.ok(body, `enum ${name} in kubenetprobe.h`);
  const out = new Map<string, number>();
  for (const m of body.matchAll(/(KNP_\w+)\s*=\s*(\d+)/g)) out.set(m[1]!, Number(m[2]));
  return out;
}

test('enums used by the decoders match the header', () => {
  const hooks = headerEnum('knp_hook');
  assert.equal(hooks.get('KNP_HOOK_TC_INGRESS'), HOOKS.indexOf('tc-ingress'));
  assert.equal(hooks.get('KNP_HOOK_TC_EGRESS'), HOOKS.indexOf('tc-egress'));
  assert.equal(hooks.get('KNP_HOOK_XDP'), HOOKS.indexOf('xdp'));

  const outcomes = headerEnum('knp_outcome');
  assert.equal(outcomes.get('KNP_OUTCOME_PARSED'), OUTCOMES.indexOf('parsed'));
  assert.equal(outcomes.get('KNP_OUTCOME_NON_IP'), OUTCOMES.indexOf('nonIp'));
  assert.equal(outcomes.get('KNP_OUTCOME_TRUNCATED'), OUTCOMES.indexOf('truncated'));
  assert.equal(outcomes.get('KNP_OUTCOME_MALFORMED'), OUTCOMES.indexOf('malformed'));
  assert.equal(outcomes.get('KNP_OUTCOME_MAX'), OUTCOMES.length);

  const counters = headerEnum('knp_counter');
  assert.equal(counters.get('KNP_CNT_FLOW_INSERTED'), COUNTER.flowInserted);
  assert.equal(counters.get('KNP_CNT_FLOW_INSERT_FAILED'), COUNTER.flowInsertFailed);
  assert.equal(counters.get('KNP_CNT_PKT_EVENTS_SENT'), COUNTER.packetEventsSent);
  assert.equal(counters.get('KNP_CNT_PKT_EVENTS_DROPPED'), COUNTER.packetEventsDropped);
  assert.equal(counters.get('KNP_CNT_SEC_EVENTS_SENT'), COUNTER.securityEventsSent);
  assert.equal(counters.get('KNP_CNT_SEC_EVENTS_DROPPED'), COUNTER.securityEventsDropped);
  assert.equal(counters.get('KNP_CNT_IFACE_TABLE_FULL'), COUNTER.ifaceTableFull);
  assert.equal(counters.get('KNP_CNT_HEADERS_PULLED'), COUNTER.headersPulled);
  assert.equal(counters.get('KNP_CNT_SEC_EVENTS_SUPPRESSED'), COUNTER.securityEventsSuppressed);
  assert.equal(counters.get('KNP_CNT_BLOCKED_PACKETS'), COUNTER.blockedPackets);
  assert.equal(counters.get('KNP_CNT_DETECT_STATE_FAILED'), COUNTER.detectStateFailed);
  assert.equal(counters.get('KNP_CNT_BLOCK_INSERT_FAILED'), COUNTER.blockInsertFailed);
  assert.equal(counters.get('KNP_CNT_MAX'), COUNTER_SLOTS);

  // Every type the header has, by the name the decoder gives it.
  const types = headerEnum('knp_security_type');
  const expected: Record<string, string> = {
    KNP_SEC_TCP_NULL: 'tcp-null-scan',
    KNP_SEC_TCP_XMAS: 'tcp-xmas-scan',
    KNP_SEC_TCP_SYN_FIN: 'tcp-syn-fin',
    KNP_SEC_TCP_SYN_RST: 'tcp-syn-rst',
    KNP_SEC_TCP_FIN_NO_ACK: 'tcp-fin-scan',
    KNP_SEC_SYN_FLOOD: 'syn-flood',
    KNP_SEC_TCP_PORT_SCAN: 'tcp-port-scan',
    KNP_SEC_UDP_PORT_SCAN: 'udp-port-scan',
    KNP_SEC_ICMP_FLOOD: 'icmp-flood',
    KNP_SEC_PING_SWEEP: 'ping-sweep',
    KNP_SEC_LAND: 'land',
    KNP_SEC_MARTIAN: 'martian-source',
    KNP_SEC_BLOCKED: 'blocked',
  };
  for (const [name, n] of types) {
    if (name === 'KNP_SEC_TYPE_MAX') {
      assert.equal(n, Object.keys(SECURITY_TYPES).length + 1);
      continue;
    }
    assert.equal((SECURITY_TYPES as Record<number, string>)[n], expected[name], name);
  }
  assert.equal(types.size, Object.keys(expected).length + 1);

  const h = readFileSync(join(packageRoot(), 'bpf', 'kubenetprobe.h'), 'utf8');
  assert.match(h, new RegExp(`#define KNP_DESCRIPTION_LEN ${DESCRIPTION_LEN}\\b`));
  assert.match(h, new RegExp(`#define KNP_IFACE_FLAG_SLOTS ${IFACE_FLAG_SLOTS}\\b`));
  const opened = /#define KNP_TCP_OPENED \(1u << (\d+)\)/.exec(h);
  assert.ok(opened, 'KNP_TCP_OPENED in kubenetprobe.h');
  assert.equal(1 << Number(opened[1]), TCP_OPENED);
  for (const [name, value] of [['KNP_IFACE_TC_INGRESS', IFACE_FLAG.tcIngress], ['KNP_IFACE_MARTIANS', IFACE_FLAG.martians]] as const) {
    const m = new RegExp(`#define ${name}\\s+\\(1u << (\\d+)\\)`).exec(h);
    assert.ok(m, `${name} in kubenetprobe.h`);
    assert.equal(1 << Number(m[1]), value, name);
  }
});
