/**
 * The agent: one NetworkMonitor, attached to every interface the config
 * names as interfaces come and go, the flow pipeline on a period, and the
 * recent flows and events kept queryable in memory within the config's
 * bounds. The HTTP API and the CLI read it; nothing here listens.
 */
import { EventEmitter } from 'node:events';
import { BlockList, isIP } from 'node:net';
import { NetworkMonitor, type FlowEvictInfo, type FlowReadInfo } from '../monitor/network-monitor.js';
import type { Block, BlockChange, Hook, InterfaceCounters, LostEvents, OutcomeCounts, SecurityEvent, FlowStats } from '../types.js';
import { detectorOptions, kubernetesSource, type AgentConfig } from './config.js';
import { InterfaceWatcher, MAIN_INTERFACE, interfaceMatcher, type InterfaceRef } from './interface-watcher.js';
import { PodAttacher, type PodAttachment } from './pod-attach.js';
import { RtNetlink } from '../netlink/rtnetlink.js';
import { interfaceName } from '../netif.js';
import { keepLargeBuffersOnMmap } from './allocator.js';
import { startFlowPipeline, type FlowPipeline, type PipelineCycle } from './flow-pipeline.js';
import type { FlowRecord } from './flow-accounter.js';
import { toConversations, type Conversation } from './conversations.js';
import { Recent } from './recent.js';
import { FilterError, compileFilter, type FlowFilter } from './flow-filter.js';
import { Inventory, type PodIdentity } from './inventory.js';
import { compileSecurityFilter, type SecurityFilter } from './security-filter.js';
import { parseDetectorChange } from './detector-change.js';
import type { DetectorConfig } from '../monitor/detectors.js';
import { NO_EXPORT_STATS, startExporters, type Exporters, type ExportStats } from '../export/index.js';
// Types only: the store (and DuckDB's native library) is loaded when history is on.
import type { HistoryNotice, HistoryNoticeKind, HistoryStore, RecoveryNote } from '../history/history-store.js';
// Types only: the Kubernetes client is loaded when `kubernetes` is on.
import type { ClusterIdentity } from '../k8s/cluster-identity.js';

export interface AgentEvents {
  record: [FlowRecord];
  security: [SecurityEvent];
  /** A source blocked or unblocked (enforce mode, by hand, expiry). */
  block: [BlockChange];
  /** Events lost (ring full, sequence gap, slow consumer), as the monitor reports them. */
  lost: [LostReport];
  cycle: [PipelineCycle];
  error: [Error];
}

export interface InterfaceStatus {
  name: string;
  ifindex: number;
  attached: boolean;
  hooks: string[];
  /** Why it is not attached, or what was chosen for it. */
  notes: string[];
  /** Why it is watched: its name matches `interface`, it is a local pod's host-side interface, or both. */
  reasons: ('interface' | 'pod')[];
  /** The pod behind it (attachPods), and how its interface was found from the pod's IP. */
  pod?: { namespace: string; pod: string; ip: string; foundBy: PodAttachment['foundBy'] };
  /** Counts by hook, continuing across the interface going away and coming back. */
  counters: Partial<Record<Hook, { packets: OutcomeCounts; bytes: OutcomeCounts }>>;
}

/** A 'lost' report and when it came. */
export interface LostReport extends LostEvents {
  at: Date;
}

/** A security event as the API shows it: with the pod identity of each end, where known. */
export interface SecurityEventView extends SecurityEvent {
  attackerIdentity: PodIdentity | null;
  targetIdentity: PodIdentity | null;
}

