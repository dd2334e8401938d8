/**
 * The kubenetprobe command: `npx kubenetprobe` reaches it (package.json bin),
 * and `doctor` says what works here, exiting non-zero when the agent can't run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../src/paths.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function run(args: string[], via: string[] = []): { code: number | null; out: string; err: string } {
  const r = via.length
    ? spawnSync(via[0]!, [...via.slice(1), process.execPath, CLI, ...args], { encoding: 'utf8' })
    : spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('npx kubenetprobe runs the CLI', () => {
  const r = spawnSync('npx', ['--no-install', 'kubenetprobe', '--help'], { encoding: 'utf8', cwd: packageRoot() });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Usage: kubenetprobe/);
  assert.match(r.stdout, /doctor \[options\]/);
});

test('doctor on this machine: every check passes and the programs load', () => {
  const r = run(['doctor']);
  assert.equal(r.code, 0, r.out + r.err);
  for (const name of ['privileges', 'kernel', 'ring buffers', 'tc attach', 'btf', 'bpffs', 'libbpf', 'memlock', 'programs']) {
    assert.match(r.out, new RegExp(`^ {2}(ok|warn) +${name} `, 'm'), `${name} is checked`);
  }
  assert.match(r.out, /^ {2}ok +programs +the verifier accepts them/m);
  assert.match(r.out, /^ {2}ok +libbpf +1\.\d+/m);
  assert.match(r.out, /^the agent can run here/m);
});

test('doctor -o json gives the same checks as data', () => {
  const r = run(['doctor', '-o', 'json']);
  assert.equal(r.code, 0);
  const checks = JSON.parse(r.out) as { name: string; status: string; detail: string }[];
  assert.ok(checks.find((c) => c.name === 'kernel' && c.status === 'ok'));
  assert.ok(checks.every((c) => ['ok', 'warn', 'fail'].includes(c.status) && c.detail.length > 0));
});

test('doctor without privileges fails, names what is missing, and exits 1', () => {
  const r = run(['doctor'], ['setpriv', '--inh-caps=-all', '--bounding-set=-all']);
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(r.out, /^ {2}fail +privileges +missing CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN: run as root or grant them/m);
  assert.doesNotMatch(r.out, / programs /, 'does not try to load without privileges');
  assert.match(r.out, /^the agent cannot run here: 1 check failed/m);
});

test('a bad option is a one-line error and exit 2', () => {
  const r = run(['doctor', '-o', 'yaml']);
  assert.equal(r.code, 2);
  assert.equal(r.err, 'kubenetprobe: --output must be table or json, got yaml\n');
});
