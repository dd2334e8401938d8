/** The export settings in the agent's config: defaults, the three sources, and errors that name the field. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../agent/config.js';

test('export: off by default; defaults for rotation and OTLP', () => {
  const c = loadConfig({});
  assert.equal(c.exportJsonLines, undefined);
  assert.equal(c.otlpEndpoint, undefined);
  assert.equal(c.otlpHeaders, undefined);
  assert.equal(c.exportMaxBytes, 100 * 1024 * 1024);
  assert.equal(c.exportKeepFiles, 5);
  assert.equal(c.otlpProtocol, 'http/protobuf');
});

test('export: from the file, the environment and flags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'knp-config-'));
  try {
    const file = join(dir, 'agent.json');
    writeFileSync(file, JSON.stringify({ exportJsonLines: '/var/log/knp/flows.jsonl', exportKeepFiles: 2, otlpEndpoint: 'http://collector:4318', otlpHeaders: { authorization: 'Bearer abc', 'x-scope': 'node-1' } }));
    const fromFile = loadConfig({ file });
    assert.equal(fromFile.exportJsonLines, '/var/log/knp/flows.jsonl');
    assert.equal(fromFile.exportKeepFiles, 2);
    assert.deepEqual(fromFile.otlpHeaders, { authorization: 'Bearer abc', 'x-scope': 'node-1' });

    const env = loadConfig({
      file,
      env: {
        KUBENETPROBE_EXPORT_JSON_LINES: 'stdout',
        KUBENETPROBE_EXPORT_MAX_BYTES: '1048576',
        KUBENETPROBE_OTLP_ENDPOINT: 'https://otel.example:4318/v1/logs',
        KUBENETPROBE_OTLP_HEADERS: 'authorization=Basic%20dXNlcjpwdw==, x-tenant=a',
        KUBENETPROBE_OTLP_PROTOCOL: 'http/json',
      },
    });
    assert.equal(env.exportJsonLines, 'stdout');
    assert.equal(env.exportMaxBytes, 1048576);
    assert.equal(env.exportKeepFiles, 2, 'the file still counts where the environment says nothing');
    assert.equal(env.otlpEndpoint, 'https://otel.example:4318/v1/logs');
    assert.deepEqual(env.otlpHeaders, { authorization: 'Basic dXNlcjpwdw==', 'x-tenant': 'a' }, 'as OTEL_EXPORTER_OTLP_HEADERS: comma-separated, percent-decoded');
    assert.equal(env.otlpProtocol, 'http/json');

    // Flags as commander gives them (--otlp-headers repeated or comma-separated: a list).
    const flags = loadConfig({ file, flags: { exportJsonLines: join(dir, 'x.jsonl'), exportKeepFiles: '0', otlpHeaders: ['a=1', 'b=2'] } });
    assert.equal(flags.exportJsonLines, join(dir, 'x.jsonl'));
    assert.equal(flags.exportKeepFiles, 0);
    assert.deepEqual(flags.otlpHeaders, { a: '1', b: '2' });
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('export: invalid values are refused at start, naming the field', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ exportJsonLines: '' }, /invalid config: exportJsonLines: give 'stdout' or a file path/],
    [{ exportMaxBytes: '10' }, /invalid config: exportMaxBytes: /],
    [{ exportMaxBytes: 'lots' }, /invalid config: exportMaxBytes: /],
    [{ exportKeepFiles: -1 }, /invalid config: exportKeepFiles: /],
    [{ exportKeepFiles: 2.5 }, /invalid config: exportKeepFiles: /],
    [{ otlpEndpoint: 'collector:4318' }, /invalid config: otlpEndpoint: must be an http:\/\/ or https:\/\/ URL, e\.g\. http:\/\/otel-collector:4318; got "collector:4318"/],
    [{ otlpEndpoint: 'not a url' }, /invalid config: otlpEndpoint: must be an http:\/\/ or https:\/\/ URL/],
    [{ otlpHeaders: ['novalue'] }, /invalid config: otlpHeaders: expected name=value, got "novalue"/],
    [{ otlpHeaders: { 'bad name': 'x' } }, /invalid config: otlpHeaders: not an HTTP header name: "bad name"/],
    [{ otlpHeaders: { a: 'x\r\nInjected: 1' } }, /invalid config: otlpHeaders: the value of a has a line break or NUL/],
    [{ otlpProtocol: 'grpc' }, /invalid config: otlpProtocol: /],
  ];
  for (const [flags, re] of bad) assert.throws(() => loadConfig({ flags }), (e: unknown) => e instanceof ConfigError && re.test(e.message), JSON.stringify(flags));
  assert.throws(() => loadConfig({ env: { KUBENETPROBE_OTLP_ENDPOINT: 'udp://x' } }), /invalid config: otlpEndpoint: /);
});