export interface AgentStats {
  interfaces: InterfaceStatus[];
  flowTable: { entries: number; capacity: number; fill: number; inserted: number; insertFailed: number };
  lost: { packetEvents: number; securityEvents: number; securityGaps: number; consumer: number };
  /** The security channel: events the kernel sent, dropped (ring full), held back by the rate limits; sequence gaps seen here. */
  security: { mode: 'audit' | 'enforce'; sent: number; dropped: number; gaps: number; suppressed: number; detectorStateFailed: number };
  /** Sources blocked now, frames dropped because of blocks, blocks the kernel could not store. */
  blocks: { active: number; packetsDropped: number; insertFailed: number };
  /** Packets TC parsed against packets it could attribute to a flow (the rest hit a full table). */
  coverage: { seen: number; attributed: number; ratio: number };
  pipeline: {
    cycles: number;
    lastCycleMs: number | undefined;
    recentFlows: number;
    recentFlowsDropped: number;
    recentEvents: number;
    /** How the kernel flow table is read every cycle, and why (NetworkMonitor.flowRead). */
    flowRead: { method: FlowReadInfo['method']; detail: string };
    /** How idle flows are taken out of it, and why (NetworkMonitor.flowEvict). */
    flowEvict: FlowEvictInfo;
  };
  /** The exporters (JSON lines, OTLP): lines written and dropped, records sent and failed; null where off. */
  export: ExportStats;
  /** The flow history store (`history` in the config); null where off. */
  history: HistoryStatus | null;
}

/** The flow history store as stats() shows it: what it holds, what it lost, what it had to do. */
export interface HistoryStatus {
  /** The configured file. */
  path: string;
  /** True when the file could not be used and history is kept in memory until restart (see recovery). */
  inMemory: boolean;
  /** False when the store could not be started at all (see lastError): the agent runs without history. */
  available: boolean;
  retentionMs: number;
  maxBytes: number;
  /** Rows kept: flow records, security events. */
  flows: number;
  events: number;
  /** The file and its WAL. */
  bytes: number;
  /** The oldest and newest row kept. */
  oldest: Date | null;
  newest: Date | null;
  /** Appended, not written yet (at most a second's worth: a crash loses these). */
  buffered: number;
  written: number;
  /** Rows lost: failed writes, a full buffer. */
  dropped: number;
  lastError: string | null;
  /** What the agent had to do at start: the file moved aside as corrupt, or history in memory. */
  recovery: RecoveryNote | null;
  /** The latest notices (recovery, failed writes, rows deleted for size, ...), oldest first. */
  notices: { at: Date; kind: HistoryNoticeKind | 'unavailable'; message: string }[];
  /** When the figures above were read from the store. */
  updatedAt: Date | null;
}

/** How often stats() refreshes its history figures (the API refreshes them on each request too). */
const HISTORY_STATS_MS = 5000;

const MAX_BLOCK_TTL_MS = 365 * 86_400_000;

/** How often the agent looks for local pods' interfaces (attachPods), besides when a pod is added. */
const POD_ATTACH_INTERVAL_MS = 1000;

/** A flow as the API shows it: live (in the kernel table) or finished (evicted). */
export interface FlowView extends FlowStats {
  state: 'live' | 'finished';
  packetsPerSec: number;
  bytesPerSec: number;
  /** Pod identity of each end, where the inventory knows it. */
  source: PodIdentity | null;
  destination: PodIdentity | null;
}

/** A conversation as the API shows it: with the pod identity of each end, where known. */
export interface ConversationView extends Conversation {
  aIdentity: PodIdentity | null;
  bIdentity: PodIdentity | null;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

function addCounts(into: OutcomeCounts, from: OutcomeCounts): OutcomeCounts {
  return {
    total: into.total + from.total,
    parsed: into.parsed + from.parsed,
    nonIp: into.nonIp + from.nonIp,
    truncated: into.truncated + from.truncated,
    malformed: into.malformed + from.malformed,
  };
}

export class Agent extends EventEmitter<AgentEvents> {
  private readonly interfaces = new Map<number, InterfaceStatus>();
  /** Counters of interfaces that went away, by name, so a returning name continues. */
  private readonly retired = new Map<string, InterfaceStatus['counters']>();
  private readonly finished: Recent<FlowRecord>;
  private readonly securityEvents: Recent<SecurityEvent>;
  private readonly blockChanges: Recent<BlockChange>;
  private readonly lostReports: Recent<LostReport>;
  /** Interfaces where martian sources are reported. */
  private readonly martians: (name: string) => boolean;
  /** Sources never blocked: by enforce mode in the kernel, and by hand here. */
  private readonly allowlist = new BlockList();
  private lastCycle: PipelineCycle | undefined;
  private cycles = 0;
  private closed = false;
  private pipeline: FlowPipeline | undefined;
  private watcher: InterfaceWatcher | undefined;
  private podAttacher: PodAttacher | undefined;
  private readonly inventory: Inventory | undefined;
  /** Identity from the cluster (`kubernetes` in the config); undefined where off or it could not be set up. */
  private cluster: ClusterIdentity | undefined;
  /** The last problem reported for each watched resource, so a retried failure is said once. */
  private readonly clusterWarnings = new Map<string, string>();
  private exporters: Exporters | undefined;
  private history: HistoryStore | undefined;
  private historyStatus: HistoryStatus | null = null;
  private readonly historyNotices = new Recent<HistoryStatus['notices'][number]>(20);
  private historyTimer: NodeJS.Timeout | undefined;
  private historyRefresh: Promise<void> | undefined;
  /** Rows the agent could not hand to the store (it threw): counted with the store's own drops. */
  private historyAppendFailed = 0;
  private historyClosed = false;
  /** True once start() has returned: notices before that are kept for the caller to print (nobody listens yet). */
  private started = false;
  private readonly noticesAtStart: string[] = [];

