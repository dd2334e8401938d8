/**
 * Every error a user can hit names the problem and the fix, as a typed error
 * with a stable code; none of them is an FFI stack trace.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AlreadyAttachedError,
  AttachError,
  ClosedError,
  InterfaceNotFoundError,
  InvalidArgumentError,
  KernelUnsupportedError,
  KubeNetProbeError,
  NetworkMonitor,
  ObjectFileError,
  PermissionError,
  SystemError,
  VerifierError,
} from 'kubenetprobe';
import { assertKernelSupported, kernelFeatures } from '../src/loader/features.js';
import { builtinObjectPath, packageRoot } from '../src/paths.js';
import { TestNet } from './helpers/testnet.js';

const UNPRIV = fileURLToPath(new URL('../../test/helpers/unprivileged.mjs', import.meta.url));

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'knp-errors-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function clang(src: string, out: string): void {
  const arch = `/usr/include/${execFileSync('uname', ['-m'], { encoding: 'utf8' }).trim()}-linux-gnu`;
  execFileSync('clang', ['-O2', '-g', '-target', 'bpf', '-mcpu=v3', `-I${arch}`, `-I${join(packageRoot(), 'bpf')}`, '-c', src, '-o', out]);
}

describe('interfaces', () => {
  let mon: NetworkMonitor;
  before(async () => {
    mon = await NetworkMonitor.create();
  });
  after(() => mon.close());

  test('no such interface names it and lists the ones there are', async () => {
    await assert.rejects(mon.attachToInterface('nosuch0'), (err: unknown) => {
      assert.ok(err instanceof InterfaceNotFoundError);
      assert.equal(err.code, 'INTERFACE_NOT_FOUND');
      assert.match(err.message, /no such interface "nosuch0"/);
      assert.match(err.message, /hint: interfaces in this network namespace: .*\blo\b/);
      return true;
    });
  });

  for (const bad of ['', 'a'.repeat(16), 'eth0; rm -rf /', '../etc', 'eth 0', 'eth0:1', '.']) {
    test(`invalid name ${JSON.stringify(bad)} is refused before it reaches the kernel`, async () => {
      await assert.rejects(mon.attachToInterface(bad), (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.match(err.message, /invalid interface name/);
        assert.match(err.message, /hint: an interface name is 1-15 printable characters/);
        return true;
      });
    });
  }

  test('attaching twice to the same interface says so', async () => {
    const net = TestNet.create(1);
    try {
      const a = net.pod('a');
      await mon.attachToInterface(a.hostIf);
      await assert.rejects(mon.attachToInterface(a.hostIf), (err: unknown) => {
        assert.ok(err instanceof AlreadyAttachedError);
        assert.match(err.message, new RegExp(`attach interface ${a.hostIf}: already attached by this monitor`));
        assert.match(err.message, /hint: detach it first/);
        return true;
      });
      await mon.detachFromInterface(a.hostIf);
    } finally {
      await net.close();
    }
  });
});

describe('privileges', () => {
  const expectNoCaps = (out: string): void => {
    const r = JSON.parse(out) as { name: string; code: string; message: string; missing: string[] };
    assert.equal(r.name, 'PermissionError');
    assert.equal(r.code, 'PERMISSION_DENIED');
    assert.deepEqual(r.missing, ['CAP_BPF', 'CAP_PERFMON', 'CAP_NET_ADMIN']);
    assert.match(r.message, /permission denied \(missing CAP_BPF and CAP_PERFMON and CAP_NET_ADMIN\)/);
    assert.match(r.message, /hint: run as root, or grant/);
  };

  test('root with every capability dropped: a PermissionError that names CAP_BPF', () => {
    expectNoCaps(execFileSync('setpriv', ['--inh-caps=-all', '--bounding-set=-all', process.execPath, UNPRIV], { encoding: 'utf8' }));
  });

  test('an ordinary user (nobody): the same error', (t) => {
    // nobody must be able to read the checkout; a CI clone under /root may not be.
    try {
      execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'test', '-r', UNPRIV]);
    } catch {
      return t.skip(`${UNPRIV} is not readable by nobody here`);
    }
    expectNoCaps(
      execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', process.execPath, UNPRIV], {
        encoding: 'utf8',
        cwd: '/',
      }),
    );
  });

  test('root without CAP_NET_ADMIN: the missing capability is named', () => {
    const out = execFileSync('setpriv', ['--inh-caps=-net_admin', '--bounding-set=-net_admin', process.execPath, UNPRIV], {
      encoding: 'utf8',
    });
    const r = JSON.parse(out) as { name: string; message: string; missing: string[] };
    assert.equal(r.name, 'PermissionError');
    assert.deepEqual(r.missing, ['CAP_NET_ADMIN']);
    assert.match(r.message, /missing CAP_NET_ADMIN/);
  });
});

describe('kernel', () => {
  test('a kernel older than 5.18 is refused with the reason', () => {
    const old = { ...kernelFeatures(), release: '5.4.0-old', version: [5, 4] as const };
    assert.throws(() => assertKernelSupported(old), (err: unknown) => {
      assert.ok(err instanceof KernelUnsupportedError);
      assert.match(err.message, /kernel lacks the BPF features KubeNetProbe uses \(ring buffers, XDP multi-buffer\): kernel 5\.4\.0-old is older than 5\.18/);
      assert.match(err.message, /hint: KubeNetProbe needs Linux 5\.18 or later/);
      return true;
    });
    assert.throws(() => assertKernelSupported({ ...kernelFeatures(), release: '5.17.0', version: [5, 17] }), KernelUnsupportedError);
    assert.doesNotThrow(() => assertKernelSupported({ ...kernelFeatures(), release: '5.18.0', version: [5, 18] }));
    assert.throws(() => assertKernelSupported({ ...kernelFeatures(), ringbuf: false }), /kernel lacks BPF ring buffers/);
  });

  test('this kernel passes the checks (a new kernel lacking a feature fails here)', () => {
    const f = kernelFeatures();
    assert.doesNotThrow(() => assertKernelSupported(f));
    if (f.version[0] > 6 || (f.version[0] === 6 && f.version[1] >= 6)) assert.ok(f.tcx, 'kernel >= 6.6 must have TCX');
    assert.ok(f.ringbuf);
    assert.ok(f.btf);
  });
});

describe('object files', () => {
  const expectObjectError = (path: string, pattern: RegExp) =>
    assert.rejects(NetworkMonitor.fromObjectFile(path), (err: unknown) => {
      assert.ok(err instanceof ObjectFileError, `got ${String(err)}`);
      assert.equal(err.code, 'OBJECT_FILE');
      assert.match(err.message, pattern);
      assert.match(err.message, /hint: rebuild it with `npm run build:bpf`/);
      return true;
    });

  test('missing file', () => expectObjectError(join(dir, 'nope.o'), /nope\.o: no such file/));

  test('garbage', () => {
    writeFileSync(join(dir, 'garbage.o'), Buffer.from('this is not an object file at all, not even close'));
    return expectObjectError(join(dir, 'garbage.o'), /not an ELF file/);
  });

  test('an ELF file for another machine', () => {
    copyFileSync(process.execPath, join(dir, 'node.o'));
    return expectObjectError(join(dir, 'node.o'), /not a BPF object/);
  });

  test('a truncated BPF object', () => {
    const obj = readFileSync(builtinObjectPath());
    writeFileSync(join(dir, 'truncated.o'), obj.subarray(0, Math.floor(obj.length / 3)));
    return expectObjectError(join(dir, 'truncated.o'), /libbpf cannot open it/);
  });

  test('a BPF object that is not ours', () => {
    writeFileSync(join(dir, 'other.bpf.c'), '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nSEC("tc") int x(struct __sk_buff *s) { return 0; }\nchar L[] SEC("license") = "GPL";\n');
    clang(join(dir, 'other.bpf.c'), join(dir, 'other.bpf.o'));
    return expectObjectError(join(dir, 'other.bpf.o'), /has no BTF for struct knp_flow_key/);
  });

  test('a program the verifier rejects: the verifier log is in the error', async () => {
    // Our object plus one program that reads the packet without a bounds check.
    const src = join(dir, 'bad.bpf.c');
    writeFileSync(
      src,
      `#include "${join(packageRoot(), 'bpf', 'monitor.bpf.c')}"\nSEC("tc") int unchecked(struct __sk_buff *skb) { return *(__u8 *)(long)skb->data; }\n`,
    );
    clang(src, join(dir, 'bad.bpf.o'));
    await assert.rejects(NetworkMonitor.fromObjectFile(join(dir, 'bad.bpf.o')), (err: unknown) => {
      assert.ok(err instanceof VerifierError, `got ${String(err)}`);
      assert.equal(err.code, 'VERIFIER');
      assert.match(err.message, /verifier log/);
      assert.match(err.log, /invalid access to packet/);
      assert.ok(!/koffi|\.node:|at .*ffi/.test(err.message), 'no FFI internals in the message');
      return true;
    });
  });
});

test('a verifier log far over 64 KiB reaches the error whole, with the verdict at its end', async () => {
  // 1500 unrolled steps log ~1500 lines before the bad access at the end.
  const src = join(dir, 'long.bpf.c');
  writeFileSync(
    src,
    `#include "${join(packageRoot(), 'bpf', 'monitor.bpf.c')}"
SEC("tc") int long_then_bad(struct __sk_buff *skb)
{
	__u64 x = skb->len;
#pragma unroll
	for (int i = 0; i < 1500; i++)
		x = x * 3 + skb->mark;
	return *(__u8 *)(long)(skb->data + (x & 7));
}
`,
  );
  clang(src, join(dir, 'long.bpf.o'));
  await assert.rejects(NetworkMonitor.fromObjectFile(join(dir, 'long.bpf.o')), (err: unknown) => {
    assert.ok(err instanceof VerifierError, `got ${String(err)}`);
    assert.ok(err.log.length > 64 * 1024, `the log is long (${err.log.length} bytes)`);
    assert.match(err.log, /invalid access to packet/);
    assert.match(err.message, /invalid access to packet/, 'the verdict is among the lines the message shows');
    return true;
  });
});

test('a map the kernel will not create is named in the error', async () => {
  const src = join(dir, 'badmap.bpf.c');
  writeFileSync(
    src,
    `#include "${join(packageRoot(), 'bpf', 'monitor.bpf.c')}"
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, 1U << 30); /* no such flag */
	__type(key, __u32);
	__type(value, __u64);
} knp_bad_map SEC(".maps");
SEC("tc") int uses_bad_map(struct __sk_buff *skb) { __u32 k = 0; return bpf_map_lookup_elem(&knp_bad_map, &k) ? 1 : 0; }
`,
  );
  clang(src, join(dir, 'badmap.bpf.o'));
  await assert.rejects(NetworkMonitor.fromObjectFile(join(dir, 'badmap.bpf.o')), (err: unknown) => {
    assert.ok(err instanceof KubeNetProbeError, `got ${String(err)}`);
    assert.equal(err.code, 'SYSTEM');
    assert.match(err.message, /the kernel could not create map knp_bad_map: EINVAL/);
    return true;
  });
});

describe('options and lifecycle', () => {
  test('bad options are named', async () => {
    await assert.rejects(NetworkMonitor.create({ packetEventRingBytes: 1000 }), /packetEventRingBytes must be a power of two of at least 4096 bytes, got 1000/);
    await assert.rejects(NetworkMonitor.create({ flowTableCapacity: 0 }), /flowTableCapacity must be an integer from 1 to 4194304, got 0/);
    await assert.rejects(NetworkMonitor.create({ flowTableCapacity: 2 ** 32 - 1 }), /flowTableCapacity must be an integer from 1 to 4194304/);
    await assert.rejects(NetworkMonitor.create({ detectTcpFlagAnomalies: 'yes' as unknown as boolean }), /detectTcpFlagAnomalies must be true or false, got yes/);
    // undefined means the default, as leaving the option out does
    const m = await NetworkMonitor.create({ packetSampleRate: undefined, detectTcpFlagAnomalies: undefined });
    assert.equal(m.options.packetSampleRate, 100);
    assert.equal(m.options.detectTcpFlagAnomalies, true);
    await m.close();
    await assert.rejects(NetworkMonitor.create({ packetSampleRate: -1 }), /packetSampleRate must be 0 \(off\) or a positive integer/);
  });

  test('use after close is a ClosedError; close twice is safe; await using closes', async () => {
    const mon = await NetworkMonitor.create();
    await mon.close();
    await mon.close();
    assert.throws(() => mon.getFlowStats(), (err: unknown) => err instanceof ClosedError && /network monitor is closed/.test(err.message));
    await assert.rejects(mon.attachToInterface('lo'), ClosedError);
    {
      const m2 = await NetworkMonitor.create();
      await m2[Symbol.asyncDispose]();
      assert.throws(() => m2.getPacketStats(), ClosedError);
    }
  });

  test('every error class is a KubeNetProbeError with its own code and its name', () => {
    const cases: [KubeNetProbeError, string][] = [
      [new InterfaceNotFoundError('x0', []), 'INTERFACE_NOT_FOUND'],
      [new InvalidArgumentError('bad'), 'INVALID_ARGUMENT'],
      [new PermissionError('load', ['CAP_BPF']), 'PERMISSION_DENIED'],
      [new KernelUnsupportedError('f', 'd'), 'KERNEL_UNSUPPORTED'],
      [new ObjectFileError('/x.o', 'bad'), 'OBJECT_FILE'],
      [new VerifierError('/x.o', 13, 'log'), 'VERIFIER'],
      [new AlreadyAttachedError('x0', 'interface'), 'ALREADY_ATTACHED'],
      [new AttachError('xdp', 'x0', 16), 'ATTACH_FAILED'],
      [new ClosedError('monitor'), 'CLOSED'],
      [new SystemError('mmap', 12), 'SYSTEM'],
    ];
    for (const [err, code] of cases) {
      assert.ok(err instanceof KubeNetProbeError);
      assert.equal(err.code, code, err.name);
      assert.equal(err.name, err.constructor.name);
    }
    assert.match(new SystemError('mmap', 12).message, /^mmap: ENOMEM \(out of memory\)$/);
  });
});
