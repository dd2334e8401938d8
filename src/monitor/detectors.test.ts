import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ObjectSpec } from '../loader/object.js';
import { builtinObjectPath } from '../paths.js';
import { DETECT_CONFIG } from '../abi/layouts.js';
import { DEFAULT_DETECTOR_CONFIG, DETECTORS, encodeDetectorConfig, mergeDetectorConfig } from './detectors.js';

test('the defaults here are the defaults compiled into the object (knp_detect_cfg in .data)', () => {
  const spec = ObjectSpec.open(builtinObjectPath());
  try {
    const inObject = spec.variableBytes('.data', 'knp_detect_cfg');
    assert.equal(inObject.length, DETECT_CONFIG.size);
    assert.deepEqual(encodeDetectorConfig(DEFAULT_DETECTOR_CONFIG, false).toString('hex'), inObject.toString('hex'));
  } finally {
    spec.close();
  }
});

test('encoding: enforce mask only in enforce mode, milliseconds as nanoseconds', () => {
  const o = DETECT_CONFIG.offsets;
  const audit = encodeDetectorConfig(mergeDetectorConfig(DEFAULT_DETECTOR_CONFIG, { enforce: ['tcp-port-scan'] }), false);
  assert.equal(audit.readUInt32LE(o.enforce), 0, 'audit mode blocks nothing');
  const enforce = encodeDetectorConfig(mergeDetectorConfig(DEFAULT_DETECTOR_CONFIG, { mode: 'enforce', enforce: ['tcp-port-scan'], windowMs: 250 }), true);
  assert.equal(enforce.readUInt32LE(o.enforce), 1 << 7);
  assert.equal(enforce.readUInt32LE(o.check_blocks), 1);
  assert.equal(enforce.readBigUInt64LE(o.window_ns), 250_000_000n);
  const none = encodeDetectorConfig(mergeDetectorConfig(DEFAULT_DETECTOR_CONFIG, { enabled: [] }), false);
  assert.equal(none.readUInt32LE(o.enabled), 0);
  const all = encodeDetectorConfig(DEFAULT_DETECTOR_CONFIG, false).readUInt32LE(o.enabled);
  assert.equal(all.toString(2).replace(/0/g, '').length, DETECTORS.length, 'one bit per detector');
});

test('bad settings are refused, naming the field and what is allowed', () => {
  assert.throws(() => mergeDetectorConfig(DEFAULT_DETECTOR_CONFIG, { portScanPorts: 0 }), /detectors\.portScanPorts must be an integer from 1 to 512, got 0/);
  assert.throws(() => mergeDetectorConfig(DEFAULT_DETECTOR_CONFIG, { synFloodHalfOpenPercent: 101 }), /synFloodHalfOpenPercent/);
  assert.throws(() => mergeDetectorConfig(DEFAULT_DETECTOR_CONFIG, { mode: 'block' as 'enforce' }), /detectors\.mode must be audit or enforce, got "block"/);
  assert.throws(() => mergeDetectorConfig(DEFAULT_DETECTOR_CONFIG, { enabled: ['port-scan' as 'tcp-port-scan'] }), (e: Error & { hint?: string }) => {
    assert.match(e.message, /detectors\.enabled: unknown detector "port-scan"/);
    assert.match(e.hint ?? '', /tcp-port-scan/);
    return true;
  });
  assert.throws(() => mergeDetectorConfig(DEFAULT_DETECTOR_CONFIG, { threshold: 3 } as never), /detectors\.threshold is not a detector setting/);
  const kept = mergeDetectorConfig(DEFAULT_DETECTOR_CONFIG, { windowMs: 500 });
  assert.equal(kept.windowMs, 500);
  assert.equal(kept.portScanPorts, DEFAULT_DETECTOR_CONFIG.portScanPorts, 'what a change leaves out stays');
});