  private constructor(
    readonly config: AgentConfig,
    readonly monitor: NetworkMonitor,
  ) {
    super();
    this.finished = new Recent(config.recentFlows);
    this.securityEvents = new Recent(config.recentEvents);
    this.blockChanges = new Recent(config.recentEvents);
    this.lostReports = new Recent(config.recentEvents);
    this.martians = config.martians.length ? interfaceMatcher(config.martians) : () => false;
    for (const c of config.allowlist) {
      const [addr, prefix] = c.split('/') as [string, string | undefined];
      const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
      this.allowlist.addSubnet(addr, prefix === undefined ? (family === 'ipv4' ? 32 : 128) : Number(prefix), family);
    }
    this.inventory = config.inventory ? Inventory.load(config.inventory) : undefined;
  }

  /**
   * Every pod whose identity is known, by IP (for per-pod metrics): from the
   * cluster, the pods of this node (every pod when the node's name is not
   * known); then the inventory's. A deleted pod is no longer listed.
   */
  knownPods(): Iterable<[string, PodIdentity]> {
    const cluster = this.cluster;
    if (!cluster) return this.inventory?.entries() ?? [];
    const out = new Map<string, PodIdentity>();
    const node = this.config.nodeName;
    for (const [ip] of cluster.pods(node !== undefined ? { node } : {})) {
      const id = this.clusterPod(ip);
      if (id) out.set(ip, id);
    }
    for (const [ip, id] of this.inventory?.entries() ?? []) if (!out.has(ip)) out.set(ip, id);
    return out;
  }

  /** The pod behind an address: from the cluster where it is watched, else from the inventory. */
  identity(ip: string): PodIdentity | undefined {
    return this.clusterPod(ip) ?? this.inventory?.lookup(ip);
  }

  private clusterPod(ip: string): PodIdentity | undefined {
    const r = this.cluster?.identify(ip);
    if (r?.kind !== 'pod') return undefined;
    const id: PodIdentity = { namespace: r.namespace, pod: r.pod, labels: { ...r.labels }, workload: { kind: r.workload.kind, name: r.workload.name } };
    if (r.service !== undefined) id.service = r.service;
    if (r.node) id.node = r.node;
    return id;
  }

  /**
   * Starts watching the cluster for identity. Never fails the start: a
   * cluster that cannot be reached is reported, and the agent runs without
   * its identity (the informers keep retrying; names appear once they list).
   */
  private async startCluster(): Promise<void> {
    if (this.config.kubernetes === 'off') return;
    const source = kubernetesSource(this.config);
    if (!source) {
      this.notice(`kubernetes: ${this.config.kubernetes}: not in a cluster (KUBERNETES_SERVICE_HOST unset) and no kubeconfig given: running without cluster identity`);
      return;
    }
    let cluster: ClusterIdentity;
    try {
      const { ClusterIdentity } = await import('../k8s/cluster-identity.js');
      cluster = new ClusterIdentity({
        ...source,
        labels: this.config.identityLabels,
        ...(this.config.nodeName !== undefined ? { nodeName: this.config.nodeName } : {}),
      });
    } catch (err) {
      this.notice(`kubernetes: can't be used, running without cluster identity: ${firstLine(err)}`);
      return;
    }
    cluster.on('warning', (err, path) => {
      const message = `kubernetes: ${path}: ${firstLine(err)} (retrying)`;
      if (this.clusterWarnings.get(path) === message) return;
      this.clusterWarnings.set(path, message);
      this.notice(message);
    });
    this.cluster = cluster;
    try {
      await cluster.start(this.config.kubernetesTimeoutMs);
    } catch (err) {
      this.notice(`kubernetes: ${firstLine(err)}: running without cluster identity until it answers`);
    }
  }

