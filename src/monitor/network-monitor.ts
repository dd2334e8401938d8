/**
 * NetworkMonitor: the design note's API (NewNetworkMonitor, AttachToInterface,
 * StartEventProcessing, GetPacketStats, GetFlowStats, Close) in TypeScript.
 *
 * Extending it, one place each (docs/extending.md walks through it):
 *   - a map: declare it in bpf/, read it here through `this.coll.map(name)`;
 *   - an event type: add a struct to bpf/kubenetprobe.h, a layout and decoder
 *     in src/abi/, and an entry in `eventRings()` below;
 *   - a stat: add a slot to enum knp_counter and a name to COUNTER.
 */
import { EventEmitter } from 'node:events';
import {
  ALL_LAYOUTS,
  COUNTER,
  COUNTER_SLOTS,
  CPU_STATE,
  FLOW_EVICT,
  FLOW_KEY,
  FLOW_READ_CFG,
  GLOBAL_COUNTERS,
  HOOKS,
  IFACE_COUNTERS,
  IFACE_KEY,
  IFACE_FLAG,
  IFACE_FLAG_SLOTS,
  IFACE_SLOT,
  OUTCOMES,
} from '../abi/layouts.js';
import { decodeFlowKey, decodeFlowValuePerCpu, decodePacketInfo, decodeSecurityEvent, tcpFlagNames, type RawFlowValue } from '../abi/decode.js';
import { AlreadyAttachedError, ClosedError, InvalidArgumentError, KernelUnsupportedError, KubeNetProbeError, ObjectFileError, PermissionError, VerifierError, errnoName } from '../errors.js';
import { LoadInterruptedError, MapCreateError, ObjectSpec, type Collection } from '../loader/object.js';
import { RingBufferReader, pageSize } from '../loader/ringbuf.js';
import { possibleCpus, sumPerCpuU64, u32, type BpfMap, type MapDump } from '../loader/map.js';
import { atLeast, kernelFeatures } from '../loader/features.js';
import { MapIterator } from '../loader/map-iter.js';
import { FlowMirror } from './flow-mirror.js';
import { FlowEvictor } from './flow-evictor.js';
import { FLOW_KEY_WORDS, upFrontRoom } from './flow-key-index.js';
import { missingCapabilities } from '../loader/capabilities.js';
import { attachXdp, type XdpMode } from '../attach/xdp.js';
import { tryAttachTcx, type TcDirection } from '../attach/tcx.js';
import { attachClsact } from '../attach/clsact.js';
import type { Attachment, AttachMode } from '../attach/attachment.js';
import { interfaceIndex, validateInterfaceName } from '../netif.js';
import { autoXdpMode } from '../attach/xdp-policy.js';
import { InterfaceNames } from './interface-names.js';
import { builtinObjectPath } from '../paths.js';
import { MonotonicClock, type JiffiesAnchor } from './clock.js';
import { LazyEvictedFlow, flowStatsOf, type FlowDecodeContext } from './flow-decode.js';
import { FlowCounterSums, FlowSnapshot, type EvictedFlow, type FlowCounterView, type MirrorRead } from './flow-snapshot.js';
import { EventQueue } from './event-queue.js';
import { BlockTable } from './blocks.js';
import { DEFAULT_DETECTOR_CONFIG, TCP_FLAG_DETECTORS, encodeDetectorConfig, mergeDetectorConfig, type DetectorConfig } from './detectors.js';
import { describeSecurityEvent } from './security-text.js';
import type {
  Block,
  BlockChange,
  FlowStats,
  InterfaceCounters,
  LostEvents,
  MonitorEvent,
  OutcomeCounts,
  PacketInfo,
  PacketStats,
  SecurityEvent,
} from '../types.js';

const MAP = {
  flows: 'knp_flows',
  ifaceSlots: 'knp_iface_slots',
  ifaceStats: 'knp_iface_stats',
  global: 'knp_global',
  cpuState: 'knp_cpu_state',
  packetEvents: 'knp_packet_events',
  securityEvents: 'knp_security_events',
  blocks: 'knp_blocks',
  allowlist: 'knp_allowlist',
  ifaceFlags: 'knp_iface_flags',
  ifaceFlagSlots: 'knp_iface_flag_slots',
  flowReadCfg: 'knp_flow_read_cfg',
  flowEvictBatch: 'knp_flow_evict_batch',
} as const;

/** The detectors' settings in the kernel (struct knp_detect_config in .data). */
const DETECT_CONFIG_VAR = 'knp_detect_cfg';


const PROG = {
  tcIngress: 'tc_ingress',
  tcEgress: 'tc_egress',
  /** Generic mode: see bpf/monitor.bpf.c for why it is not frags-aware. */
  xdpGeneric: 'xdp_ingress',
  xdpNative: 'xdp_ingress_frags',
  flowRead: 'knp_flow_read',
  flowEvict: 'knp_flow_evict',
} as const;

/** TCP FIN and RST: a flow that has seen one has ended. */
const TCP_ENDED = 0x01 | 0x04;

/** The per-CPU loop bound in bpf/flow-read.bpf.h (KNP_FLOW_READ_MAX_CPUS). */
const FLOW_READ_MAX_CPUS = 1024;
/** Flows per run of the evict program (KNP_FLOW_EVICT_BATCH in bpf/flow-evict.bpf.h). */
const FLOW_EVICT_BATCH = 4096;
/** A delta read asks for flows seen since its predecessor began, less this (see flow-read.bpf.h). */
const FLOW_READ_MARGIN_JIFFIES = 2;
/** Every this many delta reads, one full read: flows the mirror holds but the kernel lost go. */
const FLOW_READ_FULL_EVERY = 60;

export interface NetworkMonitorOptions {
  /** Flows the kernel table holds; beyond it inserts fail and are counted. Default 65536. */
  flowTableCapacity?: number;
  /** Packet-event ring size in bytes (power of two, >= page size). Default 4 MiB. */
  packetEventRingBytes?: number;
  /** Security-event ring size in bytes (power of two, >= page size). Default 256 KiB. */
  securityEventRingBytes?: number;
  /** One packet event per N packets per CPU; 0 turns packet events off. Default 100. */
  packetSampleRate?: number;
  /** Report NULL, XMAS, FIN, SYN+FIN and SYN+RST TCP packets. Default true. false takes them out of `detectors.enabled`. */
  detectTcpFlagAnomalies?: boolean;
  /** Detector thresholds and mode; what is left out keeps its default (DEFAULT_DETECTOR_CONFIG). Changeable later with configureDetectors(). */
  detectors?: Partial<DetectorConfig>;
  /** CIDR blocks whose sources enforce mode never blocks. Default none. */
  allowlist?: string[];
  /**
   * How readFlowSnapshotAsync() (the agent's every-second read) reads the
   * flow table. 'iterator': a BPF iterator that sums each flow's per-CPU
   * copies in the kernel and writes out only the flows that changed since
   * the last read (kernel BTF needed); 'batch': every flow with every CPU's
   * copy (BPF_MAP_LOOKUP_BATCH). 'auto' (default): the iterator where the
   * kernel takes it, else batch.
   */
  flowRead?: 'auto' | 'iterator' | 'batch';
  /**
   * How evictIdle() and evictIdleFlows() take flows out of the table.
   * 'program': the knp_flow_evict program, up to 4096 flows per system call,
   * summed over CPUs in the kernel (kernel 5.19 or later);
   * 'lookup-and-delete': one BPF_MAP_LOOKUP_AND_DELETE_ELEM per flow.
   * 'auto' (default): the program where the kernel takes it.
   */
  flowEvict?: 'auto' | 'program' | 'lookup-and-delete';
}

