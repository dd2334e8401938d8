/**
 * Captures libbpf's log (including the verifier log it prints when a load
 * fails) so it can be put into the error a user sees, instead of going to
 * stderr. One callback is registered for the life of the process, as koffi
 * requires for a callback that libbpf keeps.
 */
import { koffi, libbpf, libc, LibbpfPrintFn } from '../ffi/native.js';

const LEVEL_WARN = 0;
const LEVEL_INFO = 1;

let capture: string[] | null = null;
let registered = false;
// libbpf prints a failed program's whole verifier log in one call, up to its
// 16 MiB log buffer; the end of it (the error) is what matters most. Pages
// of an unsafe allocation are only touched as far as a message reaches.
const SCRATCH_BYTES = 16 << 20;
let scratch: Buffer | undefined;

function onPrint(level: number, fmt: string, args: unknown): number {
  if (capture === null) {
    // Outside a capture only warnings matter, and those surface via errors.
    if (level === LEVEL_WARN && process.env['KUBENETPROBE_DEBUG']) process.stderr.write(format(fmt, args));
    return 0;
  }
  if (level <= LEVEL_INFO || process.env['KUBENETPROBE_DEBUG']) capture.push(format(fmt, args));
  return 0;
}

function format(fmt: string, args: unknown): string {
  scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES);
  const n = libc.vsnprintf(scratch, scratch.length, fmt, args) as number;
  if (n < 0) return fmt;
  return scratch.toString('utf8', 0, Math.min(n, scratch.length - 1));
}

function ensureRegistered(): void {
  if (registered) return;
  const cb = koffi.register(onPrint, koffi.pointer(LibbpfPrintFn));
  libbpf.libbpf_set_print(cb);
  registered = true;
}

/** Runs fn while collecting libbpf's log; returns its result and the log. */
export function withLibbpfLog<T>(fn: () => T): { result: T; log: string } {
  ensureRegistered();
  const prev = capture;
  const lines: string[] = [];
  capture = lines;
  try {
    const result = fn();
    return { result, log: lines.join('') };
  } catch (err) {
    (err as { libbpfLog?: string }).libbpfLog = lines.join('');
    throw err;
  } finally {
    capture = prev;
  }
}

/**
 * The program whose load the kernel refused, and the verifier's verdict (its
 * load log's last line before the statistics), from libbpf's log of a failed
 * object load; undefined where the log names no program.
 */
export function refusedProgram(log: string): { program: string; verdict: string | undefined } | undefined {
  const m = /prog '([^']+)': (?:BPF program load failed|failed to load)/.exec(log);
  if (!m) return undefined;
  const program = m[1]!;
  const lines = log.split('\n');
  // libbpf prints "prog 'NAME': -- BEGIN PROG LOAD LOG --", the log, then "-- END PROG LOAD LOG --".
  const begin = lines.findIndex((l) => l.includes(`prog '${program}': -- BEGIN PROG LOAD LOG --`));
  let at = begin < 0 ? -1 : lines.findIndex((l, i) => i > begin && l.includes('-- END PROG LOAD LOG --')) - 1;
  while (at > begin && /^\s*$|^processed \d+ insns|^verification time/.test(lines[at]!)) at--;
  return { program, verdict: begin >= 0 && at > begin ? lines[at]!.trim() : undefined };
}
