/** Network interface names: validation and lookup in this network namespace. */
import { readdirSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { libc } from './ffi/native.js';
import { InterfaceNotFoundError, InvalidArgumentError } from './errors.js';

/**
 * What the kernel accepts as a name (dev_valid_name): 1-15 bytes, not "." or
 * "..", no "/", ":" or white space. We also keep to printable ASCII.
 */
const IFNAME = /^[\x21-\x7e]{1,15}$/;

export function validateInterfaceName(name: unknown): string {
  if (typeof name !== 'string' || !IFNAME.test(name) || name === '.' || name === '..' || /[/:]/.test(name)) {
    throw new InvalidArgumentError(
      `invalid interface name ${JSON.stringify(name)}`,
      'an interface name is 1-15 printable characters without "/", ":" or spaces, e.g. eth0',
    );
  }
  return name;
}

export function listInterfaces(): string[] {
  try {
    return readdirSync('/sys/class/net').sort();
  } catch {
    return [];
  }
}

/** The ifindex of `name`, or InterfaceNotFoundError. */
export function interfaceIndex(name: string): number {
  validateInterfaceName(name);
  const idx = libc.if_nametoindex(name) as number;
  if (idx === 0) throw new InterfaceNotFoundError(name, listInterfaces());
  return idx;
}

const nameBuf = Buffer.alloc(16);

/** The current name of an ifindex, or undefined when it no longer exists. */
export function interfaceName(ifindex: number): string | undefined {
  const p = libc.if_indextoname(ifindex, nameBuf);
  if (p === null || p === 0n) return undefined;
  const end = nameBuf.indexOf(0);
  return nameBuf.toString('utf8', 0, end < 0 ? 16 : end);
}

/** The kernel driver behind an interface (e.g. "mlx5_core"), or undefined for virtual ones (veth, bridge, ...). */
export function driverOf(name: string): string | undefined {
  validateInterfaceName(name);
  try {
    return basename(readlinkSync(`/sys/class/net/${name}/device/driver`));
  } catch {
    return undefined;
  }
}
