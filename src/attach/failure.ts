import { AttachError, InterfaceNotFoundError, PermissionError, type KubeNetProbeError } from '../errors.js';
import { missingCapabilities } from '../loader/capabilities.js';
import { listInterfaces } from '../netif.js';

const EPERM = 1;
const ENODEV = 19;

/** Turns a failed attach into the error that explains it. */
export function attachFailure(hook: string, iface: string, errno: number, detail?: string): KubeNetProbeError {
  if (errno === EPERM) {
    const missing = missingCapabilities(['CAP_NET_ADMIN', 'CAP_BPF']);
    return new PermissionError(`attach ${hook} ${iface}`, missing.length ? missing : ['CAP_NET_ADMIN']);
  }
  if (errno === ENODEV) return new InterfaceNotFoundError(iface, listInterfaces());
  return new AttachError(hook, iface, errno, detail);
}
