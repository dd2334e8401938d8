import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InterfaceNames } from './interface-names.js';

test('resolves lo, caches misses, and expires entries', () => {
  const names = new InterfaceNames(1000);
  assert.equal(names.get(1), 'lo');
  const gone = 0x7ffffff0; // no interface has this index
  assert.equal(names.get(gone, 0), undefined);
  names.set(gone, 'cached-name');
  assert.equal(names.get(gone, Date.now()), 'cached-name', 'a known name is served from the cache');
  assert.equal(names.get(gone, Date.now() + 2000), undefined, 'after the TTL it is looked up again');
});
