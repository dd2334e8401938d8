/**
 * Raw bindings to the system libbpf (>= 1.0) and libc through koffi.
 *
 * Nothing here is exported from the package: the loader wraps every call,
 * turns negative returns into typed errors, and keeps pointers out of sight.
 * koffi 3 represents pointers as bigint; NULL comes back as null or 0n.
 */
import koffi from 'koffi';
import type { LibraryHandle } from 'koffi';
import { KubeNetProbeError } from '../errors.js';

export type Ptr = bigint;

function loadLibrary(names: readonly string[], pkg: string): LibraryHandle {
  let last: unknown;
  for (const name of names) {
    try {
      return koffi.load(name);
    } catch (err) {
      last = err;
    }
  }
  throw new KubeNetProbeError('SYSTEM', `cannot load ${names[0]}`, {
    hint: `install it: apt-get install ${pkg}`,
    cause: last,
  });
}

const bpf = loadLibrary(['libbpf.so.1', 'libbpf.so'], 'libbpf1');
const c = loadLibrary(['libc.so.6'], 'libc6');

/** The callback libbpf logs through (va_list is passed on as a pointer). */
export const LibbpfPrintFn = koffi.proto('int knp_libbpf_print_fn(int level, const char *fmt, void *args)');

export const libbpf = {
  // objects and programs
  bpf_object__open_file: bpf.func('void *bpf_object__open_file(const char *path, void *opts)'),
  bpf_object__load: bpf.func('int bpf_object__load(void *obj)'),
  bpf_object__close: bpf.func('void bpf_object__close(void *obj)'),
  bpf_object__btf: bpf.func('void *bpf_object__btf(void *obj)'),
  bpf_object__next_map: bpf.func('void *bpf_object__next_map(void *obj, void *map)'),
  bpf_object__next_program: bpf.func('void *bpf_object__next_program(void *obj, void *prog)'),
  bpf_program__name: bpf.func('const char *bpf_program__name(void *prog)'),
  bpf_program__section_name: bpf.func('const char *bpf_program__section_name(void *prog)'),
  bpf_program__fd: bpf.func('int bpf_program__fd(void *prog)'),
  bpf_program__set_autoload: bpf.func('int bpf_program__set_autoload(void *prog, bool autoload)'),
  bpf_map__name: bpf.func('const char *bpf_map__name(void *map)'),
  bpf_map__fd: bpf.func('int bpf_map__fd(void *map)'),
  bpf_map__type: bpf.func('int bpf_map__type(void *map)'),
  bpf_map__key_size: bpf.func('uint32_t bpf_map__key_size(void *map)'),
  bpf_map__value_size: bpf.func('uint32_t bpf_map__value_size(void *map)'),
  bpf_map__max_entries: bpf.func('uint32_t bpf_map__max_entries(void *map)'),
  bpf_map__set_max_entries: bpf.func('int bpf_map__set_max_entries(void *map, uint32_t max)'),
  bpf_map__initial_value: bpf.func('void *bpf_map__initial_value(void *map, _Out_ size_t *psize)'),
  // BTF
  btf__find_by_name_kind: bpf.func('int32_t btf__find_by_name_kind(void *btf, const char *name, uint32_t kind)'),
  btf__type_by_id: bpf.func('void *btf__type_by_id(void *btf, uint32_t id)'),
  btf__name_by_offset: bpf.func('const char *btf__name_by_offset(void *btf, uint32_t off)'),
  btf__resolve_size: bpf.func('int64_t btf__resolve_size(void *btf, uint32_t id)'),
  // maps (low-level, by fd)
  bpf_map_lookup_elem: bpf.func('int bpf_map_lookup_elem(int fd, void *key, void *value)'),
  bpf_map_update_elem: bpf.func('int bpf_map_update_elem(int fd, void *key, void *value, uint64_t flags)'),
  bpf_map_delete_elem: bpf.func('int bpf_map_delete_elem(int fd, void *key)'),
  bpf_map_lookup_and_delete_elem: bpf.func('int bpf_map_lookup_and_delete_elem(int fd, void *key, void *value)'),
  bpf_map_get_next_key: bpf.func('int bpf_map_get_next_key(int fd, void *key, void *next)'),
  bpf_map_lookup_batch: bpf.func(
    'int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, void *count, void *opts)',
  ),
  bpf_map_delete_batch: bpf.func('int bpf_map_delete_batch(int fd, void *keys, void *count, void *opts)'),
  // attach
  bpf_link_create: bpf.func('int bpf_link_create(int prog_fd, int target_fd, int attach_type, void *opts)'),
  bpf_tc_hook_create: bpf.func('int bpf_tc_hook_create(void *hook)'),
  bpf_tc_hook_destroy: bpf.func('int bpf_tc_hook_destroy(void *hook)'),
  bpf_tc_attach: bpf.func('int bpf_tc_attach(void *hook, void *opts)'),
  bpf_tc_detach: bpf.func('int bpf_tc_detach(void *hook, void *opts)'),
  bpf_tc_query: bpf.func('int bpf_tc_query(void *hook, void *opts)'),
  bpf_iter_create: bpf.func('int bpf_iter_create(int link_fd)'),
  bpf_obj_get_info_by_fd: bpf.func('int bpf_obj_get_info_by_fd(int fd, void *info, void *len)'),
  // testing and probing
  bpf_prog_test_run_opts: bpf.func('int bpf_prog_test_run_opts(int prog_fd, void *opts)'),
  libbpf_probe_bpf_map_type: bpf.func('int libbpf_probe_bpf_map_type(int map_type, void *opts)'),
  libbpf_probe_bpf_prog_type: bpf.func('int libbpf_probe_bpf_prog_type(int prog_type, void *opts)'),
  libbpf_num_possible_cpus: bpf.func('int libbpf_num_possible_cpus()'),
  libbpf_set_print: bpf.func('void *libbpf_set_print(knp_libbpf_print_fn *fn)'),
  libbpf_major_version: bpf.func('uint32_t libbpf_major_version()'),
  libbpf_minor_version: bpf.func('uint32_t libbpf_minor_version()'),
};

