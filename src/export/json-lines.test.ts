import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, createReadStream, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsonLinesSink } from './json-lines.js';

/** Polls until `cond` holds (the sink writes in the background). */
async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const tmp = (): string => mkdtempSync(join(tmpdir(), 'knp-jsonl-'));
const linesOf = (path: string): string[] => readFileSync(path, 'utf8').split('\n').slice(0, -1);

/** A record whose JSON line is exactly `width` bytes with the newline. */
function fixed(i: number, width: number): { i: number; pad: string } {
  const bare = JSON.stringify({ i, pad: '' }).length + 1;
  return { i, pad: 'x'.repeat(width - bare) };
}

test('every line, in order, exactly as written; appends to what is there; counters match the file', async () => {
  const dir = tmp();
  try {
    const path = join(dir, 'flows.jsonl');
    writeFileSync(path, '{"before":true}\n');
    const errors: Error[] = [];
    const sink = await JsonLinesSink.open({ target: path, onError: (e) => errors.push(e) });
    const records = Array.from({ length: 1000 }, (_, i) => ({ i, srcIp: `198.18.0.${i % 250}`, pod: i % 3 ? null : 'café/ü', tcpFlags: ['SYN'] }));
    for (const r of records.slice(0, 400)) sink.write(r);
    await new Promise((r) => setTimeout(r, 20)); // some go out, the rest in later chunks
    for (const r of records.slice(400)) sink.write(r);
    await sink.close();
    await sink.close(); // twice is fine
    const lines = linesOf(path);
    assert.equal(lines.length, 1001);
    assert.equal(lines[0], '{"before":true}');
    assert.deepEqual(lines.slice(1).map((l) => JSON.parse(l) as unknown), records);
    const s = sink.stats();
    assert.equal(s.linesWritten, 1000);
    assert.equal(s.bytesWritten, statSync(path).size - '{"before":true}\n'.length);
    assert.equal(s.linesDropped, 0);
    assert.equal(s.backlogLines, 0);
    assert.deepEqual(errors, []);
    sink.write({ late: true });
    assert.equal(sink.stats().linesDropped, 1, 'a line after close() is counted as lost');
    assert.equal(linesOf(path).length, 1001);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rotation at the size boundary: path, path.1 .. path.N, oldest deleted, line counts add up', async () => {
  const dir = tmp();
  try {
    const path = join(dir, 'export.jsonl');
    const width = 64;
    const sink = await JsonLinesSink.open({ target: path, maxBytes: 10 * width, keepFiles: 3 });
    for (let i = 0; i < 35; i++) sink.write(fixed(i, width));
    await until('35 lines written', () => sink.stats().linesWritten === 35);
    // 35 lines of 64 bytes, 10 to a file: 10 + 10 + 10 + 5, nothing deleted yet.
    assert.deepEqual(readdirSync(dir).sort(), ['export.jsonl', 'export.jsonl.1', 'export.jsonl.2', 'export.jsonl.3']);
    const count = (): number[] => ['', '.3', '.2', '.1'].map((s) => linesOf(path + s).length);
    assert.deepEqual(count(), [5, 10, 10, 10]);
    assert.equal(count().reduce((a, b) => a + b), 35, 'every line written is in a file');
    assert.deepEqual(linesOf(`${path}.3`).map((l) => (JSON.parse(l) as { i: number }).i), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'oldest in .3');

    for (let i = 35; i < 57; i++) sink.write(fixed(i, width));
    await sink.close();
    // 57 lines: 7 in the current file, 10 in each of the three kept; the oldest 20 deleted.
    assert.deepEqual(readdirSync(dir).sort(), ['export.jsonl', 'export.jsonl.1', 'export.jsonl.2', 'export.jsonl.3']);
    assert.deepEqual(count(), [7, 10, 10, 10]);
    const kept = ['.3', '.2', '.1', ''].flatMap((s) => linesOf(path + s).map((l) => (JSON.parse(l) as { i: number }).i));
    assert.deepEqual(kept, Array.from({ length: 37 }, (_, k) => 20 + k), 'the newest 37 lines, in order, across the files');
    for (const f of readdirSync(dir)) assert.ok(statSync(join(dir, f)).size <= 10 * width, `${f} is within maxBytes`);
    const s = sink.stats();
    assert.equal(s.linesWritten, 57);
    assert.equal(s.rotations, 5);
    assert.equal(s.linesDropped, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('keepFiles 0 keeps no old file; a line longer than maxBytes gets a file of its own', async () => {
  const dir = tmp();
  try {
    const path = join(dir, 'x.jsonl');
    const sink = await JsonLinesSink.open({ target: path, maxBytes: 100, keepFiles: 0 });
    sink.write(fixed(0, 60));
    sink.write(fixed(1, 250));
    sink.write(fixed(2, 60));
    await sink.close();
    assert.deepEqual(readdirSync(dir), ['x.jsonl']);
    assert.deepEqual(linesOf(path).map((l) => (JSON.parse(l) as { i: number }).i), [2]);
    assert.equal(sink.stats().rotations, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reopen() after logrotate moved the file: new lines go to a new file at the path', async () => {
  const dir = tmp();
  try {
    const path = join(dir, 'a.jsonl');
    const sink = await JsonLinesSink.open({ target: path });
    for (let i = 0; i < 5; i++) sink.write({ i });
    await until('5 lines written', () => sink.stats().linesWritten === 5);
    renameSync(path, `${path}.rotated`); // what logrotate does, then SIGHUP
    sink.reopen();
    for (let i = 5; i < 8; i++) sink.write({ i });
    await sink.close();
    assert.equal(linesOf(`${path}.rotated`).length, 5);
    assert.deepEqual(linesOf(path), ['{"i":5}', '{"i":6}', '{"i":7}']);
    assert.equal(sink.stats().reopens, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a target that does not keep up: the backlog is bounded, the rest is dropped and counted, the event loop never waits', { timeout: 60_000 }, async () => {
  const dir = tmp();
  let reader: number | undefined;
  try {
    // A FIFO whose reader reads nothing: once its 64 KiB are full, a write waits (in the thread pool).
    const fifo = join(dir, 'slow');
    execFileSync('mkfifo', [fifo]);
    reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const errors: Error[] = [];
    const sink = await JsonLinesSink.open({ target: fifo, maxBacklogBytes: 32 * 1024, closeTimeoutMs: 10_000, onError: (e) => errors.push(e) });
    const width = 100;
    const total = 20_000;
    const t0 = performance.now();
    let written = 0;
    // One burst larger than the backlog, in one turn of the event loop: exactly what fits is kept.
    for (let k = 0; k < 1000; k++) sink.write(fixed(written++, width));
    assert.equal(sink.stats().backlogLines, Math.floor((32 * 1024) / width));
    assert.equal(sink.stats().linesDropped, 1000 - Math.floor((32 * 1024) / width));
    // Then more bursts, as the agent's cycles come, with turns of the event loop between.
    for (let burst = 1; burst < 20; burst++) {
      for (let k = 0; k < total / 20; k++) sink.write(fixed(written++, width));
      await new Promise((r) => setTimeout(r, 5));
    }
    const elapsed = performance.now() - t0;
    const s = sink.stats();
    assert.ok(s.linesDropped > 0, 'lines were dropped');
    assert.ok(s.backlogBytes <= 32 * 1024, `backlog ${s.backlogBytes} within its bound`);
    assert.equal(s.linesWritten + s.linesDropped + s.backlogLines, total, 'every line is written, waiting, or counted as dropped');
    assert.ok(elapsed < 2000, `writing never waited for the reader (${elapsed.toFixed(0)} ms)`);
    assert.equal(errors.length, 1, 'the loss is reported, once (rate-limited)');
    assert.match(errors[0]!.message, /waiting to be written \(limit 32768\): dropping lines/);

    // The reader catches up: what was kept arrives, exactly. The new reader must have the FIFO
    // open before the old one closes: with no reader at all, the sink's pending write fails
    // (EPIPE), the sink lets go of the FIFO, and a reader that opens after that waits forever
    // for a writer.
    const catching = createReadStream(fifo, { encoding: 'utf8' });
    let out = '';
    catching.on('data', (d) => (out += d));
    const ended = new Promise<void>((resolve, reject) => {
      catching.once('end', () => resolve());
      catching.once('error', reject);
    });
    await new Promise<void>((resolve, reject) => {
      catching.once('open', () => resolve());
      catching.once('error', reject);
    });
    closeSync(reader);
    reader = undefined;
    await sink.close();
    await ended;
    const got = out.split('\n').slice(0, -1).map((l) => (JSON.parse(l) as { i: number }).i);
    const after = sink.stats();
    assert.equal(after.backlogLines, 0);
    assert.equal(got.length, after.linesWritten, 'the reader got every line counted as written');
    assert.equal(after.linesWritten + after.linesDropped, total);
    assert.deepEqual(got, [...got].sort((a, b) => a - b), 'in order');
  } finally {
    if (reader !== undefined) closeSync(reader);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('write errors (a full disk) are counted and reported, not thrown', async () => {
  if (!existsSync('/dev/full')) return;
  const errors: Error[] = [];
  const sink = await JsonLinesSink.open({ target: '/dev/full', onError: (e) => errors.push(e) });
  for (let i = 0; i < 10; i++) sink.write({ i });
  await sink.close();
  const s = sink.stats();
  assert.equal(s.linesWritten, 0);
  assert.equal(s.linesDropped, 10);
  assert.ok(s.errors >= 1);
  assert.ok(errors.some((e) => /write failed \(ENOSPC\)/.test(e.message)), errors.map((e) => e.message).join('; '));
});

test('a path that cannot be opened is an error naming the field and the fix', async () => {
  await assert.rejects(JsonLinesSink.open({ target: '/nonexistent-knp-dir/x.jsonl' }), /exportJsonLines: cannot open \/nonexistent-knp-dir\/x\.jsonl for appending \(ENOENT\)\n {2}hint: create its directory first/);
  await assert.rejects(JsonLinesSink.open({ target: tmpdir() }), /\(EISDIR\)\n {2}hint: name a file, not a directory/);
});

test("stdout: the lines and nothing else on the process's fd 1", async () => {
  const module = fileURLToPath(new URL('./json-lines.js', import.meta.url));
  const script = `
    const { JsonLinesSink } = await import(${JSON.stringify(module)});
    const sink = await JsonLinesSink.open({ target: 'stdout' });
    for (let i = 0; i < 3; i++) sink.write({ i });
    await sink.close();
    await sink.close();
    console.error(JSON.stringify(sink.stats()));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script]);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const code = await new Promise((r) => child.on('close', r));
  assert.equal(code, 0, err);
  assert.equal(out, '{"i":0}\n{"i":1}\n{"i":2}\n');
  assert.equal((JSON.parse(err) as { linesWritten: number }).linesWritten, 3);
});

test('close() on a target that never takes the lines: gives up after closeTimeoutMs, counts them all as dropped', async () => {
  const dir = tmp();
  let reader: number | undefined;
  try {
    const fifo = join(dir, 'stuck');
    execFileSync('mkfifo', [fifo]);
    reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const errors: Error[] = [];
    const sink = await JsonLinesSink.open({ target: fifo, maxBacklogBytes: 1 << 20, closeTimeoutMs: 300, onError: (e) => errors.push(e) });
    for (let i = 0; i < 2000; i++) sink.write(fixed(i, 100)); // 200 kB: more than the pipe holds
    await new Promise((r) => setTimeout(r, 100)); // the chunk is in the thread pool, stuck once the pipe is full
    const t0 = performance.now();
    await sink.close();
    const waited = performance.now() - t0;
    assert.ok(waited >= 250 && waited < 2000, `close() waited ${waited.toFixed(0)} ms`);
    const s = sink.stats();
    assert.equal(s.linesWritten + s.linesDropped, 2000, JSON.stringify(s));
    assert.ok(s.linesDropped > 0);
    assert.deepEqual([s.backlogLines, s.backlogBytes], [0, 0]);
    assert.ok(errors.some((e) => /not written within 300 ms of close\(\): \d+ lines dropped/.test(e.message)), errors.map((e) => e.message).join('; '));
    closeSync(reader); // the stuck write ends (EPIPE); nothing is counted twice
    reader = undefined;
    await new Promise((r) => setTimeout(r, 50));
    const after = sink.stats();
    assert.deepEqual([after.linesWritten, after.linesDropped, after.backlogLines], [s.linesWritten, s.linesDropped, 0]);
  } finally {
    if (reader !== undefined) closeSync(reader);
    rmSync(dir, { recursive: true, force: true });
  }
});
