import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderTop, topRows } from './top.js';
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