export const libc = {
  mmap: c.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)'),
  munmap: c.func('int munmap(void *addr, size_t len)'),
  close: c.func('int close(int fd)'),
  if_nametoindex: c.func('uint32_t if_nametoindex(const char *name)'),
  if_indextoname: c.func('void *if_indextoname(uint32_t index, void *buf)'),
  vsnprintf: c.func('int vsnprintf(void *buf, size_t size, const char *fmt, void *args)'),
  getpagesize: c.func('int getpagesize()'),
  clock_getres: c.func('int clock_getres(int clk, void *ts)'),
  socket: c.func('int socket(int domain, int type, int protocol)'),
  bind: c.func('int bind(int fd, void *addr, uint32_t len)'),
  recv: c.func('intptr_t recv(int fd, void *buf, size_t len, int flags)'),
  send: c.func('intptr_t send(int fd, const void *buf, size_t len, int flags)'),
  setsockopt: c.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
  poll: c.func('int poll(void *fds, uint64_t nfds, int timeout)'),
  mallopt: c.func('int mallopt(int param, int value)'),
};

export const MAP_FAILED = (1n << 64n) - 1n;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 1;

export function isNull(p: unknown): boolean {
  return p === null || p === undefined || p === 0n || p === 0;
}

/** errno of the last failed libc/libbpf call made on this thread. */
export function lastErrno(): number {
  return koffi.errno();
}

/** A live ArrayBuffer over native memory (no copy). */
export function viewOf(p: Ptr, len: number): ArrayBuffer {
  return koffi.view(p, len);
}

export function cString(p: unknown): string {
  if (isNull(p)) return '';
  return koffi.decode(p, 'const char *') as string;
}

export { koffi };
