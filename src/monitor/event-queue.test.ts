import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventQueue } from './event-queue.js';

test('delivers in order and ends', async () => {
  let ended = 0;
  const q = new EventQueue<number>(10, () => ended++);
  q.push(1);
  q.push(2);
  const got: number[] = [];
  setTimeout(() => {
    q.push(3);
    q.end();
  }, 5);
  for await (const n of q) got.push(n);
  assert.deepEqual(got, [1, 2, 3]);
  assert.equal(ended, 1);
});

test('counts what it drops when full', () => {
  const q = new EventQueue<number>(3, () => {});
  for (let i = 0; i < 10; i++) q.push(i);
  assert.equal(q.dropped, 7);
});

test('break in for-await ends the queue once', async () => {
  let ended = 0;
  const q = new EventQueue<number>(10, () => ended++);
  q.push(1);
  q.push(2);
  for await (const n of q) {
    assert.equal(n, 1);
    break;
  }
  q.end();
  assert.equal(ended, 1);
  assert.equal(q.push(5), false);
});
