/**
 * The JSON lines sink: one JSON object per line, to stdout or to a file
 * that rotates by size (path.1 newest .. path.N oldest) and reopens on
 * request (SIGHUP, for logrotate). What Fluent Bit's and Vector's file and
 * stdin sources read.
 *
 * Writes never block the event loop: lines wait in a bounded queue and one
 * chunk at a time goes to a write stream (libuv's thread pool does the
 * write), so a slow disk or a reader that stopped reading only makes the
 * queue grow. Past `maxBacklogBytes` new lines are dropped and counted, and
 * the loss is reported; it is never silent. Rotation is decided as lines
 * leave the queue, against the file's real size, so no file grows past
 * `maxBytes` (unless one line alone is longer).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { KubeNetProbeError } from '../errors.js';

export interface JsonLinesOptions {
  /** 'stdout', or the path of a file (created if missing, appended to if not). */
  target: string;
  /** A file rotates before it would grow past this many bytes. Default 100 MiB. */
  maxBytes?: number;
  /** Rotated files kept: path.1 (newest) to path.N; older ones are deleted. 0 keeps none. Default 5. */
  keepFiles?: number;
  /** Bytes of lines accepted but not yet written past which new lines are dropped (and counted). Default 16 MiB. */
  maxBacklogBytes?: number;
  /** How long close() waits for the queue to drain before it drops (and counts) the rest. Default 5000 ms. */
  closeTimeoutMs?: number;
  /** Where write errors and losses are reported (never thrown); rate-limited. */
  onError?: (err: Error) => void;
  /** The config field the target came from, for error messages. Default 'exportJsonLines'. */
  field?: string;
}

export interface JsonLinesStats {
  target: string;
  /** Lines handed to the operating system, and their bytes. */
  linesWritten: number;
  bytesWritten: number;
  /** Lines lost: the backlog was full, a write or open failed, or they came after close(). */
  linesDropped: number;
  /** Lines accepted and not yet written. */
  backlogLines: number;
  backlogBytes: number;
  rotations: number;
  reopens: number;
  /** Failed opens, writes and renames. */
  errors: number;
}

const MiB = 1 << 20;
/** A failing target (full disk, closed pipe) is tried again at most this often; lines that come meanwhile are dropped. */
const RETRY_MS = 1000;
/** The same kind of loss is reported at most this often (the counters have every line). */
const REPORT_EVERY_MS = 10_000;

export class JsonLinesSink {
  readonly target: string;
  private readonly file: string | undefined;
  private readonly maxBytes: number;
  private readonly keepFiles: number;
  private readonly maxBacklogBytes: number;
  private readonly closeTimeoutMs: number;
  private readonly field: string;
  private readonly onError: (err: Error) => void;

  /** Lines waiting, with their byte lengths (same index). */
  private lines: string[] = [];
  private lens: number[] = [];
  /** Bytes accepted and not yet settled: the queue plus the chunk being written. */
  private pendingBytes = 0;
  private pendingLines = 0;
  private stream: WriteStream | undefined;
  /** Bytes in the current file (its size at open, plus what was written since). */
  private size = 0;
  private retryAt = 0;
  /** After a failed rotation the file may grow past maxBytes until then, rather than rotation being retried on every line. */
  private rotateRetryAt = 0;
  private reopenWanted = false;
  private pumping: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  /** close() timed out: nothing in flight is counted any more. */
  private abandoned = false;
  private readonly lastReport = new Map<string, number>();

  private readonly counts = { linesWritten: 0, bytesWritten: 0, linesDropped: 0, rotations: 0, reopens: 0, errors: 0 };

  private constructor(options: JsonLinesOptions) {
    this.target = options.target;
    this.file = options.target === 'stdout' ? undefined : options.target;
    this.maxBytes = options.maxBytes ?? 100 * MiB;
    this.keepFiles = options.keepFiles ?? 5;
    this.maxBacklogBytes = options.maxBacklogBytes ?? 16 * MiB;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 5000;
    this.field = options.field ?? 'exportJsonLines';
    this.onError = options.onError ?? (() => {});
    if (!(this.maxBytes >= 1)) throw new KubeNetProbeError('INVALID_ARGUMENT', `JSON lines export: maxBytes must be at least 1, got ${this.maxBytes}`);
    if (!Number.isInteger(this.keepFiles) || this.keepFiles < 0) throw new KubeNetProbeError('INVALID_ARGUMENT', `JSON lines export: keepFiles must be a whole number from 0, got ${this.keepFiles}`);
  }

