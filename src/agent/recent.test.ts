import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Recent } from './recent.js';

test('keeps the newest up to its limit, oldest first, and counts what fell out', () => {
  const r = new Recent<number>(3);
  for (let i = 1; i <= 5; i++) r.push(i);
  assert.deepEqual(r.toArray(), [3, 4, 5]);
  assert.equal(r.dropped, 2);
  assert.equal(r.size, 3);
  const none = new Recent<number>(0);
  none.push(1);
  assert.deepEqual(none.toArray(), []);
  assert.equal(none.dropped, 1);
});