  /** A problem that does not stop the agent: kept for startNotices() while starting, then an 'error' (a warning if nobody listens). */
  private notice(message: string): void {
    if (!this.started) {
      this.noticesAtStart.push(message);
      return;
    }
    if (this.listenerCount('error') > 0) this.emit('error', new Error(message));
    else process.emitWarning(message, { code: 'KUBENETPROBE_KUBERNETES' });
  }

  static async start(config: AgentConfig): Promise<Agent> {
    // A bad inventory is a config error: find it before loading anything.
    if (config.inventory) Inventory.load(config.inventory);
    keepLargeBuffersOnMmap();
    const monitor = await NetworkMonitor.create({
      flowTableCapacity: config.flowTableCapacity,
      packetSampleRate: config.packetSampleRate,
      securityEventRingBytes: config.securityEventRingBytes,
      detectors: detectorOptions(config),
      allowlist: config.allowlist,
    });
    const agent = new Agent(config, monitor);
    try {
      // Exporters first, so they see every event; a JSON lines path that cannot be opened fails the start.
      agent.exporters = await startExporters(agent, config);
      // History too; a store that cannot be opened never fails the start (it is moved aside, or kept in memory).
      if (config.history !== undefined) await agent.openHistory(config.history);
      // Cluster identity before the first cycle, so the first records carry names; never fails the start.
      await agent.startCluster();
      monitor.on('error', (e) => agent.emit('error', e));
      monitor.on('security', (e) => {
        agent.securityEvents.push(e);
        agent.appendHistory(() => agent.history?.appendEvents([e]), 1);
        agent.emit('security', e);
      });
      monitor.on('block', (c) => {
        agent.blockChanges.push(c);
        agent.emit('block', c);
      });
      monitor.on('lost', (l) => {
        const report: LostReport = { ...l, at: new Date() };
        agent.lostReports.push(report);
        agent.emit('lost', report);
      });
      monitor.startEventProcessing();
      const patterns = agent.interfacePatterns();
      if (patterns.length) {
        agent.watcher = InterfaceWatcher.start(patterns);
        agent.watcher.on('added', (r) => void agent.attach(r, 'interface'));
        agent.watcher.on('removed', (r) => void agent.forget(r, 'interface'));
        agent.watcher.on('error', (e) => agent.emit('error', e));
        for (const r of agent.watcher.current()) await agent.attach(r, 'interface');
      }
      if (config.attachPods) {
        const pods = new PodAttacher({ pods: () => agent.knownPods(), intervalMs: POD_ATTACH_INTERVAL_MS });
        agent.podAttacher = pods;
        pods.on('attach', (a) => void agent.attach(a, 'pod', a));
        pods.on('detach', (a) => void agent.forget(a, 'pod'));
        pods.on('error', (e) => agent.notice(e.message));
        agent.cluster?.on('podAdded', () => pods.syncSoon());
        agent.cluster?.on('podDeleted', () => pods.syncSoon());
        pods.start();
        for (const a of pods.attachments()) await agent.attach(a, 'pod', a);
      }
      agent.pipeline = startFlowPipeline(
        monitor,
        { intervalMs: config.intervalMs, idleTimeoutMs: config.idleTimeoutMs, endedTimeoutMs: config.endedTimeoutMs, activeTimeoutMs: config.activeTimeoutMs, onError: (e) => agent.emit('error', e) },
        (cycle) => agent.onCycle(cycle),
      );
      agent.started = true;
      return agent;
    } catch (err) {
      await agent.close();
      throw err;
    }
  }