  /**
   * Opens the target; a file that cannot be opened for appending is an
   * error naming the config field, so a bad path is found at start.
   */
  static async open(options: JsonLinesOptions): Promise<JsonLinesSink> {
    const sink = new JsonLinesSink(options);
    try {
      await sink.openStream();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new KubeNetProbeError('INVALID_ARGUMENT', `${sink.field}: cannot open ${options.target} for appending (${code})`, {
        hint: code === 'ENOENT' ? 'create its directory first, or choose another path' : code === 'EISDIR' ? 'name a file, not a directory' : "check the path and the agent's permissions",
        cause: err,
      });
    }
    return sink;
  }

  /** Queues one line (JSON text without the newline). Never blocks, never throws: a line that does not fit is counted as dropped. */
  writeText(json: string): void {
    const line = `${json}\n`;
    const len = Buffer.byteLength(line);
    if (this.closing) return this.drop(1, 'closed', `JSON lines export to ${this.target}: a line came after close()`);
    if (this.pendingBytes + len > this.maxBacklogBytes) {
      return this.drop(1, 'backlog', `JSON lines export to ${this.target}: ${this.pendingBytes} bytes are waiting to be written (limit ${this.maxBacklogBytes}): dropping lines until the target catches up`);
    }
    this.lines.push(line);
    this.lens.push(len);
    this.pendingBytes += len;
    this.pendingLines++;
    this.kick();
  }

  /** Writes one record as a JSON line. */
  write(record: object): void {
    this.writeText(JSON.stringify(record));
  }

  /**
   * Closes the file and opens the path again, once the chunk being written
   * is out: for logrotate, which moves the file away and sends SIGHUP. Lines
   * still waiting go to the new file. No-op on stdout.
   */
  reopen(): void {
    if (!this.file || this.closing) return;
    this.reopenWanted = true;
    this.kick();
  }

  stats(): JsonLinesStats {
    return { target: this.target, ...this.counts, backlogLines: this.pendingLines, backlogBytes: this.pendingBytes };
  }

