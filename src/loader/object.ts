/**
 * BPF objects, in two stages as cilium/ebpf has them: an ObjectSpec is an
 * opened ELF object that can still be changed (map sizes, knobs); load()
 * turns it into a Collection of loaded programs and maps.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { isNull, libbpf, viewOf, type Ptr } from '../ffi/native.js';
import { ClosedError, InvalidArgumentError, KubeNetProbeError, ObjectFileError, PermissionError, SystemError, VerifierError, errnoName } from '../errors.js';
import { datasecVars, structLayout, type DatasecVar, type StructLayout } from './btf.js';
import { refusedProgram, withLibbpfLog } from './libbpf-log.js';
import { BpfMap, MapType, type MapInfo } from './map.js';
import { missingCapabilities } from './capabilities.js';
import { assertKernelSupported } from './features.js';

const EPERM = 1;
const EAGAIN = 11;
const EINVAL = 22;
const EACCES = 13;
const LIBBPF_ERRNO__VERIFY = 4008;
const LIBBPF_ERRNO__LOAD = 4007;

export interface ProgramInfo {
  name: string;
  section: string;
}

function mapInfo(map: Ptr): MapInfo {
  return {
    name: libbpf.bpf_map__name(map) as string,
    type: libbpf.bpf_map__type(map) as number,
    keySize: libbpf.bpf_map__key_size(map) as number,
    valueSize: libbpf.bpf_map__value_size(map) as number,
    maxEntries: libbpf.bpf_map__max_entries(map) as number,
  };
}

function eachMap(obj: Ptr): Ptr[] {
  const out: Ptr[] = [];
  let m: Ptr | null = null;
  for (;;) {
    m = libbpf.bpf_object__next_map(obj, m) as Ptr | null;
    if (isNull(m)) return out;
    out.push(m as Ptr);
  }
}

function eachProgram(obj: Ptr): Ptr[] {
  const out: Ptr[] = [];
  let p: Ptr | null = null;
  for (;;) {
    p = libbpf.bpf_object__next_program(obj, p) as Ptr | null;
    if (isNull(p)) return out;
    out.push(p as Ptr);
  }
}

/** Checks the file before libbpf sees it, for a clearer error than libelf's. */
function checkElf(path: string): void {
  let fd: number;
  try {
    if (!statSync(path).isFile()) throw new ObjectFileError(path, 'not a regular file');
    fd = openSync(path, 'r');
  } catch (err) {
    if (err instanceof ObjectFileError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new ObjectFileError(path, code === 'ENOENT' ? 'no such file' : `cannot read (${code ?? String(err)})`, err);
  }
  try {
    const head = Buffer.alloc(20);
    const n = readSync(fd, head, 0, 20, 0);
    if (n < 20 || head.readUInt32BE(0) !== 0x7f454c46) throw new ObjectFileError(path, 'not an ELF file (corrupt or wrong file)');
    // e_machine 247 = EM_BPF
    if (head.readUInt16LE(18) !== 247) throw new ObjectFileError(path, 'an ELF file, but not a BPF object (e_machine is not EM_BPF)');
  } finally {
    closeSync(fd);
  }
}

/** The kernel would not create a map (too large for memory or its limits). */
export class MapCreateError extends SystemError {
  constructor(
    path: string,
    readonly mapName: string,
    errno: number,
  ) {
    super(`load ${path}: the kernel could not create map ${mapName}`, errno);
  }
}

/** The load was interrupted by signals; opening and loading again usually works. */
export class LoadInterruptedError extends SystemError {
  constructor(path: string) {
    super(`load ${path}: the verifier was interrupted by signals`, EAGAIN);
  }
}

export class ObjectSpec {
  readonly path: string;
  private obj: Ptr | null;

  private constructor(path: string, obj: Ptr) {
    this.path = path;
    this.obj = obj;
  }

  /** Opens (parses) an object file; nothing is loaded into the kernel yet. */
  static open(path: string): ObjectSpec {
    checkElf(path);
    const { result, log } = withLibbpfLog(() => libbpf.bpf_object__open_file(path, null) as Ptr | null);
    if (isNull(result)) {
      const detail = log.trim().split('\n').slice(-3).join('; ');
      throw new ObjectFileError(path, `libbpf cannot open it${detail ? `: ${detail}` : ''} (corrupt or truncated?)`);
    }
    return new ObjectSpec(path, result as Ptr);
  }

  private handle(): Ptr {
    if (this.obj === null) throw new ClosedError(`object spec ${this.path}`);
    return this.obj;
  }

  maps(): MapInfo[] {
    return eachMap(this.handle()).map(mapInfo);
  }

  programs(): ProgramInfo[] {
    return eachProgram(this.handle()).map((p) => ({
      name: libbpf.bpf_program__name(p) as string,
      section: libbpf.bpf_program__section_name(p) as string,
    }));
  }

  hasProgram(name: string): boolean {
    return eachProgram(this.handle()).some((p) => libbpf.bpf_program__name(p) === name);
  }

  /** Leaves a program out of load() (one the kernel cannot take, say). */
  setAutoload(progName: string, autoload: boolean): void {
    const prog = eachProgram(this.handle()).find((p) => libbpf.bpf_program__name(p) === progName);
    if (prog === undefined) throw new ObjectFileError(this.path, `has no program named ${progName}`);
    const rc = libbpf.bpf_program__set_autoload(prog, autoload) as number;
    if (rc < 0) throw new SystemError(`program ${progName}: set autoload`, -rc);
  }

  private findMap(name: string): Ptr {
    const m = eachMap(this.handle()).find((p) => libbpf.bpf_map__name(p) === name);
    if (m === undefined) throw new ObjectFileError(this.path, `has no map named ${name}`);
    return m;
  }

  /** Resizes a map before load (ring buffers: a power of two multiple of the page size). */
  setMaxEntries(mapName: string, n: number): void {
    const map = this.findMap(mapName);
    if (!Number.isInteger(n) || n <= 0 || n > 0xffffffff) throw new InvalidArgumentError(`map ${mapName}: size ${n} is not a positive 32-bit integer`);
    if ((libbpf.bpf_map__type(map) as number) === MapType.RINGBUF && (n & (n - 1)) !== 0) {
      throw new InvalidArgumentError(`ring buffer ${mapName}: size ${n} is not a power of two`, 'use e.g. 262144 or 4194304');
    }
    const rc = libbpf.bpf_map__set_max_entries(map, n) as number;
    if (rc < 0) throw new InvalidArgumentError(`map ${mapName}: cannot set size ${n} (errno ${-rc})`);
  }

  /**
   * Sets a `const volatile` knob in .rodata before load. The verifier then
   * sees it as a constant and prunes code that it turns off.
   */
  setConstant(name: string, value: number | boolean): void {
    const { view, v } = this.variable('.rodata', name);
    const n = typeof value === 'boolean' ? (value ? 1 : 0) : value;
    if (!Number.isInteger(n) || n < 0 || n >= 2 ** (8 * Math.min(v.size, 6))) {
      throw new InvalidArgumentError(`constant ${name}: ${value} does not fit in ${v.size} bytes`);
    }
    switch (v.size) {
      case 1: view.setUint8(v.offset, n); break;
      case 2: view.setUint16(v.offset, n, true); break;
      case 4: view.setUint32(v.offset, n, true); break;
      case 8: view.setBigUint64(v.offset, BigInt(n), true); break;
      default: throw new InvalidArgumentError(`constant ${name} has unsupported size ${v.size}`);
    }
  }

  /**
   * Sets the initial bytes of a global in .data (a struct, say) before load.
   * Unlike a constant it stays writable: Collection.writeVariable() changes
   * it while the programs run.
   */
  setVariable(name: string, bytes: Uint8Array): void {
    const { view, v } = this.variable('.data', name);
    if (bytes.length !== v.size) throw new InvalidArgumentError(`variable ${name} is ${v.size} bytes, got ${bytes.length}`);
    new Uint8Array(view.buffer, view.byteOffset + v.offset, v.size).set(bytes);
  }

  /** A copy of a .data or .rodata global's initial bytes. */
  variableBytes(section: '.data' | '.rodata', name: string): Buffer {
    const { view, v } = this.variable(section, name);
    return Buffer.from(new Uint8Array(view.buffer, view.byteOffset + v.offset, v.size));
  }

  private variable(section: '.data' | '.rodata', name: string): { view: DataView; v: DatasecVar } {
    const obj = this.handle();
    const btf = libbpf.bpf_object__btf(obj) as Ptr | null;
    if (isNull(btf)) throw new ObjectFileError(this.path, 'has no BTF (build it with clang -g)');
    const v = datasecVars(btf as Ptr, section).get(name);
    if (!v) throw new ObjectFileError(this.path, `has no ${section === '.rodata' ? 'constant' : 'variable'} named ${name}`);
    const map = eachMap(obj).find((m) => (libbpf.bpf_map__name(m) as string).endsWith(section));
    if (map === undefined) throw new ObjectFileError(this.path, `has no ${section} map`);
    const size = [0];
    const ptr = libbpf.bpf_map__initial_value(map, size) as Ptr | null;
    if (isNull(ptr) || v.offset + v.size > size[0]!) throw new ObjectFileError(this.path, `cannot reach ${name} in ${section}`);
    return { view: new DataView(viewOf(ptr as Ptr, size[0]!)), v };
  }

  /** Layout of a struct from the object's BTF. */
  structLayout(name: string): StructLayout | undefined {
    const btf = libbpf.bpf_object__btf(this.handle()) as Ptr | null;
    return isNull(btf) ? undefined : structLayout(btf as Ptr, name);
  }

  /** Loads every program and map into the kernel. The spec is consumed. */
  load(): Collection {
    const obj = this.handle();
    const missing = missingCapabilities(['CAP_BPF', 'CAP_PERFMON', 'CAP_NET_ADMIN']);
    if (missing.length) throw new PermissionError(`load ${this.path}`, missing);
    assertKernelSupported();

    const { result: rc, log } = withLibbpfLog(() => libbpf.bpf_object__load(obj) as number);
    if (rc < 0) {
      const errno = -rc;
      // The verifier gives up when a signal is pending (profilers, busy
      // timers); libbpf's own retries were not enough. Not a verifier verdict.
      if (errno === EAGAIN) throw new LoadInterruptedError(this.path);
      const mapFailed = /map '([^']+)': failed to create/.exec(log);
      if (mapFailed) throw new MapCreateError(this.path, mapFailed[1]!, errno);
      const verifierSpoke = /BEGIN PROG LOAD LOG|processed \d+ insns/.test(log);
      if ((errno === EPERM || errno === EACCES) && !verifierSpoke) {
        // The capabilities were checked above, so something else said no.
        throw new KubeNetProbeError('PERMISSION_DENIED', `load ${this.path}: the kernel refused (${errnoName(errno)}) although CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN are held`, {
          hint: 'look for kernel lockdown (/sys/kernel/security/lockdown), a seccomp profile that blocks bpf(2) (container runtimes), or an LSM policy',
        });
      }
      if (verifierSpoke || errno === LIBBPF_ERRNO__VERIFY || errno === LIBBPF_ERRNO__LOAD || errno === EACCES || errno === EINVAL) {
        throw new VerifierError(this.path, errno, log, refusedProgram(log));
      }
      throw new KubeNetProbeError('OBJECT_FILE', `load ${this.path}: errno ${errno}\n${log.trim().split('\n').slice(-10).join('\n')}`);
    }
    this.obj = null;
    return new Collection(this.path, obj);
  }

  close(): void {
    if (this.obj !== null) {
      libbpf.bpf_object__close(this.obj);
      this.obj = null;
    }
  }
}