/** 4 Mi flows: 192 MiB of values per CPU already. */
export const MAX_FLOW_TABLE_CAPACITY = 1 << 22;

export const DEFAULT_OPTIONS: Required<NetworkMonitorOptions> = {
  flowTableCapacity: 65536,
  packetEventRingBytes: 4 << 20,
  securityEventRingBytes: 256 << 10,
  packetSampleRate: 100,
  detectTcpFlagAnomalies: true,
  detectors: {},
  allowlist: [],
  flowRead: 'auto',
  flowEvict: 'auto',
};

/**
 * readFlowSnapshotAsync()'s view of each batch as it arrives: keys as 32-bit
 * words (flow i at i * 11) and the summed counters of flows start .. start +
 * count; from a mirror, also the free slots (removed) and which read wrote what.
 */
export type FlowBatchHandler = (keyWords: Uint32Array, counts: FlowCounterView, start: number, count: number, removed?: Uint8Array, mirror?: MirrorRead) => void;

/** How the monitor reads the flow table for readFlowSnapshotAsync(). */
export interface FlowReadInfo {
  method: 'iterator' | 'batch';
  /** Why this method (the iterator's absence, when it is absent). */
  detail: string;
  /** The last iterator read: whether it was a full one, how many flows it wrote out, how many the table then held. */
  last?: { full: boolean; records: number; flows: number };
}

/** How evictIdle() takes flows out of the kernel table, and why. */
export interface FlowEvictInfo {
  /** 'program': a batch at a time by the knp_flow_evict program, one system call each; 'lookup-and-delete': one call per flow. */
  method: 'program' | 'lookup-and-delete';
  detail: string;
}

/** XDP mode per interface; 'auto' is explained in attach/xdp-policy.ts. */
export type XdpChoice = 'auto' | 'off' | XdpMode;

export interface TcOptions {
  ingress?: boolean;
  egress?: boolean;
  /** 'auto': TCX links where the kernel has them (6.6+), else clsact. */
  mode?: 'auto' | 'tcx' | 'clsact';
}

export interface AttachOptions {
  /** Report frames arriving here from source addresses no real host has (loopback, multicast, reserved). Default false. */
  martians?: boolean;
  xdp?: XdpChoice;
  /** true (default): both directions, auto mode. false: no TC. */
  tc?: boolean | TcOptions;
}

export interface AttachedInterface {
  name: string;
  ifindex: number;
  hooks: { hook: Attachment['hook']; mode: AttachMode; link: boolean }[];
  /** Choices made on the caller's behalf (fallbacks, skipped hooks) and why. */
  notes: string[];
}

export interface EventProcessingOptions {
  /** Records read per ring per event-loop turn. Default 8192. */
  budget?: number;
  /** How often kernel drop counters are checked for 'lost' events, in ms. Default 1000. */
  lossCheckIntervalMs?: number;
  /**
   * Packet events: after a wakeup, wait this long before listening for the
   * next one (the ring is drained at once, and again when the wait ends), so
   * that sampled events at a high packet rate wake the process at most
   * 1000 / N times a second instead of thousands. Default 50; 0 wakes on every
   * record. Security events always wake at once. docs/performance.md has the
   * numbers.
   */
  packetWakeIntervalMs?: number;
}

export interface NetworkMonitorEvents {
  packet: [PacketInfo];
  security: [SecurityEvent];
  /** A source blocked or unblocked (enforce mode, by hand, expiry). */
  block: [BlockChange];
  lost: [LostEvents];
  error: [Error];
}

function checkRingSize(name: string, n: number): void {
  if (!Number.isInteger(n) || n < pageSize || (n & (n - 1)) !== 0) {
    throw new InvalidArgumentError(`${name} must be a power of two of at least ${pageSize} bytes, got ${n}`);
  }
}

function zeroCounts(): OutcomeCounts {
  return { total: 0, parsed: 0, nonIp: 0, truncated: 0, malformed: 0 };
}

function addCounts(into: OutcomeCounts, from: OutcomeCounts): void {
  into.total += from.total;
  for (const o of OUTCOMES) into[o] += from[o];
}

export class NetworkMonitor extends EventEmitter<NetworkMonitorEvents> {
  readonly options: Readonly<Required<NetworkMonitorOptions>>;
  readonly objectPath: string;
  private coll: Collection | null;
  private readonly attached = new Map<number, { info: AttachedInterface; attachments: Attachment[] }>();
  private readonly names = new InterfaceNames();
  private readonly clock = new MonotonicClock();
  private readers: RingBufferReader[] = [];
  private lossTimer: NodeJS.Timeout | null = null;
  private readonly lastSeq: bigint[] = [];
  private readonly lost = { packet: 0, security: 0, consumer: 0 };
  private securityGaps = 0;
  /** Flows this monitor removed from the kernel table. */
  private flowsEvicted = 0;
  private closing: Promise<void> | null = null;
  /** Flow-table reads on worker threads, which close() waits for. */
  private readonly pendingReads = new Set<Promise<unknown>>();
  private readonly closeSignal = new AbortController();
  /** Delta reads of the flow table (null: batch reads; see NetworkMonitorOptions.flowRead). */
  private flowIter: MapIterator | null = null;
  private readonly mirror: FlowMirror | null;
  private flowReadWhy: string;
  /** The next delta read asks for flows seen since these jiffies (0: all, a full read). */
  private nextSince = 0;
  private readsSinceFull = 0;
  private iterBuf: Buffer | undefined;
  private lastDelta: FlowReadInfo['last'];
  private evictor: FlowEvictor | null;
  private readonly evictWhy: string;
  private deltaReads: Promise<unknown> = Promise.resolve();
  private readonly queues = new Set<EventQueue<MonitorEvent>>();
  private detectors: DetectorConfig;
  private readonly blockTable: BlockTable;
  private blockTimer: NodeJS.Timeout | null = null;

  private constructor(
    path: string,
    coll: Collection,
    options: Required<NetworkMonitorOptions>,
    detectors: DetectorConfig,
    flowRead: { iterator: MapIterator | null; why: string },
    evict: { evictor: FlowEvictor | null; why: string },
  ) {
    super();
    this.objectPath = path;
    this.coll = coll;
    this.options = options;
    this.detectors = detectors;
    this.flowIter = flowRead.iterator;
    this.flowReadWhy = flowRead.why;
    this.evictor = evict.evictor;
    this.evictWhy = evict.why;
    this.mirror = flowRead.iterator ? new FlowMirror(upFrontRoom(options.flowTableCapacity)) : null;
    this.blockTable = new BlockTable(coll.map(MAP.blocks), coll.map(MAP.allowlist), this.clock);
  }

  /** Loads the built-in kernel programs. */
  static async create(options: NetworkMonitorOptions = {}): Promise<NetworkMonitor> {
    return NetworkMonitor.fromObjectFile(builtinObjectPath(), options);
  }

