/**
 * One error hierarchy for the whole library. Every error says what went wrong
 * and what to do about it (`hint`), and carries a stable `code` that the CLI
 * and the HTTP API turn into exit codes and responses in one place.
 */
export type ErrorCode =
  | 'INTERFACE_NOT_FOUND'
  | 'INVALID_ARGUMENT'
  | 'PERMISSION_DENIED'
  | 'KERNEL_UNSUPPORTED'
  | 'OBJECT_FILE'
  | 'VERIFIER'
  | 'ALREADY_ATTACHED'
  | 'ATTACH_FAILED'
  | 'CLOSED'
  | 'SYSTEM';

export class KubeNetProbeError extends Error {
  readonly code: ErrorCode;
  /** What the user can do about it. */
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options?: { hint?: string; cause?: unknown }) {
    super(options?.hint ? `${message}\n  hint: ${options.hint}` : message, { cause: options?.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options?.hint;
  }
}

export class InterfaceNotFoundError extends KubeNetProbeError {
  readonly interfaceName: string;
  constructor(name: string, available: readonly string[]) {
    super('INTERFACE_NOT_FOUND', `no such interface "${name}"`, {
      hint: available.length
        ? `interfaces in this network namespace: ${available.join(', ')}`
        : 'this network namespace has no interfaces',
    });
    this.interfaceName = name;
  }
}

export class InvalidArgumentError extends KubeNetProbeError {
  constructor(message: string, hint?: string) {
    super('INVALID_ARGUMENT', message, hint ? { hint } : undefined);
  }
}

export class PermissionError extends KubeNetProbeError {
  /** The capabilities that are missing, e.g. ['CAP_BPF']. */
  readonly missing: readonly string[];
  constructor(action: string, missing: readonly string[], cause?: unknown) {
    super('PERMISSION_DENIED', `${action}: permission denied (missing ${missing.join(' and ')})`, {
      hint: `run as root, or grant ${missing.join(', ')} (e.g. setcap or a container securityContext)`,
      cause,
    });
    this.missing = missing;
  }
}

export class KernelUnsupportedError extends KubeNetProbeError {
  readonly feature: string;
  constructor(feature: string, detail: string) {
    super('KERNEL_UNSUPPORTED', `kernel lacks ${feature}: ${detail}`, {
      hint: 'KubeNetProbe needs Linux 5.18 or later with BPF ring buffers and BTF; TCX needs 6.6',
    });
    this.feature = feature;
  }
}

export class ObjectFileError extends KubeNetProbeError {
  readonly path: string;
  constructor(path: string, problem: string, cause?: unknown) {
    super('OBJECT_FILE', `object file ${path}: ${problem}`, {
      hint: 'rebuild it with `npm run build:bpf`, or pass the path of a valid BPF ELF object',
      cause,
    });
    this.path = path;
  }
}

export class VerifierError extends KubeNetProbeError {
  /** The verifier's (and libbpf's) log for the failed load. */
  readonly log: string;
  /** The program the kernel refused, and the verifier's verdict on it, where the log names them. */
  readonly refused: { program: string; verdict: string | undefined } | undefined;
  constructor(what: string, errno: number, log: string, refused?: { program: string; verdict: string | undefined }) {
    const tail = log.trim().split('\n').slice(-40).join('\n');
    super('VERIFIER', `load ${what}: ${errnoName(errno)}${tail ? `\nverifier log (last lines):\n${tail}` : ''}`);
    this.log = log;
    this.refused = refused;
  }
}

export class AlreadyAttachedError extends KubeNetProbeError {
  constructor(iface: string, hook: string) {
    super('ALREADY_ATTACHED', `attach ${hook} ${iface}: already attached by this monitor`, {
      hint: 'detach it first with detachFromInterface(), or use another monitor',
    });
  }
}

export class AttachError extends KubeNetProbeError {
  readonly errno: number;
  constructor(hook: string, iface: string, errno: number, detail?: string) {
    super('ATTACH_FAILED', `attach ${hook} ${iface}: ${errnoName(errno)}${detail ? ` (${detail})` : ''}`);
    this.errno = errno;
  }
}

export class ClosedError extends KubeNetProbeError {
  constructor(what: string) {
    super('CLOSED', `${what} is closed`);
  }
}

export class SystemError extends KubeNetProbeError {
  readonly errno: number;
  constructor(what: string, errno: number) {
    super('SYSTEM', `${what}: ${errnoName(errno)}`);
    this.errno = errno;
  }
}

const ERRNO: Record<number, string> = {
  1: 'EPERM (operation not permitted)',
  2: 'ENOENT (no such file or entry)',
  4: 'EINTR',
  7: 'E2BIG (too big / table full)',
  9: 'EBADF (bad file descriptor)',
  12: 'ENOMEM (out of memory)',
  13: 'EACCES (permission denied)',
  16: 'EBUSY (resource busy)',
  17: 'EEXIST (already exists)',
  19: 'ENODEV (no such device)',
  22: 'EINVAL (invalid argument)',
  24: 'EMFILE (too many open files)',
  28: 'ENOSPC (no space left)',
  34: 'ERANGE (out of range)',
  95: 'EOPNOTSUPP (operation not supported)',
  524: 'ENOTSUPP (not supported by this kernel)',
  4001: 'LIBBPF_ERRNO__LIBELF (libelf error)',
  4002: 'LIBBPF_ERRNO__FORMAT (not a valid BPF object)',
  4003: 'LIBBPF_ERRNO__KVERSION',
  4004: 'LIBBPF_ERRNO__ENDIAN',
  4005: 'LIBBPF_ERRNO__INTERNAL',
  4006: 'LIBBPF_ERRNO__RELOC (relocation failed)',
  4007: 'LIBBPF_ERRNO__LOAD (load failed)',
  4008: 'LIBBPF_ERRNO__VERIFY (verifier rejected the program)',
  4009: 'LIBBPF_ERRNO__PROG2BIG',
  4010: 'LIBBPF_ERRNO__KVER',
  4011: 'LIBBPF_ERRNO__PROGTYPE',
  4012: 'LIBBPF_ERRNO__WRNGPID',
  4013: 'LIBBPF_ERRNO__INVSEQ',
  4014: 'LIBBPF_ERRNO__NLPARSE',
};

/** "EINVAL (invalid argument)" for 22 or -22. */
export function errnoName(err: number): string {
  const e = Math.abs(err);
  return ERRNO[e] ?? `errno ${e}`;
}
