/**
 * Time arguments for history queries, as the CLI flags and the API's query
 * parameters take them: `--since 1h --until 10m` means from an hour ago to
 * ten minutes ago. A value is either a duration back from now (30s, 10m, 1h,
 * 2d), "now", or an ISO 8601 time. Errors name the flag and the value, and
 * list the accepted forms.
 */
import { InvalidArgumentError } from '../errors.js';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export const TIME_ARG_FORMS = 'a duration back from now (30s, 10m, 1h, 2d), "now", or an ISO 8601 time (2026-11-26T14:00:00Z)';

/** An ISO 8601 date or date-time, as Date.parse reads it (no zone: local time). */
const ISO = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * The time `value` stands for. `flag` names where it came from in errors
 * ("--since", "since"); `now` is the reference for durations (ms since the epoch).
 */
export function parseTimeArg(value: string, flag: string, now: number = Date.now()): Date {
  const v = value.trim();
  if (v.toLowerCase() === 'now') return new Date(now);
  const rel = /^(\d{1,9})([smhd])$/.exec(v);
  if (rel) return new Date(now - Number(rel[1]) * UNIT_MS[rel[2]!]!);
  if (ISO.test(v)) {
    const t = Date.parse(v);
    if (Number.isFinite(t)) return new Date(t);
  }
  throw new InvalidArgumentError(`${flag}: ${JSON.stringify(value)} is not a duration or a time`, `give ${TIME_ARG_FORMS}`);
}

export interface TimeRange {
  since?: Date;
  until?: Date;
}

/**
 * Both ends of a range at once (either may be absent); refuses a range that
 * ends before it starts. Names are the flags' or parameters' names as the
 * user typed them.
 */
export function parseTimeRange(
  args: { since?: string | undefined; until?: string | undefined },
  names: { since: string; until: string } = { since: '--since', until: '--until' },
  now: number = Date.now(),
): TimeRange {
  const range: TimeRange = {};
  if (args.since !== undefined && args.since !== '') range.since = parseTimeArg(args.since, names.since, now);
  if (args.until !== undefined && args.until !== '') range.until = parseTimeArg(args.until, names.until, now);
  if (range.since && range.until && range.since.getTime() >= range.until.getTime()) {
    throw new InvalidArgumentError(
      `${names.since} ${args.since} (${range.since.toISOString()}) is not before ${names.until} ${args.until} (${range.until.toISOString()})`,
      `a duration counts back from now, so the start takes the larger one (e.g. ${names.since} 1h ${names.until} 10m)`,
    );
  }
  return range;
}