  /**
   * The interface patterns, with @main replaced by the interfaces of the
   * node's default routes (read once, at start).
   */
  private interfacePatterns(): string[] {
    const patterns = this.config.interface.filter((p) => p !== MAIN_INTERFACE);
    if (patterns.length === this.config.interface.length) return patterns;
    let names: string[] = [];
    try {
      const nl = RtNetlink.open();
      try {
        names = nl.defaultRouteLinks().map((i) => interfaceName(i)).filter((n): n is string => n !== undefined);
      } finally {
        nl.close();
      }
    } catch (err) {
      this.notice(`interface ${MAIN_INTERFACE}: can't read the routes: ${firstLine(err)}`);
    }
    if (names.length === 0) this.notice(`interface ${MAIN_INTERFACE}: this node has no default route, so there is no main interface to attach to`);
    return [...new Set([...patterns, ...names])];
  }

  private async attach(r: InterfaceRef, reason: 'interface' | 'pod', pod?: PodAttachment): Promise<void> {
    if (this.closed) return;
    const known = this.interfaces.get(r.ifindex);
    if (known && known.name === r.name) {
      // Already watched (its name matches too, or the pod on it changed): note why, attach once.
      if (!known.reasons.includes(reason)) known.reasons.push(reason);
      if (pod) known.pod = { namespace: pod.pod.namespace, pod: pod.pod.pod, ip: pod.ip, foundBy: pod.foundBy };
      return;
    }
    const status: InterfaceStatus = { name: r.name, ifindex: r.ifindex, attached: false, hooks: [], notes: [], reasons: [reason], counters: {} };
    if (pod) status.pod = { namespace: pod.pod.namespace, pod: pod.pod.pod, ip: pod.ip, foundBy: pod.foundBy };
    this.interfaces.set(r.ifindex, status);
    try {
      const martians = this.martians(r.name);
      const info = await this.monitor.attachToInterface(r.name, { xdp: this.config.xdp, martians });
      status.attached = true;
      status.hooks = info.hooks.map((h) => `${h.hook} (${h.mode})`);
      status.notes = martians ? [...info.notes, 'martian sources reported here'] : info.notes;
    } catch (err) {
      // One bad interface must not stop the others; it shows in stats.
      status.notes = [`not attached: ${(err as Error).message.split('\n')[0]}`];
    }
  }

  private async forget(r: InterfaceRef, reason: 'interface' | 'pod'): Promise<void> {
    const status = this.interfaces.get(r.ifindex);
    if (!status) return;
    status.reasons = status.reasons.filter((x) => x !== reason);
    if (reason === 'pod') delete status.pod;
    // Still wanted for the other reason (its name matches and it is still there).
    if (status.reasons.length > 0 && interfaceName(r.ifindex) === r.name) return;
    // Keep what it counted, so the same name continues if it comes back.
    const counters = this.countersOf(r.ifindex);
    this.retired.set(r.name, this.mergeCounters(this.retired.get(r.name) ?? {}, counters));
    this.interfaces.delete(r.ifindex);
    if (!this.closed) await this.monitor.detachFromInterface(r.name).catch(() => false);
  }

  private countersOf(ifindex: number, all?: InterfaceCounters[]): InterfaceStatus['counters'] {
    const out: InterfaceStatus['counters'] = {};
    for (const c of all ?? this.monitor.getPacketStats().interfaces) {
      if (c.ifindex === ifindex) out[c.hook] = { packets: c.packets, bytes: c.bytes };
    }
    return out;
  }

  private mergeCounters(a: InterfaceStatus['counters'], b: InterfaceStatus['counters']): InterfaceStatus['counters'] {
    const out: InterfaceStatus['counters'] = { ...a };
    for (const [hook, c] of Object.entries(b) as [Hook, { packets: OutcomeCounts; bytes: OutcomeCounts }][]) {
      const prev = out[hook];
      out[hook] = prev ? { packets: addCounts(prev.packets, c.packets), bytes: addCounts(prev.bytes, c.bytes) } : c;
    }
    return out;
  }

  private onCycle(cycle: PipelineCycle): void {
    this.cycles++;
    try {
      this.inventory?.reload();
    } catch (err) {
      this.emit('error', err as Error); // keep the last good one
    }
    this.lastCycle = cycle;
    if (cycle.records.length) this.appendHistory(() => this.history?.append(cycle.records), cycle.records.length);
    for (const r of cycle.records) {
      if (r.reason === 'final') this.finished.push(r);
      this.emit('record', r);
    }
    this.emit('cycle', cycle);
  }

