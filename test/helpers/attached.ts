/**
 * What the kernel has attached to an interface, asked independently of the
 * code under test: TCX via BPF_PROG_QUERY, XDP via netlink (libbpf's
 * bpf_xdp_query_id), clsact via `tc`.
 */
import koffi from 'koffi';
import { sh } from './testnet.js';

const lib = koffi.load('libbpf.so.1');
const progQuery = lib.func('int bpf_prog_query_opts(int target, int type, void *opts)');
const xdpQueryId = lib.func('int bpf_xdp_query_id(int ifindex, int flags, _Out_ uint32_t *prog_id)');
const ifNameToIndex = koffi.load('libc.so.6').func('uint32_t if_nametoindex(const char *name)');

const BPF_TCX_INGRESS = 46;
const BPF_TCX_EGRESS = 47;

function tcxCount(ifindex: number, type: number): number {
  // struct bpf_prog_query_opts (libbpf 1.1): sz@0, query_flags@8,
  // attach_flags@12, prog_ids@16, prog_cnt@24, prog_attach_flags@32; 40 bytes.
  const opts = Buffer.alloc(40);
  opts.writeBigUInt64LE(40n, 0);
  const rc = progQuery(ifindex, type, opts) as number;
  if (rc < 0) throw new Error(`bpf_prog_query_opts(${ifindex}, ${type}) = ${rc}`);
  return opts.readUInt32LE(24);
}

export interface Attached {
  tcxIngress: number;
  tcxEgress: number;
  xdpProgId: number;
  clsactQdisc: boolean;
  tcFilters: number;
}

export function attachedTo(ifname: string): Attached {
  const ifindex = ifNameToIndex(ifname) as number;
  if (!ifindex) throw new Error(`no interface ${ifname}`);
  const id = [0];
  const rc = xdpQueryId(ifindex, 0, id) as number;
  if (rc < 0) throw new Error(`bpf_xdp_query_id = ${rc}`);
  const qdiscs = sh('tc', ['qdisc', 'show', 'dev', ifname]);
  const filters = ['ingress', 'egress']
    .map((d) => (qdiscs.includes('clsact') ? sh('tc', ['filter', 'show', 'dev', ifname, d]) : ''))
    .join('');
  return {
    tcxIngress: tcxCount(ifindex, BPF_TCX_INGRESS),
    tcxEgress: tcxCount(ifindex, BPF_TCX_EGRESS),
    xdpProgId: id[0]!,
    clsactQdisc: qdiscs.includes('clsact'),
    tcFilters: (filters.match(/^filter .* handle /gm) ?? []).length,
  };
}

export function nothingAttached(a: Attached): boolean {
  return a.tcxIngress === 0 && a.tcxEgress === 0 && a.xdpProgId === 0 && !a.clsactQdisc && a.tcFilters === 0;
}

export async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