  /** Loads the programs from an object file built from bpf/ (same ABI). */
  static async fromObjectFile(path: string, options: NetworkMonitorOptions = {}): Promise<NetworkMonitor> {
    // An option given as undefined means "the default", as leaving it out does.
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    const opts: Required<NetworkMonitorOptions> = { ...DEFAULT_OPTIONS, ...given };
    if (!Number.isInteger(opts.flowTableCapacity) || opts.flowTableCapacity < 1 || opts.flowTableCapacity > MAX_FLOW_TABLE_CAPACITY) {
      throw new InvalidArgumentError(
        `flowTableCapacity must be an integer from 1 to ${MAX_FLOW_TABLE_CAPACITY}, got ${opts.flowTableCapacity}`,
        `the table takes 48 bytes per flow per CPU (${possibleCpus()} CPUs here) plus the key`,
      );
    }
    if (typeof opts.detectTcpFlagAnomalies !== 'boolean') {
      throw new InvalidArgumentError(`detectTcpFlagAnomalies must be true or false, got ${String(opts.detectTcpFlagAnomalies)}`);
    }
    if (!Number.isInteger(opts.packetSampleRate) || opts.packetSampleRate < 0 || opts.packetSampleRate > 0xffffffff) {
      throw new InvalidArgumentError(`packetSampleRate must be 0 (off) or a positive integer, got ${opts.packetSampleRate}`);
    }
    checkRingSize('packetEventRingBytes', opts.packetEventRingBytes);
    checkRingSize('securityEventRingBytes', opts.securityEventRingBytes);
    let detectors = mergeDetectorConfig(DEFAULT_DETECTOR_CONFIG, opts.detectors);
    if (!opts.detectTcpFlagAnomalies) detectors = { ...detectors, enabled: detectors.enabled.filter((d) => !TCP_FLAG_DETECTORS.includes(d)) };
    if (!Array.isArray(opts.allowlist)) throw new InvalidArgumentError('allowlist must be a list of CIDR blocks');
    if (!['auto', 'iterator', 'batch'].includes(opts.flowRead)) throw new InvalidArgumentError(`flowRead must be auto, iterator or batch, got ${String(opts.flowRead)}`);
    if (!['auto', 'program', 'lookup-and-delete'].includes(opts.flowEvict)) {
      throw new InvalidArgumentError(`flowEvict must be auto, program or lookup-and-delete, got ${String(opts.flowEvict)}`);
    }

    // A load interrupted by signals (EAGAIN from the verifier) is retried
    // from a fresh open: libbpf cannot load the same object twice. So is one
    // the kernel refused for an optional program asked for as 'auto' (the
    // flow-read iterator, the evict program), without that program.
    const refused = new Map<string, string>();
    for (let attempt = 1; ; attempt++) {
      const spec = ObjectSpec.open(path);
      try {
        checkAbi(spec);
        spec.setMaxEntries(MAP.flows, opts.flowTableCapacity);
        spec.setMaxEntries(MAP.packetEvents, opts.packetEventRingBytes);
        spec.setMaxEntries(MAP.securityEvents, opts.securityEventRingBytes);
        spec.setConstant('packet_sample_rate', opts.packetSampleRate);
        spec.setVariable(DETECT_CONFIG_VAR, encodeDetectorConfig(detectors, detectors.mode === 'enforce'));
        // The CPUs whose copies the kernel side sums (the iterator and the evict program alike).
        if (possibleCpus() <= FLOW_READ_MAX_CPUS && (spec.hasProgram(PROG.flowRead) || spec.hasProgram(PROG.flowEvict))) spec.setConstant('flow_read_cpus', possibleCpus());
        const unusable = prepareFlowRead(spec, opts.flowRead, refused.get(PROG.flowRead));
        const noEvictProgram = prepareFlowEvict(spec, opts.flowEvict, refused.get(PROG.flowEvict));
        const coll = spec.load();
        const flowRead = { iterator: null as MapIterator | null, why: unusable ?? 'BPF iterator: changed flows only, summed in the kernel' };
        if (unusable === undefined) {
          try {
            flowRead.iterator = MapIterator.attach(coll.program(PROG.flowRead), coll.map(MAP.flows));
          } catch (err) {
            if (opts.flowRead === 'iterator') {
              coll.close();
              throw err;
            }
            flowRead.why = `batch: ${(err as Error).message}`;
          }
        }
        const evict = { evictor: null as FlowEvictor | null, why: noEvictProgram ?? `program: ${PROG.flowEvict}, up to ${FLOW_EVICT_BATCH} flows a system call` };
        if (noEvictProgram === undefined) {
          try {
            evict.evictor = new FlowEvictor(coll.program(PROG.flowEvict).fd, coll.map(MAP.flowEvictBatch));
          } catch (err) {
            if (opts.flowEvict === 'program') {
              flowRead.iterator?.close();
              coll.close();
              throw err;
            }
            evict.why = `lookup-and-delete: ${(err as Error).message}`;
          }
        }
        const mon = new NetworkMonitor(path, coll, opts, detectors, flowRead, evict);
        try {
          mon.blockTable.setAllowlist(opts.allowlist);
        } catch (err) {
          await mon.close();
          throw err;
        }
        return mon;
      } catch (err) {
        if (err instanceof MapCreateError) throw mapTooLarge(err, opts);
        const optional = refusedOptionalProgram(err, opts, refused);
        if (optional) {
          refused.set(optional.program, optional.why);
          continue;
        }
        if (!(err instanceof LoadInterruptedError) || attempt >= 3) throw err;
      } finally {
        spec.close();
      }
    }
  }

  private collection(): Collection {
    if (this.coll === null || this.closing) throw new ClosedError('network monitor');
    return this.coll;
  }