  /** True once the programs are loaded and the pipeline has run once. */
  get ready(): boolean {
    return !this.closed && this.cycles > 0;
  }

  /** Live flows from the last cycle, then recently finished ones, filtered; newest last. */
  flows(filter: FlowFilter = {}, limit = 1000): FlowView[] {
    const who = (ip: string): PodIdentity | undefined => this.identity(ip);
    const match = compileFilter(filter, who);
    const ids = (f: FlowStats) => ({ source: who(f.key.srcIp) ?? null, destination: who(f.key.dstIp) ?? null });
    const out: FlowView[] = [];
    for (const r of this.finished.toArray()) {
      if (match(r.flow.key, r.flow.interface)) out.push({ ...r.flow, state: 'finished', packetsPerSec: r.packetsPerSec, bytesPerSec: r.bytesPerSec, ...ids(r.flow) });
    }
    const cycle = this.lastCycle;
    for (let i = 0; cycle && i < cycle.snapshot.count; i++) {
      if (cycle.snapshot.removed[i]) continue;
      const f = cycle.snapshot.flow(i);
      if (!match(f.key, f.interface)) continue;
      const rate = cycle.rate(i);
      out.push({ ...f, state: 'live', packetsPerSec: rate?.packetsPerSec ?? 0, bytesPerSec: rate?.bytesPerSec ?? 0, ...ids(f) });
    }
    return out.slice(-limit);
  }

  /** Conversations among the live flows of the last cycle, filtered by their flows. */
  conversations(filter: FlowFilter = {}): ConversationView[] {
    const who = (ip: string): PodIdentity | undefined => this.identity(ip);
    const match = compileFilter(filter, who);
    return toConversations((this.lastCycle?.flows ?? []).filter((f) => match(f.key, f.interface))).map((c) => ({
      ...c,
      aIdentity: who(c.a.ip) ?? null,
      bIdentity: who(c.b.ip) ?? null,
    }));
  }

  /** Recent security events, filtered (the identity filters by the pods at either end, as identity() names them now), oldest first; the newest `limit`. */
  recentSecurityEvents(filter: SecurityFilter = {}, limit = Number.POSITIVE_INFINITY): SecurityEvent[] {
    const match = compileSecurityFilter(filter, (ip) => this.identity(ip));
    return this.securityEvents.toArray().filter(match).slice(-limit);
  }

  /** A security event with the pod identity of each end, where the inventory knows it. */
  securityView(e: SecurityEvent): SecurityEventView {
    return { ...e, attackerIdentity: this.identity(e.attacker.ip) ?? null, targetIdentity: this.identity(e.target.ip) ?? null };
  }

  /** Security events lost since the start (ring full or sequence gaps, whichever tells of more). */
  securityEventsLost(): number {
    const s = this.monitor.getPacketStats().events.security;
    return Math.max(s.dropped, s.gaps);
  }

  /** Recent blocks and unblocks, oldest first. */
  recentBlockChanges(limit = Number.POSITIVE_INFINITY): BlockChange[] {
    return this.blockChanges.toArray().slice(-limit);
  }

  /** Recent 'lost' reports, oldest first. */
  recentLost(): LostReport[] {
    return this.lostReports.toArray();
  }

  /** Sources blocked now (a block whose time is up lets frames pass, and leaves the table within a second). */
  blocks(): Block[] {
    const now = Date.now();
    return this.monitor.blocks().filter((b) => b.expiresAt === undefined || b.expiresAt.getTime() > now);
  }

