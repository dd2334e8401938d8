import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../errors.js';
import { parseTimeArg, parseTimeRange } from './time-range.js';

const NOW = Date.parse('2026-11-26T14:00:00Z');

test('durations count back from now', () => {
  assert.equal(parseTimeArg('30s', '--since', NOW).toISOString(), '2026-11-26T13:59:30.000Z');
  assert.equal(parseTimeArg('10m', '--since', NOW).toISOString(), '2026-11-26T13:50:00.000Z');
  assert.equal(parseTimeArg('1h', '--since', NOW).toISOString(), '2026-11-26T13:00:00.000Z');
  assert.equal(parseTimeArg('2d', '--since', NOW).toISOString(), '2026-11-24T14:00:00.000Z');
  assert.equal(parseTimeArg('0s', '--until', NOW).getTime(), NOW);
  assert.equal(parseTimeArg('now', '--until', NOW).getTime(), NOW);
  assert.equal(parseTimeArg(' 1h ', '--since', NOW).getTime(), NOW - 3_600_000);
});

test('ISO times are absolute', () => {
  assert.equal(parseTimeArg('2026-11-26T12:34:56Z', '--since', NOW).toISOString(), '2026-11-26T12:34:56.000Z');
  assert.equal(parseTimeArg('2026-11-26T12:34:56.789+02:00', '--since', NOW).toISOString(), '2026-11-26T10:34:56.789Z');
  assert.equal(parseTimeArg('2026-11-26', '--since', NOW).toISOString(), '2026-11-26T00:00:00.000Z');
});

test('bad values name the flag, the value and the accepted forms', () => {
  for (const bad of ['', '1x', '-1h', '1.5h', 'h', '1 h', 'yesterday', '2026-13-45T00:00:00Z', '1700000000']) {
    assert.throws(
      () => parseTimeArg(bad, '--since', NOW),
      (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError);
        assert.match(e.message, /^--since: ".*" is not a duration or a time/);
        assert.ok(e.message.includes(JSON.stringify(bad)), e.message);
        assert.match(e.message, /30s, 10m, 1h, 2d/);
        assert.match(e.message, /ISO 8601/);
        return true;
      },
      bad,
    );
  }
});

test('a range must start before it ends; either end may be missing', () => {
  const r = parseTimeRange({ since: '1h', until: '10m' }, undefined, NOW);
  assert.equal(r.since!.getTime(), NOW - 3_600_000);
  assert.equal(r.until!.getTime(), NOW - 600_000);
  assert.deepEqual(parseTimeRange({}, undefined, NOW), {});
  assert.deepEqual(Object.keys(parseTimeRange({ since: '5m' }, undefined, NOW)), ['since']);
  assert.throws(() => parseTimeRange({ since: '10m', until: '1h' }, undefined, NOW), /--since 10m .* is not before --until 1h/);
  assert.throws(() => parseTimeRange({ since: 'x' }, { since: 'since', until: 'until' }, NOW), /: since: "x" is not a duration or a time/);
});