  /**
   * Attaches to an interface: TC both ways by default, plus XDP per `xdp`.
   * Links are used wherever the kernel has them, so a crash detaches them.
   */
  async attachToInterface(name: string, options: AttachOptions = {}): Promise<AttachedInterface> {
    const coll = this.collection();
    validateInterfaceName(name);
    const ifindex = interfaceIndex(name);
    if (this.attached.has(ifindex)) throw new AlreadyAttachedError(name, 'interface');
    const missing = missingCapabilities(['CAP_NET_ADMIN']);
    if (missing.length) throw new PermissionError(`attach ${name}`, missing);

    const tc: TcOptions = options.tc === false ? { ingress: false, egress: false } : options.tc === true || options.tc === undefined ? {} : options.tc;
    const xdp = options.xdp ?? 'auto';
    if (!['auto', 'off', 'native', 'generic'].includes(xdp)) {
      throw new InvalidArgumentError(`xdp must be auto, off, native or generic, got ${String(xdp)}`);
    }
    const tcMode = tc.mode ?? 'auto';
    if (!['auto', 'tcx', 'clsact'].includes(tcMode)) throw new InvalidArgumentError(`tc.mode must be auto, tcx or clsact, got ${String(tcMode)}`);

    const notes: string[] = [];
    const done: Attachment[] = [];
    try {
      const dirs: TcDirection[] = [];
      if (tc.ingress ?? true) dirs.push('ingress');
      if (tc.egress ?? true) dirs.push('egress');
      for (const dir of dirs) {
        const prog = coll.program(dir === 'ingress' ? PROG.tcIngress : PROG.tcEgress);
        if (tcMode !== 'clsact' && (kernelFeatures().tcx || tcMode === 'tcx')) {
          const r = tryAttachTcx(prog, name, ifindex, dir);
          if (typeof r !== 'number') {
            done.push(r);
            continue;
          }
          if (tcMode === 'tcx') throw tcxMissing(name, dir);
        }
        if (tcMode === 'auto') {
          notes.push(`tc ${dir}: TCX links unavailable on kernel ${kernelFeatures().release}; fell back to clsact (netlink), which a crash leaves attached`);
        }
        done.push(attachClsact(prog, name, ifindex, dir));
      }

      let xdpMode: XdpMode | null = null;
      if (xdp === 'native' || xdp === 'generic') xdpMode = xdp;
      else if (xdp === 'auto') {
        const auto = autoXdpMode(name);
        xdpMode = auto.mode;
        if (!auto.mode) notes.push(`xdp: ${auto.reason}`);
      }
      if (xdpMode) {
        try {
          done.push(attachXdp(coll.program(xdpMode === 'native' ? PROG.xdpNative : PROG.xdpGeneric), name, ifindex, { mode: xdpMode }));
        } catch (err) {
          if (xdp !== 'auto') throw err;
          notes.push(`xdp: native mode unavailable on ${name}, skipped (${(err as Error).message.split('\n')[0]})`);
        }
      }
    } catch (err) {
      for (const a of done.reverse()) a.close();
      throw err;
    }

    const info: AttachedInterface = {
      name,
      ifindex,
      hooks: done.map((a) => ({ hook: a.hook, mode: a.mode, link: a.link })),
      notes,
    };
    // What the programs need to know of the interface: whether our TC
    // ingress sees its frames (so TC egress elsewhere skips them: one flow
    // per packet per node), and whether martian sources are reported here.
    // Set after the attach, so a frame is counted twice for a moment rather
    // than not at all.
    const flags = (done.some((a) => a.hook === 'tc-ingress') ? IFACE_FLAG.tcIngress : 0) | (options.martians ? IFACE_FLAG.martians : 0);
    try {
      if (flags) this.setIfaceFlags(ifindex, flags);
    } catch (err) {
      for (const a of done.reverse()) a.close();
      throw err;
    }
    this.attached.set(ifindex, { info, attachments: done });
    this.names.set(ifindex, name);
    return info;
  }

  /** An interface's KNP_IFACE_* flags for the programs (0: none): its array slot where it has one, else the hash. */
  private setIfaceFlags(ifindex: number, flags: number): void {
    const coll = this.collection();
    if (ifindex < IFACE_FLAG_SLOTS) coll.map(MAP.ifaceFlagSlots).update(u32(ifindex), u32(flags));
    else if (flags) coll.map(MAP.ifaceFlags).update(u32(ifindex), u32(flags));
    else coll.map(MAP.ifaceFlags).delete(u32(ifindex));
  }

  /** Detaches everything this monitor attached to `name`. False if nothing was. */
  async detachFromInterface(name: string): Promise<boolean> {
    validateInterfaceName(name);
    for (const [ifindex, entry] of this.attached) {
      if (entry.info.name !== name) continue;
      // The flag first: until the programs are gone, a frame forwarded from
      // here is then counted twice (here and on its way out), never missed.
      this.setIfaceFlags(ifindex, 0);
      for (const a of entry.attachments) a.close();
      this.attached.delete(ifindex);
      return true;
    }
    return false;
  }

  /** How readFlowSnapshotAsync() reads the flow table, and why (see NetworkMonitorOptions.flowRead). */
  get flowRead(): FlowReadInfo {
    return { method: this.flowIter ? 'iterator' : 'batch', detail: this.flowReadWhy, ...(this.lastDelta ? { last: { ...this.lastDelta } } : {}) };
  }

  /** How evictIdle() removes flows, and why (the program where the kernel takes it). */
  get flowEvict(): FlowEvictInfo {
    return { method: this.evictor ? 'program' : 'lookup-and-delete', detail: this.evictWhy };
  }

  /** How many flows the kernel flow table holds (the flowTableCapacity it was created with). */
  get flowTableCapacity(): number {
    return this.options.flowTableCapacity;
  }

  /** What this monitor is attached to. */
  attachedInterfaces(): AttachedInterface[] {
    return [...this.attached.values()].map((e) => e.info);
  }

  /**
   * Starts reading packet and security events. They arrive as 'packet',
   * 'security' and 'lost' events on this emitter, and through events().
   * Calling it again does nothing.
   */
  startEventProcessing(options: EventProcessingOptions = {}): void {
    const coll = this.collection();
    if (this.readers.length) return;
    const budget = options.budget ?? 8192;
    const onError = (err: unknown): void => {
      this.emit('error', err instanceof Error ? err : new Error(String(err)));
    };
    try {
      const packetWake = options.packetWakeIntervalMs ?? 50;
      for (const ring of this.eventRings()) {
        const reader = new RingBufferReader(coll.map(ring.map), ring.handle);
        this.readers.push(reader);
        reader.start(budget, onError, { minWakeIntervalMs: ring.map === MAP.packetEvents ? packetWake : 0 });
      }
    } catch (err) {
      // All or nothing: a later call must be able to try again.
      for (const r of this.readers) r.close();
      this.readers = [];
      throw err;
    }
    this.lossTimer = setInterval(() => this.checkKernelLoss(), options.lossCheckIntervalMs ?? 1000);
    this.lossTimer.unref();
    this.blockTimer = setInterval(() => {
      try {
        this.expireBlocks();
      } catch (err) {
        onError(err);
      }
    }, 1000);
    this.blockTimer.unref();
  }

  /** The event rings and how their records become events: one entry per event type. */
  private eventRings(): { map: string; handle: (v: DataView, off: number, len: number) => void }[] {
    return [
      {
        map: MAP.packetEvents,
        handle: (v, off) => {
          if (this.listenerCount('packet') === 0 && this.queues.size === 0) return;
          const raw = decodePacketInfo(v, off);
          const packet: PacketInfo = {
            timestamp: this.clock.toDate(raw.timestampNs),
            timestampNs: raw.timestampNs,
            key: raw.key,
            interface: this.nameOf(raw.key.ifindex),
            hook: raw.hook,
            packetSize: raw.packetLen,
            ipLength: raw.ipLen,
            tcpFlags: tcpFlagNames(raw.tcpFlags),
          };
          this.emit('packet', packet);
          this.enqueue({ kind: 'packet', packet });
        },
      },
      {
        map: MAP.securityEvents,
        handle: (v, off) => {
          const raw = decodeSecurityEvent(v, off);
          this.trackSequence(raw.cpu, raw.seq);
          const event: SecurityEvent = {
            timestamp: this.clock.toDate(raw.timestampNs),
            timestampNs: raw.timestampNs,
            type: raw.type,
            typeNumber: raw.typeNumber,
            severity: raw.severity,
            description: describeSecurityEvent(raw),
            key: raw.key,
            attacker: { ip: raw.key.srcIp, port: raw.key.srcPort },
            target: { ip: raw.key.dstIp, port: raw.key.dstPort },
            interface: this.nameOf(raw.key.ifindex),
            hook: raw.hook,
            count: raw.count,
            threshold: raw.threshold,
            windowMs: raw.windowMs,
            suppressed: raw.suppressed,
            tcpFlags: tcpFlagNames(raw.tcpFlags),
            cpu: raw.cpu,
            seq: raw.seq,
          };
          this.emit('security', event);
          this.enqueue({ kind: 'security', event });
          if (raw.type === 'blocked') this.reportBlockedByKernel(event);
        },
      },
    ];
  }