  /**
   * Blocks `ip` by hand for `ttlMs` (default: blockTtlMs; 0: until lifted).
   * An allowlisted address is refused: the allowlist is never blocked.
   */
  block(ip: string, ttlMs?: number): Block {
    if (typeof ip !== 'string' || !isIP(ip)) throw new FilterError('ip', `not an IP address: ${JSON.stringify(ip)}`);
    if (ttlMs !== undefined) {
      if (typeof ttlMs !== 'number' || !Number.isInteger(ttlMs) || ttlMs < 0 || ttlMs > MAX_BLOCK_TTL_MS) {
        throw new FilterError('ttlMs', `must be a whole number of milliseconds from 0 (until lifted) to ${MAX_BLOCK_TTL_MS}, got ${JSON.stringify(ttlMs)}`);
      }
    }
    if (this.allowlist.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4')) {
      throw new FilterError('ip', `${ip} is on the allowlist, whose sources are never blocked`);
    }
    return this.monitor.block(ip, ttlMs === undefined ? {} : { ttlMs });
  }

  /** Lifts the block on `ip`: its final figures, or undefined if it had none. */
  unblock(ip: string): Block | undefined {
    if (typeof ip !== 'string' || !isIP(ip)) throw new FilterError('ip', `not an IP address: ${JSON.stringify(ip)}`);
    return this.monitor.unblock(ip);
  }

  detectorConfig(): DetectorConfig {
    return this.monitor.detectorConfig();
  }

  /** Changes detector settings at run time; a bad field is a FilterError naming it. Returns the settings now in force. */
  configureDetectors(change: unknown): DetectorConfig {
    return this.monitor.configureDetectors(parseDetectorChange(change, this.monitor.detectorConfig()));
  }

  stats(): AgentStats {
    const ps = this.monitor.getPacketStats();
    const interfaces = [...this.interfaces.values()].map((s) => ({
      ...s,
      counters: this.mergeCounters(this.retired.get(s.name) ?? {}, this.countersOf(s.ifindex, ps.interfaces)),
    }));
    const seen = ps.ingress.packets.parsed + ps.egress.packets.parsed;
    const attributed = seen - ps.flowTable.insertFailed;
    return {
      interfaces,
      flowTable: { ...ps.flowTable, fill: ps.flowTable.entries / ps.flowTable.capacity },
      lost: {
        packetEvents: ps.events.packet.dropped,
        securityEvents: ps.events.security.dropped,
        securityGaps: ps.events.security.gaps,
        consumer: ps.events.consumerDropped,
      },
      security: {
        mode: this.monitor.detectorConfig().mode,
        sent: ps.events.security.sent,
        dropped: ps.events.security.dropped,
        gaps: ps.events.security.gaps,
        suppressed: ps.events.security.suppressed,
        detectorStateFailed: ps.detectorStateFailed,
      },
      blocks: { active: this.blocks().length, packetsDropped: ps.blocks.packetsDropped, insertFailed: ps.blocks.insertFailed },
      coverage: { seen, attributed, ratio: seen === 0 ? 1 : attributed / seen },
      pipeline: {
        cycles: this.cycles,
        lastCycleMs: this.lastCycle?.durationMs,
        recentFlows: this.finished.size,
        recentFlowsDropped: this.finished.dropped,
        recentEvents: this.securityEvents.size,
        flowRead: { method: this.monitor.flowRead.method, detail: this.monitor.flowRead.detail },
        flowEvict: this.monitor.flowEvict,
      },
      export: this.exporters?.stats() ?? NO_EXPORT_STATS,
      history: this.historyStatus && { ...this.historyStatus, dropped: this.historyStatus.dropped + this.historyAppendFailed, notices: this.historyNotices.toArray() },
    };
  }

  // ---- Flow history -------------------------------------------------------------

  /**
   * The history store, when `history` is set and the store could be started
   * (a file, or memory when the file can't be used); undefined otherwise.
   */
  get historyStore(): HistoryStore | undefined {
    return this.closed ? undefined : this.history;
  }

  /** Why there is no history to ask: off, or a store that could not be started. undefined when there is one. */
  historyUnavailable(): string | undefined {
    if (this.historyStore) return undefined;
    if (this.config.history === undefined) return 'history is off; start the agent with --history PATH (or KUBENETPROBE_HISTORY, or "history" in the config file)';
    if (this.closed) return 'the agent is stopping';
    return `history is unavailable: ${this.historyStatus?.lastError ?? 'the store could not be started'}`;
  }

  /**
   * Writes what the store has buffered, so that a query sees every record up
   * to now. A failed write is reported by the store (notice, dropped count),
   * not here: the query goes on with what is written.
   */
  async flushHistory(): Promise<void> {
    await this.historyStore?.flush().catch(() => {});
  }

