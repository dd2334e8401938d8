/**
 * A change to the detectors' settings as a client sends it (PATCH
 * /api/v1/detectors): checked field by field so a bad one is named alone.
 */
import { DEFAULT_DETECTOR_CONFIG, mergeDetectorConfig, type DetectorConfig } from '../monitor/detectors.js';
import { FilterError } from './flow-filter.js';

export const DETECTOR_SETTINGS = Object.keys(DEFAULT_DETECTOR_CONFIG) as (keyof DetectorConfig)[];

/** `body` as a partial DetectorConfig, or a FilterError naming the first bad field. */
export function parseDetectorChange(body: unknown, current: Readonly<DetectorConfig>): Partial<DetectorConfig> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new FilterError('body', `must be a JSON object of detector settings, e.g. {"portScanPorts": 30}`);
  }
  const change: Partial<DetectorConfig> = {};
  for (const [field, value] of Object.entries(body)) {
    if (!(DETECTOR_SETTINGS as string[]).includes(field)) {
      throw new FilterError(field, `not a detector setting (settings: ${DETECTOR_SETTINGS.join(', ')})`);
    }
    try {
      mergeDetectorConfig(current, { [field]: value });
    } catch (err) {
      const [first, ...rest] = (err as Error).message.split('\n');
      const hint = rest.join(' ').replace(/^\s*hint:\s*/, '');
      throw new FilterError(field, `${first!.replace(/^detectors\.\w+:?\s*/, '')}${hint ? ` (${hint})` : ''}`);
    }
    Object.assign(change, { [field]: value });
  }
  return change;
}
