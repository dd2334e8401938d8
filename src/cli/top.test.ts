import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderTalkers, renderTop, talkerLine, topRows } from './top.js';
import type { Conversation } from '../agent/conversations.js';

function conv(id: string, bytes: number, packets: number): Conversation {
  return {
    id,
    protocol: 'TCP',
    a: { ip: '198.18.0.1', port: 40000 + id.length },
    b: { ip: '198.18.0.2', port: 80 },
    aToB: { packets, bytes, observedAt: 'x ingress' },
    bToA: { packets: 0, bytes: 0, observedAt: undefined },
    state: 'open',
    synCount: 1,
    finCount: 0,
    rstCount: 0,
    firstSeen: new Date(0),
    lastSeen: new Date(0),
    interfaces: ['x'],
  };
}

test('sorts by bytes, packets or rate, and rates come from the change between reads', () => {
  const before = [conv('a', 1000, 10), conv('bb', 5000, 5)];
  const now = [conv('a', 9000, 20), conv('bb', 6000, 50), conv('ccc', 100, 1)];
  assert.deepEqual(topRows(before, now, 2, 'bytes', 10).map((r) => r.id), ['a', 'bb', 'ccc']);
  assert.deepEqual(topRows(before, now, 2, 'packets', 10).map((r) => r.id), ['bb', 'a', 'ccc']);
  const byRate = topRows(before, now, 2, 'rate', 2);
  assert.deepEqual(byRate.map((r) => [r.id, r.bytesPerSec]), [['a', 4000], ['bb', 500]]);
  const frame = renderTop(byRate, 'rate', new Date(0));
  assert.match(frame, /^kubenetprobe top — 1970-01-01T00:00:00\.000Z — 2 conversations, by rate\nFROM +TO +PROTO +BYTES +PACKETS +RATE +STATE\n198\.18\.0\.1:40001 +198\.18\.0\.2:80 +TCP +8\.8 KiB +20 +3\.9 KiB\/s +open/);
});

test('live top names the ends it knows as namespace/pod:port, the others by address', () => {
  const c = { ...conv('a', 1000, 10), aIdentity: { namespace: 'shop', pod: 'web-1' }, bIdentity: null };
  const rows = topRows([], [c], 1, 'bytes', 10);
  assert.equal(rows[0]!.from, 'shop/web-1:40001');
  assert.equal(rows[0]!.to, '198.18.0.2:80');
  assert.match(renderTop(rows, 'bytes', new Date(0)), /\nshop\/web-1:40001 +198\.18\.0\.2:80 +TCP/);
});

test('top --since: talkers from history with pod names where known, once', () => {
  const talkers = [
    { srcIp: '198.18.0.1', srcNamespace: 'default', srcPod: 'client', srcWorkload: { kind: 'Deployment', name: 'client' }, srcService: null, dstIp: '198.18.0.2', dstNamespace: null, dstPod: null, dstWorkload: null, dstService: null, bytes: 68_400, packets: 300, records: 3 },
    { srcIp: 'fd00::1', srcNamespace: null, srcPod: null, srcWorkload: null, srcService: null, dstIp: 'fd00::2', dstNamespace: 'data', dstPod: 'db-0', dstWorkload: { kind: 'StatefulSet', name: 'db' }, dstService: 'db', bytes: 100, packets: 1, records: 1 },
  ];
  const text = renderTalkers(talkers, { by: 'bytes', group: 'pair', since: '1h', until: undefined, at: new Date('2026-11-26T14:00:00Z') }).split('\n');
  assert.equal(text[0], 'kubenetprobe top — from history, 1h to now (at 2026-11-26T14:00:00.000Z) — 2 talkers (source -> destination), by bytes');
  assert.match(text[1]!, /^SOURCE +DESTINATION +BYTES +PACKETS +RECORDS$/);
  assert.match(text[2]!, /^default\/client \(198\.18\.0\.1\) +198\.18\.0\.2 +66\.8 KiB +300 +3$/);
  assert.match(text[3]!, /^fd00::1 +data\/db-0 \(fd00::2, svc db\) +100 B +1 +1$/);
  // json: the workload as Kind/name, as in the flow lines.
  assert.deepEqual(talkerLine(talkers[0]!), { ...talkers[0], srcWorkload: 'Deployment/client' });
  assert.deepEqual(talkerLine(talkers[1]!), { ...talkers[1], dstWorkload: 'StatefulSet/db' });
  assert.deepEqual(talkerLine({ dstIp: '198.18.0.2', bytes: 1, packets: 1, records: 1 }), { dstIp: '198.18.0.2', dstNamespace: null, dstPod: null, dstWorkload: null, dstService: null, bytes: 1, packets: 1, records: 1 });
  const bySource = renderTalkers([{ srcIp: '198.18.0.1', bytes: 1, packets: 1, records: 1 }], { by: 'packets', group: 'source', since: '1h', until: '10m', at: new Date(0) });
  assert.match(bySource, /1h to 10m .* 1 talkers \(source\), by packets\nSOURCE +BYTES +PACKETS +RECORDS\n198\.18\.0\.1 +1 B/);
  assert.match(renderTalkers([], { by: 'bytes', group: 'pair', since: '5m', until: undefined, at: new Date(0) }), /\nno flow records in this range$/);
});