  /** Notices that came while the agent was starting, when nobody could listen yet (the CLI prints them). */
  startNotices(): string[] {
    return [...this.noticesAtStart];
  }

  /** Reads the store's figures for stats() now (they are refreshed every few seconds anyway). */
  async refreshHistoryStats(): Promise<void> {
    const store = this.historyStore;
    if (!store) return;
    this.historyRefresh ??= (async () => {
      try {
        const st = await store.stats();
        this.historyStatus = {
          ...this.historyStatus!,
          inMemory: st.inMemory,
          flows: st.flows,
          events: st.events,
          bytes: st.bytesOnDisk,
          oldest: st.oldest ?? null,
          newest: st.newest ?? null,
          buffered: st.buffered,
          written: st.written,
          dropped: st.dropped,
          lastError: st.lastError ?? null,
          recovery: st.recovery ?? null,
          updatedAt: new Date(),
        };
      } catch (err) {
        if (this.historyStatus && !this.closed) this.historyStatus.lastError = firstLine(err);
      } finally {
        this.historyRefresh = undefined;
      }
    })();
    return this.historyRefresh;
  }

  private async openHistory(path: string): Promise<void> {
    this.historyStatus = {
      path,
      inMemory: false,
      available: false,
      retentionMs: this.config.historyRetentionMs,
      maxBytes: this.config.historyMaxBytes,
      flows: 0,
      events: 0,
      bytes: 0,
      oldest: null,
      newest: null,
      buffered: 0,
      written: 0,
      dropped: 0,
      lastError: null,
      recovery: null,
      notices: [],
      updatedAt: null,
    };
    try {
      const { HistoryStore } = await import('../history/history-store.js');
      this.history = await HistoryStore.open(path, {
        retentionMs: this.config.historyRetentionMs,
        maxBytes: this.config.historyMaxBytes,
        identity: (ip) => this.identity(ip),
        onNotice: (n) => this.onHistoryNotice(n),
      });
    } catch (err) {
      // Only invalid options reject (the config checked them), or DuckDB's native library failing to load: run without history.
      const message = `history: ${path} can't be used, running without history: ${firstLine(err)}`;
      this.historyStatus.lastError = firstLine(err);
      this.onHistoryNotice({ kind: 'unavailable', message });
      return;
    }
    this.historyStatus.available = true;
    this.historyStatus.recovery = this.history.recovery ?? null;
    await this.refreshHistoryStats();
    this.historyTimer = setInterval(() => void this.refreshHistoryStats(), HISTORY_STATS_MS);
    this.historyTimer.unref();
  }

  private onHistoryNotice(n: HistoryNotice | { kind: 'unavailable'; message: string }): void {
    this.historyNotices.push({ at: new Date(), kind: n.kind, message: n.message });
    // While starting, nobody listens yet: the caller reads them from startNotices() and stats().
    if (!this.started) {
      this.noticesAtStart.push(n.message);
      return;
    }
    const err = new Error(n.message);
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else process.emitWarning(n.message, { code: 'KUBENETPROBE_HISTORY' });
  }

  /** Hands rows to the store; a store that throws (it never should) costs the rows, counted. */
  private appendHistory(append: () => void, rows: number): void {
    // Not `closed`: the pipeline's last cycle and the monitor's last events come after close() began, and are kept.
    if (!this.history || this.historyClosed) return;
    try {
      append();
    } catch (err) {
      this.historyAppendFailed += rows;
      this.onHistoryNotice({ kind: 'dropped', message: `history: ${rows} rows not stored: ${firstLine(err)}` });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pipeline?.close();
    this.watcher?.close();
    this.podAttacher?.close();
    await this.cluster?.close().catch(() => {});
    await this.monitor.close();
    // Last: the pipeline's and the monitor's final records are flushed with the rest.
    await this.exporters?.close();
    clearInterval(this.historyTimer);
    const history = this.history;
    this.historyClosed = true;
    if (history) {
      // Writes what is buffered; a failure is reported by the store, and the file is released either way.
      await history.close().catch(() => {});
      if (this.historyStatus) this.historyStatus.updatedAt = new Date();
    }
  }
}