  private reportBlockedByKernel(event: SecurityEvent): void {
    const ttlMs = event.count * 1000;
    const block: Block = {
      ip: event.attacker.ip,
      reason: this.blockTable.get(event.attacker.ip)?.reason ?? 'unknown',
      createdAt: event.timestamp,
      expiresAt: ttlMs ? new Date(event.timestamp.getTime() + ttlMs) : undefined,
      packetsDropped: 0,
    };
    this.emitBlockChange({ action: 'blocked', cause: 'detector', block, at: event.timestamp });
  }

  private emitBlockChange(change: BlockChange): void {
    this.emit('block', change);
    this.enqueue({ kind: 'block', change });
  }

  /** The detectors' settings now in force. */
  detectorConfig(): DetectorConfig {
    return mergeDetectorConfig(this.detectors, {});
  }

  /**
   * Changes detector settings while the programs run (thresholds, which
   * detectors, audit or enforce); what `change` leaves out stays. Returns
   * the settings now in force.
   */
  configureDetectors(change: Partial<DetectorConfig>): DetectorConfig {
    const next = mergeDetectorConfig(this.detectors, change);
    this.writeDetectorConfig(next);
    this.detectors = next;
    return this.detectorConfig();
  }

  /** The kernel looks sources up in the block table only while blocks can exist. */
  private writeDetectorConfig(cfg: DetectorConfig): void {
    const coll = this.collection();
    const checkBlocks = cfg.mode === 'enforce' || this.blockTable.size > 0;
    coll.writeVariable(DETECT_CONFIG_VAR, encodeDetectorConfig(cfg, checkBlocks));
  }

  /** Sources blocked now (enforce mode or by hand). */
  blocks(): Block[] {
    this.collection();
    return this.blockTable.list();
  }

  /** Blocks a source by hand, for `ttlMs` (default: the detectors' blockTtlMs; 0 = until lifted). */
  block(ip: string, options: { ttlMs?: number } = {}): Block {
    this.collection();
    const block = this.blockTable.add(ip, options.ttlMs ?? this.detectors.blockTtlMs);
    this.writeDetectorConfig(this.detectors);
    this.emitBlockChange({ action: 'blocked', cause: 'manual', block, at: new Date() });
    return block;
  }

  /** Lifts a block; its final figures, or undefined if `ip` was not blocked. */
  unblock(ip: string): Block | undefined {
    this.collection();
    const block = this.blockTable.remove(ip);
    if (!block) return undefined;
    this.writeDetectorConfig(this.detectors);
    this.emitBlockChange({ action: 'unblocked', cause: 'manual', block, at: new Date() });
    return block;
  }

  /** Removes blocks whose TTL ran out and reports each (startEventProcessing() runs it every second). */
  expireBlocks(): Block[] {
    if (!this.coll || this.closing) return [];
    const gone = this.blockTable.expire();
    if (gone.length) {
      this.writeDetectorConfig(this.detectors);
      for (const block of gone) this.emitBlockChange({ action: 'unblocked', cause: 'expired', block, at: new Date() });
    }
    return gone;
  }

  /** Per-CPU sequence numbers start at 1 and have no gaps unless events were lost. */
  private trackSequence(cpu: number, seq: bigint): void {
    const last = this.lastSeq[cpu] ?? 0n;
    if (seq > last + 1n) {
      this.securityGaps += Number(seq - last - 1n);
      this.syncLoss('security', this.securityGaps);
    }
    if (seq > last) this.lastSeq[cpu] = seq;
  }

  /**
   * Loss per ring as the kernel's drop counters and the sequence gaps tell
   * it; a tail drop shows in the counter before any gap can.
   */
  private checkKernelLoss(): void {
    if (!this.coll) return;
    try {
      const g = this.globalCounters();
      this.syncLoss('packet', g[COUNTER.packetEventsDropped]!);
      this.syncLoss('security', Math.max(this.securityGaps, g[COUNTER.securityEventsDropped]!));
    } catch (err) {
      this.emit('error', err as Error);
    }
  }

  /** Emits 'lost' for whatever `observed` adds to what was already reported. */
  private syncLoss(ring: 'packet' | 'security', observed: number): void {
    if (observed <= this.lost[ring]) return;
    this.reportLost(ring, observed - this.lost[ring]);
  }

  private reportLost(ring: LostEvents['ring'], count: number): void {
    this.lost[ring] += count;
    const lost: LostEvents = { ring, count, total: this.lost[ring] };
    this.emit('lost', lost);
    if (ring !== 'consumer') this.enqueue({ kind: 'lost', lost });
  }

  private enqueue(ev: MonitorEvent): void {
    for (const q of this.queues) {
      if (!q.push(ev)) this.reportLost('consumer', 1);
    }
  }

  /**
   * Events as an async iterable. Starts event processing if needed. At most
   * `limit` events wait for the consumer; beyond that they are dropped and
   * reported as lost ('consumer'). The iterator ends when the monitor closes.
   */
  events(options: { limit?: number; signal?: AbortSignal } = {}): AsyncIterableIterator<MonitorEvent> {
    this.startEventProcessing();
    const q: EventQueue<MonitorEvent> = new EventQueue(options.limit ?? 10000, () => {
      this.queues.delete(q);
    });
    this.queues.add(q);
    options.signal?.addEventListener('abort', () => q.end(), { once: true });
    return q;
  }

  /** Drains the rings now, without waiting for the event loop (tests, shutdown). */
  pollEvents(budget = Number.POSITIVE_INFINITY): number {
    let n = 0;
    for (const r of this.readers) n += r.drain(budget);
    this.checkKernelLoss();
    return n;
  }

  private nameOf(ifindex: number): string | undefined {
    return this.names.get(ifindex);
  }

  /** enum knp_counter slots, summed over CPUs. */
  private globalCounters(): number[] {
    const v = this.collection().map(MAP.global).lookup(new Uint8Array(4));
    return Array.from({ length: COUNTER_SLOTS }, (_, i) =>
      v ? Number(sumPerCpuU64(v, 0, GLOBAL_COUNTERS.size, GLOBAL_COUNTERS.offsets.c + i * 8)) : 0,
    );
  }