  /** Writes what is queued (within closeTimeoutMs; the rest is counted as dropped) and closes the file. Safe to call twice. */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.closeTimeoutMs)));
    const drained = (async () => {
      while (this.pumping) await this.pumping;
    })();
    const outcome = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      // The target is stuck (a hung disk, a reader that never reads): what is still queued or in flight is lost.
      this.abandoned = true;
      const stuck = this.pendingLines;
      this.lines = [];
      this.lens = [];
      this.drop(stuck, 'close', `JSON lines export to ${this.target}: not written within ${this.closeTimeoutMs} ms of close(): ${stuck} lines dropped`, true);
      this.pendingBytes = 0;
      this.pendingLines = 0;
      this.stream?.destroy();
      this.stream = undefined;
      return;
    }
    await this.endStream();
  }

  private drop(lines: number, kind: string, message: string, force = false): void {
    this.counts.linesDropped += lines;
    const now = Date.now();
    if (force || now - (this.lastReport.get(kind) ?? -Infinity) >= REPORT_EVERY_MS) {
      this.lastReport.set(kind, now);
      this.onError(new KubeNetProbeError('SYSTEM', `${message} (${this.counts.linesDropped} lines dropped since start; export.jsonLines in the agent's stats)`));
    }
  }

  private fail(err: unknown, what: string): void {
    this.counts.errors++;
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    const now = Date.now();
    const kind = `error:${what}:${code}`;
    if (now - (this.lastReport.get(kind) ?? -Infinity) >= REPORT_EVERY_MS) {
      this.lastReport.set(kind, now);
      this.onError(new KubeNetProbeError('SYSTEM', `JSON lines export to ${this.target}: ${what} failed (${code})`, { cause: err }));
    }
  }

  private kick(): void {
    if (this.pumping) return;
    this.pumping = this.pump().then(() => {
      this.pumping = undefined;
      // Lines that came while the loop was finishing.
      if (this.lines.length || this.reopenWanted) this.kick();
    });
  }

  /** Takes lines off the queue a chunk at a time; one write in flight at most, so what arrives meanwhile makes the next chunk. Never rejects. */
  private async pump(): Promise<void> {
    // Let the rest of this turn's lines (a pipeline cycle emits its records in a burst) join the first chunk.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.lines.length || this.reopenWanted) {
      if (this.reopenWanted) {
        this.reopenWanted = false;
        this.counts.reopens++;
        await this.endStream();
        await this.tryOpen();
        continue;
      }
      if (!this.stream && !(await this.tryOpen())) {
        // Still failing: what is queued is lost, and counted.
        this.discard(this.lines.length);
        continue;
      }
      // The lines that fit in the current file.
      const limit = this.file && Date.now() >= this.rotateRetryAt ? this.maxBytes : Infinity;
      let n = 0;
      let bytes = 0;
      while (n < this.lines.length) {
        const len = this.lens[n]!;
        if (this.size + bytes > 0 && this.size + bytes + len > limit) break;
        bytes += len;
        n++;
      }
      if (n === 0) {
        await this.rotate();
        continue;
      }
      const chunk = n === this.lines.length ? this.lines.join('') : this.lines.slice(0, n).join('');
      this.lines.splice(0, n);
      this.lens.splice(0, n);
      await this.writeChunk(chunk, n, bytes);
    }
  }

  private discard(n: number): void {
    let bytes = 0;
    for (let i = 0; i < n; i++) bytes += this.lens[i]!;
    this.lines.splice(0, n);
    this.lens.splice(0, n);
    this.pendingBytes -= bytes;
    this.pendingLines -= n;
    this.drop(n, 'failing', `JSON lines export to ${this.target}: the target cannot be written: dropping lines`);
  }

  private async writeChunk(chunk: string, n: number, bytes: number): Promise<void> {
    const stream = this.stream!;
    const err = await new Promise<Error | null | undefined>((resolve) => stream.write(chunk, resolve));
    // close() gave up on this chunk and counted it as dropped already.
    if (this.abandoned) return;
    this.pendingBytes -= bytes;
    this.pendingLines -= n;
    if (err) {
      this.fail(err, 'write');
      this.drop(n, 'failing', `JSON lines export to ${this.target}: a write failed: dropping lines`);
      this.retryAt = Date.now() + RETRY_MS;
      if (this.stream === stream) this.stream = undefined;
      stream.destroy();
      return;
    }
    this.counts.linesWritten += n;
    this.counts.bytesWritten += bytes;
    this.size += bytes;
  }

  /** path -> path.1 -> ... -> path.N (the oldest is replaced, so deleted), then a new path. */
  private async rotate(): Promise<void> {
    await this.endStream();
    const file = this.file!;
    try {
      if (this.keepFiles === 0) {
        await rm(file, { force: true });
      } else {
        for (let i = this.keepFiles - 1; i >= 1; i--) {
          await rename(`${file}.${i}`, `${file}.${i + 1}`).catch((err: NodeJS.ErrnoException) => {
            if (err.code !== 'ENOENT') throw err;
          });
        }
        await rename(file, `${file}.1`);
      }
      this.counts.rotations++;
    } catch (err) {
      // The file keeps growing for a while rather than losing lines; the error is reported and counted.
      this.fail(err, 'rotation');
      this.rotateRetryAt = Date.now() + RETRY_MS;
    }
    await this.tryOpen();
  }

  /** Opens the target unless it failed less than RETRY_MS ago; false if it is not open. */
  private async tryOpen(): Promise<boolean> {
    if (Date.now() < this.retryAt) return false;
    try {
      await this.openStream();
      return true;
    } catch (err) {
      this.fail(err, 'open');
      this.retryAt = Date.now() + RETRY_MS;
      return false;
    }
  }

  private async openStream(): Promise<void> {
    let stream: WriteStream;
    if (this.file) {
      const handle = await open(this.file, 'a');
      try {
        this.size = (await handle.stat()).size;
      } catch (err) {
        await handle.close();
        throw err;
      }
      stream = handle.createWriteStream({ encoding: 'utf8' });
    } else {
      // Our own stream on fd 1, not process.stdout: writes to a pipe or a
      // file through process.stdout are synchronous on Linux and would stall
      // the event loop when the reader is slow. fd 1 stays open after close().
      stream = createWriteStream('/dev/stdout', { fd: 1, autoClose: false, encoding: 'utf8' });
      this.size = 0;
    }
    // Failures come through each write's callback; this keeps an 'error' from being unhandled.
    stream.on('error', () => {
      if (this.stream === stream) this.stream = undefined;
    });
    this.stream = stream;
  }

  private async endStream(): Promise<void> {
    const stream = this.stream;
    this.stream = undefined;
    if (!stream || stream.destroyed) return;
    const closed = this.file ? once(stream, 'close').catch(() => undefined) : undefined;
    await new Promise<void>((resolve) => stream.end(() => resolve()));
    await closed;
  }
}
