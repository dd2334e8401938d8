import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_DETECTOR_CONFIG } from '../monitor/detectors.js';
import { FilterError } from './flow-filter.js';
import { parseDetectorChange } from './detector-change.js';

test('a good change passes as it is', () => {
  assert.deepEqual(parseDetectorChange({ portScanPorts: 30, mode: 'enforce', enforce: ['tcp-port-scan'] }, DEFAULT_DETECTOR_CONFIG), {
    portScanPorts: 30,
    mode: 'enforce',
    enforce: ['tcp-port-scan'],
  });
  assert.deepEqual(parseDetectorChange({}, DEFAULT_DETECTOR_CONFIG), {});
});

test('a bad change names the field', () => {
  const bad: [unknown, string, RegExp][] = [
    [[1, 2], 'body', /^body: must be a JSON object of detector settings/],
    ['portScanPorts=30', 'body', /^body: /],
    [null, 'body', /^body: /],
    [{ portScanPorts: 0 }, 'portScanPorts', /^portScanPorts: must be an integer from 1 to 512, got 0$/],
    [{ portScanPorts: '30' }, 'portScanPorts', /^portScanPorts: must be an integer from 1 to 512, got "30"$/],
    [{ windowMs: 1, synFloodHalfOpenPercent: 150 }, 'synFloodHalfOpenPercent', /^synFloodHalfOpenPercent: must be an integer from 0 to 100, got 150$/],
    [{ mode: 'block' }, 'mode', /^mode: must be audit or enforce, got "block"$/],
    [{ enforce: ['port-knock'] }, 'enforce', /^enforce: unknown detector "port-knock" \(detectors are: tcp-null-scan, /],
    [{ enabled: 'land' }, 'enabled', /^enabled: must be a list of detector names$/],
    [{ portScanPort: 30 }, 'portScanPort', /^portScanPort: not a detector setting \(settings: enabled, mode, enforce, blockTtlMs, /],
  ];
  for (const [body, param, re] of bad) {
    assert.throws(() => parseDetectorChange(body, DEFAULT_DETECTOR_CONFIG), (e: unknown) => e instanceof FilterError && e.param === param && re.test(e.message), JSON.stringify(body));
  }
});