  /** Per-interface counters by hook and outcome, totals, flow table fill and event loss. */
  getPacketStats(): PacketStats {
    const coll = this.collection();
    const g = this.globalCounters();
    const interfaces = this.interfaceCounters(coll);
    interfaces.sort((a, b) => a.ifindex - b.ifindex || HOOKS.indexOf(a.hook) - HOOKS.indexOf(b.hook));
    const sum = (hook: InterfaceCounters['hook']): { packets: OutcomeCounts; bytes: OutcomeCounts } => {
      const s = { packets: zeroCounts(), bytes: zeroCounts() };
      for (const c of interfaces) {
        if (c.hook !== hook) continue;
        addCounts(s.packets, c.packets);
        addCounts(s.bytes, c.bytes);
      }
      return s;
    };
    return {
      interfaces,
      ingress: sum('tc-ingress'),
      egress: sum('tc-egress'),
      xdp: sum('xdp'),
      flowTable: {
        // Only user space removes flows (evictIdle), so entries = inserts - evictions.
        entries: g[COUNTER.flowInserted]! - this.flowsEvicted,
        capacity: this.options.flowTableCapacity,
        inserted: g[COUNTER.flowInserted]!,
        insertFailed: g[COUNTER.flowInsertFailed]!,
      },
      events: {
        packet: { sent: g[COUNTER.packetEventsSent]!, dropped: g[COUNTER.packetEventsDropped]! },
        security: {
          sent: g[COUNTER.securityEventsSent]!,
          dropped: g[COUNTER.securityEventsDropped]!,
          gaps: this.securityGaps,
          suppressed: g[COUNTER.securityEventsSuppressed]!,
        },
        consumerDropped: this.lost.consumer,
      },
      interfaceTableFull: g[COUNTER.ifaceTableFull]!,
      headersPulled: g[COUNTER.headersPulled]!,
      detectorStateFailed: g[COUNTER.detectStateFailed]!,
      blocks: { packetsDropped: g[COUNTER.blockedPackets]!, insertFailed: g[COUNTER.blockInsertFailed]! },
    };
  }

  /**
   * Per-interface counters: the per-CPU slot array (each CPU's copy names
   * its owner) plus the overflow hash, summed by interface and hook.
   */
  private interfaceCounters(coll: Collection): InterfaceCounters[] {
    const byKey = new Map<number, InterfaceCounters>();
    const cpus = possibleCpus();
    const add = (ifindex: number, hookNum: number, buf: Buffer, at: number): void => {
      const id = ifindex * 8 + hookNum;
      let c = byKey.get(id);
      if (!c) {
        c = { ifindex, interface: this.nameOf(ifindex), hook: HOOKS[hookNum] ?? 'tc-ingress', packets: zeroCounts(), bytes: zeroCounts() };
        byKey.set(id, c);
      }
      OUTCOMES.forEach((o, k) => {
        const p = Number(buf.readBigUInt64LE(at + IFACE_COUNTERS.offsets.packets + k * 8));
        const b = Number(buf.readBigUInt64LE(at + IFACE_COUNTERS.offsets.bytes + k * 8));
        c.packets[o] += p;
        c.packets.total += p;
        c.bytes[o] += b;
        c.bytes.total += b;
      });
    };
    const slots = coll.map(MAP.ifaceSlots).dump();
    for (let i = 0; i < slots.count; i++) {
      for (let cpu = 0; cpu < cpus; cpu++) {
        const at = i * slots.valueStride + cpu * IFACE_SLOT.size;
        const ifindex = slots.values.readUInt32LE(at + IFACE_SLOT.offsets.ifindex);
        if (ifindex === 0) continue;
        add(ifindex, slots.values.readUInt32LE(at + IFACE_SLOT.offsets.hook), slots.values, at + IFACE_SLOT.offsets.c);
      }
    }
    const overflow = coll.map(MAP.ifaceStats).dump();
    for (let i = 0; i < overflow.count; i++) {
      const ifindex = overflow.keys.readUInt32LE(i * IFACE_KEY.size + IFACE_KEY.offsets.ifindex);
      const hookNum = overflow.keys.readUInt32LE(i * IFACE_KEY.size + IFACE_KEY.offsets.hook);
      for (let cpu = 0; cpu < cpus; cpu++) add(ifindex, hookNum, overflow.values, i * overflow.valueStride + cpu * IFACE_COUNTERS.size);
    }
    return [...byKey.values()];
  }

  /** The newest (coarse ns, jiffies) pair the kernel wrote at a flow insert, over all CPUs. */
  private jiffiesAnchor(): JiffiesAnchor {
    const v = this.collection().map(MAP.cpuState).lookup(new Uint8Array(4));
    const stride = CPU_STATE.size;
    let best: JiffiesAnchor = { ns: 0, jiffies: 0 };
    for (let cpu = 0, n = possibleCpus(); v && cpu < n; cpu++) {
      const ns = Number(v.readBigUInt64LE(cpu * stride + CPU_STATE.offsets.anchor_ns));
      if (ns > best.ns) best = { ns, jiffies: Number(v.readBigUInt64LE(cpu * stride + CPU_STATE.offsets.anchor_jiffies)) };
    }
    return best;
  }

  /** Every flow in the kernel table, decoded. */
  getFlowStats(): FlowStats[] {
    return this.readFlowSnapshot().flows();
  }

  /**
   * Removes flows whose last packet is older than `idleMs` from the kernel
   * table and returns each one's final figures; TCP flows that have seen a
   * FIN or RST go once idle for `endedIdleMs` (by default the same `idleMs`).
   * The removal returns the values as they were at that instant, so packets
   * that arrived after the table was read are in the final figures too; a
   * packet after the removal starts a new flow.
   */
  evictIdleFlows(idleMs: number, endedIdleMs = idleMs): FlowStats[] {
    return this.evictIdle(this.readFlowSnapshot(), idleMs, endedIdleMs).map((e) => e.flow);
  }

  /**
   * One read of the flow table as bytes (for the agent's pipeline: nothing is
   * decoded until asked for).
   */
  readFlowSnapshot(): FlowSnapshot {
    const map = this.collection().map(MAP.flows);
    // Buffers of its own: the snapshot keeps them (no copy).
    const dump = map.dump(8192, { fresh: true });
    const sums = new FlowCounterSums(dump.count, dump.valueStride, possibleCpus());
    sums.add(dump.values, 0, dump.count);
    return this.snapshotOf(dump, sums);
  }

  /**
   * readFlowSnapshot() with the kernel reads on a worker thread: the event
   * loop stays free, and each batch is summed while the next is read.
   */
  async readFlowSnapshotAsync(
    onBatch?: FlowBatchHandler,
  ): Promise<FlowSnapshot> {
    if (this.flowIter) {
      // One delta read at a time: each sets the kernel's `since` for its walk and folds into the mirror in order.
      const iter = this.flowIter;
      const next = this.deltaReads.catch(() => {}).then(() => this.readFlowDelta(iter, onBatch));
      this.deltaReads = next;
      return next;
    }
    const map = this.collection().map(MAP.flows);
    const sums = new FlowCounterSums(map.lastReadCount + 1024, map.valueStride, possibleCpus());
    const read = map.dumpAsync(
      8192,
      (keys, values, start, count) => {
        sums.add(values, start, count);
        // A read buffer of its own is 4-byte aligned (allocated whole).
        if (onBatch) onBatch(new Uint32Array(keys.buffer, keys.byteOffset, keys.length >>> 2), sums, start, count);
      },
      this.closeSignal.signal,
    );
    this.pendingReads.add(read);
    try {
      const dump = await read;
      return this.snapshotOf(dump, sums);
    } catch (err) {
      if (this.closeSignal.signal.aborted) throw new ClosedError('network monitor');
      throw err;
    } finally {
      this.pendingReads.delete(read);
    }
  }

