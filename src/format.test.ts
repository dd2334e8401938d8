import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes } from './format.js';

test('bytes in binary units', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(2 * 1024 ** 3), '2.0 GiB');
});
