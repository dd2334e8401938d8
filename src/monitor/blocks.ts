/**
 * Blocked sources (enforce mode) and the allowlist, over the kernel's
 * knp_blocks hash and knp_allowlist LPM trie. The kernel inserts a block
 * when an enforced detector fires; it lets frames through once a block has
 * expired, and user space removes it (expire()) and reports the expiry.
 */
import type { BpfMap } from '../loader/map.js';
import { BLOCK, LPM_KEY, SECURITY_TYPES } from '../abi/layouts.js';
import { decodeAddress, encodeAddress, parseCidr } from '../abi/ip.js';
import { InvalidArgumentError } from '../errors.js';
import type { MonotonicClock } from './clock.js';
import type { Block } from '../types.js';

function addressOrThrow(ip: string): Uint8Array {
  const a = encodeAddress(ip);
  if (!a) throw new InvalidArgumentError(`not an IP address: ${JSON.stringify(ip)}`, 'give an IPv4 or IPv6 address, e.g. 198.18.0.2');
  return a;
}

export class BlockTable {
  constructor(
    private readonly blocks: BpfMap,
    private readonly allowlist: BpfMap,
    private readonly clock: MonotonicClock,
  ) {}

  private decode(key: Uint8Array, v: Buffer, at = 0): Block {
    const o = BLOCK.offsets;
    const type = v.readUInt32LE(at + o.type);
    const expires = v.readBigUInt64LE(at + o.expires_ns);
    return {
      ip: decodeAddress(key),
      reason: type === 0 ? 'manual' : ((SECURITY_TYPES as Record<number, string>)[type] ?? `unknown-${type}`),
      createdAt: this.clock.toDate(v.readBigUInt64LE(at + o.created_ns)),
      expiresAt: expires === 0n ? undefined : this.clock.toDate(expires),
      packetsDropped: Number(v.readBigUInt64LE(at + o.packets)),
    };
  }

  /** Every block in the table, expired ones included until expire() removes them. */
  list(): Block[] {
    const d = this.blocks.dump(1024, { fresh: true });
    const out: Block[] = [];
    for (let i = 0; i < d.count; i++) out.push(this.decode(d.keys.subarray(i * 16, i * 16 + 16), d.values, i * d.valueStride));
    return out;
  }

  /** The block on `ip`, if it has one. */
  get(ip: string): Block | undefined {
    const key = addressOrThrow(ip);
    const v = this.blocks.lookup(key);
    return v ? this.decode(key, v) : undefined;
  }

  /** How many blocks the table holds. */
  get size(): number {
    return this.blocks.dump(1024).count;
  }

  /** Blocks `ip` by hand for `ttlMs` (0: until lifted); replaces a block it already has. */
  add(ip: string, ttlMs: number): Block {
    const key = addressOrThrow(ip);
    if (!Number.isInteger(ttlMs) || ttlMs < 0) throw new InvalidArgumentError(`ttlMs must be a non-negative integer, got ${ttlMs}`);
    const now = this.clock.nowNs();
    const v = Buffer.alloc(BLOCK.size);
    v.writeBigUInt64LE(now, BLOCK.offsets.created_ns);
    v.writeBigUInt64LE(ttlMs === 0 ? 0n : now + BigInt(ttlMs) * 1_000_000n, BLOCK.offsets.expires_ns);
    this.blocks.update(key, v);
    return this.decode(key, v);
  }

  /** Lifts the block on `ip`; its last figures, or undefined if it had none. */
  remove(ip: string): Block | undefined {
    const key = addressOrThrow(ip);
    const v = this.blocks.lookupAndDelete(key);
    return v ? this.decode(key, v) : undefined;
  }

  /** Removes the blocks whose time is up; returns them. */
  expire(): Block[] {
    const d = this.blocks.dump(1024, { fresh: true });
    const now = this.clock.nowNs();
    const out: Block[] = [];
    for (let i = 0; i < d.count; i++) {
      const expires = d.values.readBigUInt64LE(i * d.valueStride + BLOCK.offsets.expires_ns);
      if (expires === 0n || expires > now) continue;
      const key = d.keys.subarray(i * 16, i * 16 + 16);
      // Its final figures, as they were at removal.
      const v = this.blocks.lookupAndDelete(key);
      if (v) out.push(this.decode(key, v));
    }
    return out;
  }

  /** Replaces the allowlist: sources in these CIDR blocks are never blocked by a detector. */
  setAllowlist(cidrs: readonly string[]): void {
    const keys = cidrs.map((c) => {
      const p = parseCidr(c);
      if (!p) throw new InvalidArgumentError(`allowlist: not a CIDR block: ${JSON.stringify(c)}`, 'e.g. 10.0.0.0/8 or fd00::/8');
      const k = Buffer.alloc(LPM_KEY.size);
      k.writeUInt32LE(p.prefix128, LPM_KEY.offsets.prefixlen);
      k.set(p.addr, LPM_KEY.offsets.addr);
      return k;
    });
    // An LPM trie has no batch read here: walk it with get_next_key.
    for (const k of this.allowlist.keys()) this.allowlist.delete(k);
    for (const k of keys) this.allowlist.update(k, Buffer.from([1]));
  }
}