  /** readFlowSnapshotAsync() by the iterator: only what changed, folded into the mirror. */
  private async readFlowDelta(
    iter: MapIterator,
    onBatch?: FlowBatchHandler,
  ): Promise<FlowSnapshot> {
    const coll = this.collection();
    const mirror = this.mirror!;
    const full = this.nextSince === 0 || this.readsSinceFull >= FLOW_READ_FULL_EVERY;
    const cfg = Buffer.alloc(FLOW_READ_CFG.size);
    cfg.writeBigUInt64LE(BigInt(full ? 0 : this.nextSince), FLOW_READ_CFG.offsets.since_jiffies);
    coll.map(MAP.flowReadCfg).update(u32(0), cfg);
    const read = iter.read(this.iterBuf);
    this.pendingReads.add(read);
    let out: { buf: Buffer; length: number };
    try {
      out = await read;
    } catch (err) {
      if (this.closeSignal.signal.aborted) throw new ClosedError('network monitor');
      throw err;
    } finally {
      this.pendingReads.delete(read);
    }
    if (this.closeSignal.signal.aborted) throw new ClosedError('network monitor');
    this.iterBuf = out.buf;
    const { startJiffies, records } = mirror.apply(out.buf, out.length, full);
    this.lastDelta = { full, records, flows: mirror.size };
    this.readsSinceFull = full ? 0 : this.readsSinceFull + 1;
    this.nextSince = Math.max(1, startJiffies - FLOW_READ_MARGIN_JIFFIES);
    const ctx = { cpus: 1, anchor: this.jiffiesAnchor(), now: Date.now() };
    const snap = mirror.snapshot(
      (kv, keyAt, vv, valueAt) => this.flowStats(kv, keyAt, vv, valueAt, ctx),
      (j) => this.clock.jiffiesToMonoMs(j, ctx.anchor),
    );
    onBatch?.(snap.keyWords, snap, 0, snap.count, snap.removed, snap.mirror);
    return snap;
  }

  private snapshotOf(dump: MapDump, sums: FlowCounterSums): FlowSnapshot {
    const ctx = { cpus: possibleCpus(), anchor: this.jiffiesAnchor(), now: Date.now() };
    return new FlowSnapshot(
      dump.count,
      dump.keys.subarray(0, dump.count * FLOW_KEY.size),
      dump.values.subarray(0, dump.count * dump.valueStride),
      dump.valueStride,
      sums,
      (kv, keyAt, vv, valueAt) => this.flowStats(kv, keyAt, vv, valueAt, ctx),
      (j) => this.clock.jiffiesToMonoMs(j, ctx.anchor),
    );
  }

  /** evictIdleFlows() over a snapshot already read; marks what it removed in it. */
  evictIdle(snapshot: FlowSnapshot, idleMs: number, endedIdleMs = idleMs): EvictedFlow[] {
    if (!Number.isFinite(idleMs) || idleMs < 0) throw new InvalidArgumentError(`idleMs must be a non-negative number, got ${idleMs}`);
    if (!Number.isFinite(endedIdleMs) || endedIdleMs < 0) throw new InvalidArgumentError(`endedIdleMs must be a non-negative number, got ${endedIdleMs}`);
    const nowMs = Number(this.clock.nowNs()) / 1e6;
    const cutoffMs = nowMs - idleMs;
    // A TCP flow that has seen its FIN or RST has ended (IPFIX's endOfFlowDetected): it need not
    // hold its place in the table for the whole idle timeout.
    const endedCutoffMs = nowMs - endedIdleMs;
    const due: number[] = [];
    for (let i = 0; i < snapshot.count; i++) {
      if (snapshot.removed[i]) continue;
      const last = snapshot.lastSeenMsAt(i);
      if (last > cutoffMs && (last > endedCutoffMs || (snapshot.tcpFlagsAt(i) & TCP_ENDED) === 0)) continue;
      due.push(i);
    }
    if (due.length === 0) return [];
    const map = this.collection().map(MAP.flows);
    const ctx = { cpus: possibleCpus(), anchor: this.jiffiesAnchor(), now: Date.now() };
    // The evicted keys, copied together: a final record kept for the API holds these few
    // bytes, not the whole read they came from.
    const words = new Uint32Array(due.length * FLOW_KEY_WORDS);
    const kv = new DataView(words.buffer);
    const src = snapshot.keyWords;
    const out: EvictedFlow[] = [];
    // Taken out of the table and the mirror: counted, and added to the flows evicted together.
    const taken = (i: number, key: Uint32Array, keyAt: number, value: DataView, valueAt: number, cpus: number): void => {
      snapshot.removed[i] = 1;
      this.mirror?.remove(src, i * FLOW_KEY_WORDS);
      this.flowsEvicted++;
      const at = out.length * FLOW_KEY_WORDS;
      for (let k = 0; k < FLOW_KEY_WORDS; k++) words[at + k] = key[keyAt + k]!;
      out.push(this.evicted(words, at, kv, decodeFlowValuePerCpu(value, valueAt, cpus), ctx));
    };
    const ev = this.evictor;
    if (ev) {
      // A batch at a time: keys into the shared memory, one run, final figures out of it.
      const E = FLOW_EVICT.size / 4;
      for (let first = 0; first < due.length; first += ev.capacity) {
        const n = Math.min(ev.capacity, due.length - first);
        for (let j = 0; j < n; j++) {
          const from = due[first + j]! * FLOW_KEY_WORDS;
          for (let k = 0; k < FLOW_KEY_WORDS; k++) ev.words[j * E + k] = src[from + k]!;
        }
        ev.run(n);
        for (let j = 0; j < n; j++) {
          if (ev.words[j * E + FLOW_EVICT.offsets.found / 4] !== 1) continue; // gone already
          taken(due[first + j]!, ev.words, j * E, ev.view, j * FLOW_EVICT.size + FLOW_EVICT.offsets.value, 1);
        }
      }
      return out;
    }
    // The key passed to the kernel, and the value it fills: one of each, reused.
    const key = new Uint32Array(FLOW_KEY_WORDS);
    const keyBytes = new Uint8Array(key.buffer);
    const value = Buffer.alloc(map.valueStride);
    const vv = new DataView(value.buffer, value.byteOffset, value.byteLength);
    for (const i of due) {
      for (let k = 0; k < FLOW_KEY_WORDS; k++) key[k] = src[i * FLOW_KEY_WORDS + k]!;
      if (!map.lookupAndDelete(keyBytes, value)) continue; // gone already
      taken(i, key, 0, vv, 0, ctx.cpus);
    }
    return out;
  }

  /** An evicted flow: its totals now, the rest decoded on first use (with the interface's name as it is now). */
  private evicted(keyWords: Uint32Array, keyAt: number, kv: DataView, v: RawFlowValue, ctx: FlowDecodeContext): EvictedFlow {
    const ifname = this.names.get(kv.getUint32(keyAt * 4 + FLOW_KEY.offsets.ifindex, true), ctx.now);
    return new LazyEvictedFlow(keyWords, keyAt, kv, v, ifname, ctx, this.clock);
  }

  private flowStats(kv: DataView, keyAt: number, vv: DataView, valueAt: number, ctx: FlowDecodeContext): FlowStats {
    const key = decodeFlowKey(kv, keyAt);
    return flowStatsOf(key, this.names.get(key.ifindex, ctx.now), decodeFlowValuePerCpu(vv, valueAt, ctx.cpus), ctx, this.clock);
  }




