/**
 * Attach and detach: TCX links, XDP links (generic mode), the clsact
 * fallback, and nothing left behind after close() or after kill -9.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NetworkMonitor, kernelFeatures } from 'kubenetprobe';
import { TestNet } from './helpers/testnet.js';
import { attachedTo, nothingAttached, sleep, waitFor } from './helpers/attached.js';

const HOLD = fileURLToPath(new URL('../../test/helpers/hold-attached.mjs', import.meta.url));

describe('attach modes', () => {
  test('default attach uses TCX links both ways and no XDP on a veth; close() removes everything', async (t) => {
    if (!kernelFeatures().tcx) return t.skip(`kernel ${kernelFeatures().release} predates TCX (6.6)`);
    const net = TestNet.create(1);
    try {
      const a = net.pod('a');
      const mon = await NetworkMonitor.create();
      const info = await mon.attachToInterface(a.hostIf);
      assert.deepEqual(
        info.hooks.map((h) => `${h.hook}:${h.mode}:${h.link}`),
        ['tc-ingress:tcx:true', 'tc-egress:tcx:true'],
      );
      assert.ok(info.notes.some((n) => n.startsWith('xdp: off')), 'says why XDP is off');
      const on = attachedTo(a.hostIf);
      assert.equal(on.tcxIngress, 1);
      assert.equal(on.tcxEgress, 1);
      assert.equal(on.xdpProgId, 0);
      await mon.close();
      assert.ok(nothingAttached(attachedTo(a.hostIf)), JSON.stringify(attachedTo(a.hostIf)));
      await mon.close(); // twice is safe
    } finally {
      await net.close();
    }
  });

  for (const mode of ['generic', 'native'] as const) test(`XDP in ${mode} mode counts every ingress frame as TC does, and detaches on close`, async () => {
    const net = TestNet.create(2, { ipv6: false });
    try {
      const a = net.pod('a');
      const b = net.pod('b');
      const mon = await NetworkMonitor.create({ packetSampleRate: 0 });
      const info = await mon.attachToInterface(a.hostIf, { xdp: mode });
      assert.ok(info.hooks.some((h) => h.hook === 'xdp' && h.mode === `xdp-${mode}` && h.link));
      assert.ok(attachedTo(a.hostIf).xdpProgId > 0);
      net.traffic(a, ['udp-send', b.ipv4, '5500', '700', '20', '44000']);
      await sleep(100);
      const st = mon.getPacketStats().interfaces.filter((c) => c.ifindex === info.ifindex);
      const xdp = st.find((c) => c.hook === 'xdp')!;
      const tcIn = st.find((c) => c.hook === 'tc-ingress')!;
      // XDP runs before TC on the same frames: the same counts, outcome by outcome.
      assert.deepEqual(xdp.packets, tcIn.packets);
      assert.ok(xdp.packets.parsed >= 700);
      assert.equal(mon.getFlowStats().filter((f) => f.key.dstPort === 5500).reduce((s, f) => s + f.packets, 0), 700, 'TC alone keeps the flow');
      await mon.close();
      assert.ok(nothingAttached(attachedTo(a.hostIf)));
    } finally {
      await net.close();
    }
  });

  test("the clsact fallback (tc: { mode: 'clsact' }) counts the same and removes its qdisc on close", async () => {
    const net = TestNet.create(2, { ipv6: false });
    try {
      const a = net.pod('a');
      const b = net.pod('b');
      const mon = await NetworkMonitor.create({ packetSampleRate: 0 });
      const info = await mon.attachToInterface(a.hostIf, { tc: { mode: 'clsact' } });
      assert.deepEqual(
        info.hooks.map((h) => `${h.hook}:${h.mode}:${h.link}`),
        ['tc-ingress:clsact:false', 'tc-egress:clsact:false'],
      );
      const on = attachedTo(a.hostIf);
      assert.ok(on.clsactQdisc);
      assert.equal(on.tcFilters, 2);
      net.traffic(a, ['udp-send', b.ipv4, '5501', '300', '20', '44001']);
      await sleep(100);
      assert.equal(mon.getFlowStats().find((f) => f.key.dstPort === 5501 && f.key.direction === 'ingress')?.packets, 300);
      await mon.close();
      assert.ok(nothingAttached(attachedTo(a.hostIf)), JSON.stringify(attachedTo(a.hostIf)));
    } finally {
      await net.close();
    }
  });

  test('clsact leaves a qdisc it did not create in place', async () => {
    const net = TestNet.create(1);
    try {
      const a = net.pod('a');
      net.exec(a, 'true', []);
      const { execFileSync } = await import('node:child_process');
      execFileSync('tc', ['qdisc', 'add', 'dev', a.hostIf, 'clsact']);
      const mon = await NetworkMonitor.create();
      await mon.attachToInterface(a.hostIf, { tc: { mode: 'clsact' } });
      assert.equal(attachedTo(a.hostIf).tcFilters, 2);
      await mon.close();
      const after = attachedTo(a.hostIf);
      assert.equal(after.tcFilters, 0);
      assert.ok(after.clsactQdisc, 'the pre-existing qdisc stays');
    } finally {
      await net.close();
    }
  });

  test('detachFromInterface removes one interface and keeps the others', async () => {
    const net = TestNet.create(2);
    const mon = await NetworkMonitor.create();
    try {
      const a = net.pod('a');
      const b = net.pod('b');
      await mon.attachToInterface(a.hostIf);
      await mon.attachToInterface(b.hostIf);
      assert.equal(await mon.detachFromInterface(a.hostIf), true);
      assert.equal(await mon.detachFromInterface(a.hostIf), false);
      assert.ok(nothingAttached(attachedTo(a.hostIf)));
      assert.ok(!nothingAttached(attachedTo(b.hostIf)));
      assert.deepEqual(
        mon.attachedInterfaces().map((i) => i.name),
        [b.hostIf],
      );
      // Re-attaching after a detach works.
      await mon.attachToInterface(a.hostIf);
    } finally {
      await mon.close();
      await net.close();
    }
  });
});

describe('leftovers after a crash', () => {
  for (const xdp of ['off', 'generic']) {
    test(`kill -9 of a process attached in link mode (xdp ${xdp}) leaves nothing attached`, async (t) => {
      if (!kernelFeatures().tcx) return t.skip('needs TCX links (kernel 6.6+)');
      const net = TestNet.create(1);
      try {
        const a = net.pod('a');
        const child = spawn(process.execPath, [HOLD, a.hostIf, xdp], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        const exited = new Promise((r) => child.once('exit', r));
        await waitFor('child to attach', () => out.includes('attached'), 20000);
        const on = attachedTo(a.hostIf);
        assert.equal(on.tcxIngress + on.tcxEgress, 2);
        assert.equal(on.xdpProgId > 0, xdp === 'generic');
        child.kill('SIGKILL');
        await exited;
        await waitFor('the kernel to release the links', () => nothingAttached(attachedTo(a.hostIf)), 5000);
      } finally {
        await net.close();
      }
    });
  }
});

describe('clsact after a crash', () => {
  test('a filter left by a killed process is replaced, not an EEXIST, and the new monitor counts', async () => {
    const net = TestNet.create(2, { ipv6: false });
    try {
      const a = net.pod('a');
      const b = net.pod('b');
      const child = spawn(process.execPath, [HOLD, a.hostIf, 'off', 'clsact'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise((r) => child.once('exit', r));
      await waitFor('child to attach', () => out.includes('attached'), 20000);
      child.kill('SIGKILL');
      await exited;
      assert.equal(attachedTo(a.hostIf).tcFilters, 2, 'clsact filters outlive their process (why links are preferred)');

      const mon = await NetworkMonitor.create({ packetSampleRate: 0 });
      try {
        await mon.attachToInterface(a.hostIf, { tc: { mode: 'clsact' } });
        assert.equal(attachedTo(a.hostIf).tcFilters, 2, 'ours replaced the stale ones');
        net.traffic(a, ['udp-send', b.ipv4, '5502', '100', '20', '44002']);
        await sleep(100);
        assert.equal(mon.getFlowStats().find((f) => f.key.dstPort === 5502 && f.key.direction === 'ingress')?.packets, 100);
      } finally {
        await mon.close();
      }
      assert.equal(attachedTo(a.hostIf).tcFilters, 0);
    } finally {
      await net.close();
    }
  });
});
