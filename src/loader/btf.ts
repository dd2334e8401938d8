/**
 * Reads type information from an object's BTF through libbpf: struct layouts
 * (to check the TypeScript decoders against what the compiler laid out) and
 * the offsets of `const volatile` knobs inside .rodata.
 */
import { isNull, libbpf, viewOf, type Ptr } from '../ffi/native.js';

const BTF_KIND_STRUCT = 4;
const BTF_KIND_DATASEC = 15;
const BTF_TYPE_SIZE = 12;
const BTF_MEMBER_SIZE = 12;

export interface StructLayout {
  readonly name: string;
  readonly size: number;
  /** Byte offset of each member. */
  readonly offsets: Readonly<Record<string, number>>;
}

export interface DatasecVar {
  readonly offset: number;
  readonly size: number;
}

function readType(btf: Ptr, id: number): { kind: number; vlen: number; kflag: boolean; sizeOrType: number; view: DataView } {
  const p = libbpf.btf__type_by_id(btf, id) as Ptr | null;
  if (isNull(p)) throw new Error(`BTF type ${id} not found`);
  const head = new DataView(viewOf(p as Ptr, BTF_TYPE_SIZE));
  const info = head.getUint32(4, true);
  const vlen = info & 0xffff;
  const view = new DataView(viewOf(p as Ptr, BTF_TYPE_SIZE + vlen * BTF_MEMBER_SIZE));
  return { kind: (info >>> 24) & 0x1f, vlen, kflag: info >>> 31 === 1, sizeOrType: head.getUint32(8, true), view };
}

/** The layout of `struct name`, or undefined when the BTF has no such struct. */
export function structLayout(btf: Ptr, name: string): StructLayout | undefined {
  const id = libbpf.btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT) as number;
  if (id <= 0) return undefined;
  const t = readType(btf, id);
  const offsets: Record<string, number> = {};
  for (let i = 0; i < t.vlen; i++) {
    const base = BTF_TYPE_SIZE + i * BTF_MEMBER_SIZE;
    const memberName = libbpf.btf__name_by_offset(btf, t.view.getUint32(base, true)) as string;
    const raw = t.view.getUint32(base + 8, true);
    const bits = t.kflag ? raw & 0xffffff : raw;
    offsets[memberName] = bits / 8;
  }
  return { name, size: t.sizeOrType, offsets };
}

/** Variables of a data section such as ".rodata", by name. */
export function datasecVars(btf: Ptr, section: string): Map<string, DatasecVar> {
  const out = new Map<string, DatasecVar>();
  const id = libbpf.btf__find_by_name_kind(btf, section, BTF_KIND_DATASEC) as number;
  if (id <= 0) return out;
  const t = readType(btf, id);
  for (let i = 0; i < t.vlen; i++) {
    const base = BTF_TYPE_SIZE + i * BTF_MEMBER_SIZE;
    const varId = t.view.getUint32(base, true);
    const v = readType(btf, varId);
    const name = libbpf.btf__name_by_offset(btf, v.view.getUint32(0, true)) as string;
    out.set(name, { offset: t.view.getUint32(base + 4, true), size: t.view.getUint32(base + 8, true) });
  }
  return out;
}