export class BpfProgram {
  constructor(
    readonly name: string,
    readonly section: string,
    readonly fd: number,
  ) {}
}

/** Loaded programs and maps. close() releases them (links must go first). */
export class Collection {
  readonly path: string;
  private obj: Ptr | null;
  private readonly mapsByName = new Map<string, BpfMap>();
  private readonly programsByName = new Map<string, BpfProgram>();

  constructor(path: string, obj: Ptr) {
    this.path = path;
    this.obj = obj;
    for (const m of eachMap(obj)) {
      const info = mapInfo(m);
      this.mapsByName.set(info.name, new BpfMap(info, libbpf.bpf_map__fd(m) as number));
    }
    for (const p of eachProgram(obj)) {
      const name = libbpf.bpf_program__name(p) as string;
      const fd = libbpf.bpf_program__fd(p) as number;
      if (fd < 0) continue; // left out of the load (setAutoload)
      this.programsByName.set(name, new BpfProgram(name, libbpf.bpf_program__section_name(p) as string, fd));
    }
  }

  get closed(): boolean {
    return this.obj === null;
  }

  map(name: string): BpfMap {
    if (this.obj === null) throw new ClosedError(`collection ${this.path}`);
    const m = this.mapsByName.get(name);
    if (!m) throw new ObjectFileError(this.path, `has no map named ${name} (is it a KubeNetProbe object?)`);
    return m;
  }