  /** The loaded maps, for extensions and tests (see docs/extending.md). */
  map(name: string): BpfMap {
    return this.collection().map(name);
  }

  /** A loaded program's fd by name, for BPF_PROG_TEST_RUN in tests and benchmarks. */
  programFd(name: (typeof PROG)[keyof typeof PROG]): number {
    return this.collection().program(name).fd;
  }

  /**
   * Detaches everything, stops event processing and unloads. Safe to call
   * twice, and from inside an event listener (later calls get the same promise).
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = Promise.resolve();
    const failures: unknown[] = [];
    const step = (fn: () => void): void => {
      try {
        fn();
      } catch (err) {
        failures.push(err);
      }
    };
    if (this.lossTimer) clearInterval(this.lossTimer);
    this.lossTimer = null;
    if (this.blockTimer) clearInterval(this.blockTimer);
    this.blockTimer = null;
    // No more deliveries once close() is called; pollEvents() first if the
    // last events matter.
    step(() => this.flowIter?.close());
    step(() => this.evictor?.close());
    this.evictor = null;
    this.flowIter = null;
    for (const r of this.readers) step(() => r.close());
    this.readers = [];
    for (const { attachments } of this.attached.values()) for (const a of attachments) step(() => a.close());
    this.attached.clear();
    for (const q of [...this.queues]) q.end();
    // A flow-table read on a worker thread ends at its next batch; the maps'
    // fds are closed after it, never under it.
    this.closeSignal.abort();
    const finish = (): void => {
      step(() => this.coll?.close());
      this.coll = null;
      // Everything else is released even if one step failed; report what failed.
      for (const err of failures) if (this.listenerCount('error')) this.emit('error', err instanceof Error ? err : new Error(String(err)));
    };
    if (this.pendingReads.size === 0) finish();
    else this.closing = Promise.allSettled([...this.pendingReads]).then(finish);
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Whether the flow-read iterator can be used: sets it up in the spec, or
 * leaves it out of the load and says why (undefined: it can).
 */
function prepareFlowRead(spec: ObjectSpec, want: 'auto' | 'iterator' | 'batch', refusedWhy?: string): string | undefined {
  const has = spec.hasProgram(PROG.flowRead);
  const f = kernelFeatures();
  let why: string | undefined;
  if (want === 'batch') why = 'batch: asked for (flowRead: batch)';
  else if (refusedWhy !== undefined) why = `batch: ${refusedWhy}`;
  else if (!has) why = `batch: ${spec.path} has no ${PROG.flowRead} program`;
  else if (!f.btf) why = `batch: kernel ${f.release} has no BTF (/sys/kernel/btf/vmlinux), which BPF iterators need`;
  else if (possibleCpus() > FLOW_READ_MAX_CPUS) why = `batch: ${possibleCpus()} possible CPUs, more than the iterator sums (${FLOW_READ_MAX_CPUS})`;
  if (why === undefined) return undefined;
  if (want === 'iterator') throw new KernelUnsupportedError('flow table reads by BPF iterator', why.replace(/^batch: /, ''));
  if (has) spec.setAutoload(PROG.flowRead, false);
  return why;
}

/**
 * Whether the evict program can be used: leaves it out of the load where
 * not, and says why (undefined: it can).
 */
function prepareFlowEvict(spec: ObjectSpec, want: 'auto' | 'program' | 'lookup-and-delete', refusedWhy?: string): string | undefined {
  const has = spec.hasProgram(PROG.flowEvict);
  const f = kernelFeatures();
  let why: string | undefined;
  if (want === 'lookup-and-delete') why = 'lookup-and-delete: asked for (flowEvict: lookup-and-delete)';
  else if (refusedWhy !== undefined) why = `lookup-and-delete: ${refusedWhy}`;
  else if (!has) why = `lookup-and-delete: ${spec.path} has no ${PROG.flowEvict} program`;
  // bpf_map_lookup_percpu_elem, which sums a flow's copies in the program, arrived in 5.19.
  else if (!atLeast(f.version, [5, 19])) why = `lookup-and-delete: kernel ${f.release} is older than 5.19 (bpf_map_lookup_percpu_elem)`;
  else if (possibleCpus() > FLOW_READ_MAX_CPUS) why = `lookup-and-delete: ${possibleCpus()} possible CPUs, more than the program sums (${FLOW_READ_MAX_CPUS})`;
  if (why === undefined) return undefined;
  if (want === 'program') throw new KernelUnsupportedError('flow eviction by the knp_flow_evict program', why.replace(/^lookup-and-delete: /, ''));
  if (has) spec.setAutoload(PROG.flowEvict, false);
  return why;
}

/**
 * A load the kernel refused because of an optional program asked for as
 * 'auto': which one, and why, so the load is tried again without it.
 * Undefined for any other failure.
 */
function refusedOptionalProgram(err: unknown, opts: Required<NetworkMonitorOptions>, refused: ReadonlyMap<string, string>): { program: string; why: string } | undefined {
  if (!(err instanceof VerifierError) || !err.refused) return undefined;
  const { program, verdict } = err.refused;
  const optional = (program === PROG.flowRead && opts.flowRead === 'auto') || (program === PROG.flowEvict && opts.flowEvict === 'auto');
  if (!optional || refused.has(program)) return undefined;
  return { program, why: `the kernel refused ${program}${verdict ? ` (verifier: ${verdict})` : ''}` };
}

/** Names the option behind a map the kernel would not create. */
function mapTooLarge(err: MapCreateError, opts: Required<NetworkMonitorOptions>): Error {
  const option = (
    {
      [MAP.flows]: ['flowTableCapacity', opts.flowTableCapacity],
      [MAP.packetEvents]: ['packetEventRingBytes', opts.packetEventRingBytes],
      [MAP.securityEvents]: ['securityEventRingBytes', opts.securityEventRingBytes],
    } as Record<string, [string, number]>
  )[err.mapName];
  if (!option) return err;
  return new KubeNetProbeError('SYSTEM', `${err.message}: ${errnoName(err.errno)} with ${option[0]} = ${option[1]}`, {
    hint: `lower ${option[0]}, or give the process more memory (cgroup limit)`,
    cause: err,
  });
}

function tcxMissing(name: string, dir: TcDirection): Error {
  return new InvalidArgumentError(
    `attach tcx ${dir} ${name}: this kernel (${kernelFeatures().release}) has no TCX links`,
    "use tc: { mode: 'auto' } or 'clsact'",
  );
}

/** Refuses an object whose structs differ from what the decoders read. */
function checkAbi(spec: ObjectSpec): void {
  for (const l of [...ALL_LAYOUTS, CPU_STATE]) {
    const got = spec.structLayout(l.struct);
    if (!got) throw new ObjectFileError(spec.path, `has no BTF for struct ${l.struct} (not a KubeNetProbe object, or built without -g)`);
    const bad = Object.entries(l.offsets).find(([f, off]) => got.offsets[f] !== off);
    if (got.size !== l.size || bad) {
      throw new ObjectFileError(
        spec.path,
        `ABI mismatch in struct ${l.struct}: ${bad ? `field ${bad[0]} at ${String(got.offsets[bad[0]])}, expected ${bad[1]}` : `size ${got.size}, expected ${l.size}`}`,
      );
    }
  }
}