  /** Rewrites a .data global while the programs run (the section is one array element). */
  writeVariable(name: string, bytes: Uint8Array): void {
    const { map, v } = this.dataVariable(name);
    if (bytes.length !== v.size) throw new InvalidArgumentError(`variable ${name} is ${v.size} bytes, got ${bytes.length}`);
    const key = Buffer.alloc(4);
    const value = map.lookup(key);
    if (!value) throw new ObjectFileError(this.path, 'has an empty .data map');
    value.set(bytes, v.offset);
    map.update(key, value);
  }

  /** A .data global's current bytes, as the programs see them. */
  readVariable(name: string): Buffer {
    const { map, v } = this.dataVariable(name);
    const value = map.lookup(Buffer.alloc(4));
    if (!value) throw new ObjectFileError(this.path, 'has an empty .data map');
    return Buffer.from(value.subarray(v.offset, v.offset + v.size));
  }

  private dataVariable(name: string): { map: BpfMap; v: DatasecVar } {
    if (this.obj === null) throw new ClosedError(`collection ${this.path}`);
    const btf = libbpf.bpf_object__btf(this.obj) as Ptr | null;
    const v = isNull(btf) ? undefined : datasecVars(btf as Ptr, '.data').get(name);
    const map = [...this.mapsByName.entries()].find(([n]) => n.endsWith('.data'))?.[1];
    if (!v || !map) throw new ObjectFileError(this.path, `has no variable named ${name}`);
    return { map, v };
  }

  program(name: string): BpfProgram {
    if (this.obj === null) throw new ClosedError(`collection ${this.path}`);
    const p = this.programsByName.get(name);
    if (!p) throw new ObjectFileError(this.path, `has no program named ${name} (is it a KubeNetProbe object?)`);
    return p;
  }

  structLayout(name: string): StructLayout | undefined {
    if (this.obj === null) throw new ClosedError(`collection ${this.path}`);
    const btf = libbpf.bpf_object__btf(this.obj) as Ptr | null;
    return isNull(btf) ? undefined : structLayout(btf as Ptr, name);
  }

  close(): void {
    if (this.obj !== null) {
      libbpf.bpf_object__close(this.obj);
      this.obj = null;
    }
  }
}
