/**
 * The agent's Prometheus metrics (prom-client), served on /metrics. Every
 * name starts with kubenetprobe_; docs/metrics.md lists them all.
 *
 * Counters that the kernel or the agent already keep as totals are set
 * from them at each scrape (reset, then the current totals): a series whose
 * interface or pod is gone simply isn't set again, so it disappears from
 * /metrics. No label is ever an IP address or a port; pod labels are capped
 * by the budget (PodTraffic), workload labels by the node's workloads.
 *
 * A scrape may carry identity filters (/metrics?namespace=shop&workload=...):
 * it then returns only the per-pod and per-workload series of the pods that
 * match, without "other" (it cannot be split), and nothing node-wide.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Agent, AgentStats } from '../agent/agent.js';
import type { PipelineCycle } from '../agent/flow-pipeline.js';
import { evictedFlowOf } from '../agent/flow-accounter.js';
import type { OutcomeCounts, SecurityEvent } from '../types.js';
import { compileIdentityFilter, type IdentityFilter } from '../agent/flow-filter.js';
import type { PodIdentity } from '../agent/inventory.js';
import { PodTraffic, type PodCounts } from './pod-traffic.js';

export interface AgentMetricsOptions {
  /** Pods that get series of their own; the rest are summed under pod="other". */
  podSeriesBudget: number;
}

const DIRECTION = { 'tc-ingress': 'ingress', 'tc-egress': 'egress' } as const;

export class AgentMetrics {
  readonly registry = new Registry();
  /** The per-pod and per-workload series alone, for scrapes with identity filters. */
  private readonly identityRegistry = new Registry();
  private readonly pods: PodTraffic;
  /** The filtered scrape under way: which pods and workloads it keeps. */
  private keep: { pod(key: string): boolean; workload(key: string): boolean } | undefined;
  private readonly cycleSeconds: Histogram;
  private readonly securityEvents: Counter;
  private readonly onCycle = (c: PipelineCycle): void => this.cycle(c);
  private readonly onSecurity = (e: SecurityEvent): void => this.securityEvents.inc({ type: e.type, severity: e.severity });
  private activeFlows = 0;
  private closed = false;
  /** The agent's stats for the scrape under way. */
  private scraping: AgentStats | undefined;

  constructor(
    private readonly agent: Agent,
    options: AgentMetricsOptions,
  ) {
    this.pods = new PodTraffic(options.podSeriesBudget);
    const registers = [this.registry];
    const prefix = 'kubenetprobe_';
    collectDefaultMetrics({ register: this.registry, prefix });

    // Set at each scrape from the agent's totals.
    // One agent.stats() per scrape (it reads several kernel maps), shared by every collector.
    const stats = (): AgentStats => (this.scraping ??= this.agent.stats());
    /** Each interface's TC counters by direction (XDP sees the same frames: left out). */
    const eachHook = (fn: (iface: string, direction: string, c: { packets: OutcomeCounts; bytes: OutcomeCounts }) => void): void => {
      for (const i of stats().interfaces) {
        for (const [hook, direction] of Object.entries(DIRECTION)) {
          const c = i.counters[hook as keyof typeof DIRECTION];
          if (c) fn(i.name, direction, c);
        }
      }
    };
    // prom-client calls collect() with the metric as `this`; these read our state.
    const activeFlows = (): number => this.activeFlows;
    const podSeries = () => this.pods.series();
    const keep = () => this.keep;
    const identityRegisters = [this.registry, this.identityRegistry];
    new Counter({
      name: `${prefix}packets_total`,
      help: 'IP packets parsed by TC, by interface and direction (frames that are not IP or not whole are in kubenetprobe_packets_unparsed_total)',
      labelNames: ['interface', 'direction'],
      registers,
      collect() {
        this.reset();
        eachHook((iface, direction, c) => this.inc({ interface: iface, direction }, c.packets.parsed));
      },
    });
    new Counter({
      name: `${prefix}bytes_total`,
      help: 'Bytes of IP packets parsed by TC (whole frames as the hook saw them), by interface and direction',
      labelNames: ['interface', 'direction'],
      registers,
      collect() {
        this.reset();
        eachHook((iface, direction, c) => this.inc({ interface: iface, direction }, c.bytes.parsed));
      },
    });
    new Counter({
      name: `${prefix}packets_unparsed_total`,
      help: 'Frames TC saw but did not account to a flow, by reason: non_ip (ARP, LLDP, ...), truncated, malformed',
      labelNames: ['interface', 'direction', 'reason'],
      registers,
      collect() {
        this.reset();
        eachHook((iface, direction, c) => {
          this.inc({ interface: iface, direction, reason: 'non_ip' }, c.packets.nonIp);
          this.inc({ interface: iface, direction, reason: 'truncated' }, c.packets.truncated);
          this.inc({ interface: iface, direction, reason: 'malformed' }, c.packets.malformed);
        });
      },
    });
    new Counter({
      name: `${prefix}drops_total`,
      help: 'Packets dropped or not recorded, by reason: blocked (enforce mode dropped the frame), flow_table_full (counted but not recorded in a flow)',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        const s = stats();
        this.inc({ reason: 'blocked' }, s.blocks.packetsDropped);
        this.inc({ reason: 'flow_table_full' }, s.flowTable.insertFailed);
      },
    });
    new Gauge({
      name: `${prefix}flows_active`,
      help: 'Flows in the kernel table at the last pipeline cycle',
      registers,
      collect() {
        this.set(activeFlows());
      },
    });
    new Gauge({
      name: `${prefix}flow_table_entries`,
      help: 'Entries in the kernel flow table',
      registers,
      collect() {
        this.set(stats().flowTable.entries);
      },
    });
    new Gauge({
      name: `${prefix}flow_table_capacity`,
      help: 'Entries the kernel flow table holds',
      registers,
      collect() {
        this.set(stats().flowTable.capacity);
      },
    });
    new Counter({
      name: `${prefix}flow_table_insert_failures_total`,
      help: 'Flows the kernel could not record because the table was full',
      registers,
      collect() {
        this.reset();
        this.inc(stats().flowTable.insertFailed);
      },
    });
    new Counter({
      name: `${prefix}events_lost_total`,
      help: 'Events lost, by ring: packet and security (ring full, counted by the kernel; security also by sequence gaps), consumer (a slow reader here)',
      labelNames: ['ring'],
      registers,
      collect() {
        this.reset();
        const l = stats().lost;
        this.inc({ ring: 'packet' }, l.packetEvents);
        this.inc({ ring: 'security' }, Math.max(l.securityEvents, l.securityGaps));
        this.inc({ ring: 'consumer' }, l.consumer);
      },
    });
    this.securityEvents = new Counter({
      name: `${prefix}security_events_total`,
      help: 'Security events received, by type and severity',
      labelNames: ['type', 'severity'],
      registers,
    });
    new Counter({
      name: `${prefix}security_events_suppressed_total`,
      help: 'Security events held back by the rate limits (per source and type, and per CPU), counted in the kernel',
      registers,
      collect() {
        this.reset();
        this.inc(stats().security.suppressed);
      },
    });
    new Gauge({
      name: `${prefix}blocks_active`,
      help: 'Sources blocked now (enforce mode or by hand)',
      registers,
      collect() {
        this.set(stats().blocks.active);
      },
    });
    new Gauge({
      name: `${prefix}coverage_ratio`,
      help: 'Packets attributed to flows over packets TC parsed (1 unless the flow table was full)',
      registers,
      collect() {
        this.set(stats().coverage.ratio);
      },
    });
    this.cycleSeconds = new Histogram({
      name: `${prefix}pipeline_cycle_duration_seconds`,
      help: 'How long one flow pipeline cycle took (read, evict, account)',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    const podCounter = (name: string, help: string, field: 'Bytes' | 'Packets') =>
      new Counter({
        name: `${prefix}${name}`,
        help,
        labelNames: ['namespace', 'pod', 'direction'],
        registers: identityRegisters,
        collect() {
          this.reset();
          const { pods, other } = podSeries();
          const k = keep();
          const set = (namespace: string, pod: string, c: PodCounts): void => {
            this.inc({ namespace, pod, direction: 'sent' }, c[`sent${field}`]);
            this.inc({ namespace, pod, direction: 'received' }, c[`received${field}`]);
          };
          for (const [key, c] of pods) {
            if (k && !k.pod(key)) continue;
            const slash = key.indexOf('/');
            set(key.slice(0, slash), key.slice(slash + 1), c);
          }
          if (!k) set('other', 'other', other);
        },
      });
    const workloadCounter = (name: string, help: string, field: 'Bytes' | 'Packets') =>
      new Counter({
        name: `${prefix}${name}`,
        help,
        labelNames: ['namespace', 'workload_kind', 'workload', 'direction'],
        registers: identityRegisters,
        collect() {
          this.reset();
          const k = keep();
          for (const [key, c] of podSeries().workloads) {
            if (k && !k.workload(key)) continue;
            const [namespace, kind, workload] = key.split('/') as [string, string, string];
            this.inc({ namespace, workload_kind: kind, workload, direction: 'sent' }, c[`sent${field}`]);
            this.inc({ namespace, workload_kind: kind, workload, direction: 'received' }, c[`received${field}`]);
          }
        },
      });
    podCounter('pod_bytes_total', `Bytes each pod sent and received (IP header and payload); the top ${options.podSeriesBudget} pods by bytes have series of their own, the rest are summed under namespace="other", pod="other"`, 'Bytes');
    podCounter('pod_packets_total', 'Packets each pod sent and received, under the same budget as kubenetprobe_pod_bytes_total', 'Packets');
    workloadCounter('workload_bytes_total', "Bytes the pods of each workload (Deployment, StatefulSet, DaemonSet, CronJob, Job, or a bare Pod) sent and received, all its pods on this node whatever the pod budget; the series goes with the workload's last pod", 'Bytes');
    workloadCounter('workload_packets_total', 'Packets, likewise', 'Packets');

    agent.on('cycle', this.onCycle);
    agent.on('security', this.onSecurity);
  }

  private cycle(c: PipelineCycle): void {
    this.cycleSeconds.observe(c.durationMs / 1000);
    let live = 0;
    for (let i = 0; i < c.snapshot.count; i++) if (!c.snapshot.removed[i]) live++;
    this.activeFlows = live;
    const pods: [string, string, string | undefined][] = [];
    for (const [ip, id] of this.agent.knownPods()) pods.push([ip, podKey(id), id.workload ? workloadKey(id) : undefined]);
    this.pods.setPods(pods);
    // Flows that ended this cycle first: the read no longer has them.
    // An evicted flow by its raw key: counting it decodes nothing.
    for (const r of c.records) {
      if (r.reason !== 'final') continue;
      const e = evictedFlowOf(r);
      if (e) this.pods.endedAt(e.keyWords, e.keyAt, e.packets, e.bytes);
      else this.pods.ended(r.flow.key, r.flow.packets, r.flow.bytes);
    }
    this.pods.read(c.snapshot);
  }

  /**
   * The text exposition format. With identity filters (each must match the
   * pod; the same filters as flows and events): only the per-pod series of
   * the pods that match and the per-workload series of the workloads with a
   * pod that matches.
   */
  async scrape(filter?: IdentityFilter): Promise<{ contentType: string; body: string }> {
    this.scraping = undefined;
    const match = filter ? compileIdentityFilter(filter) : undefined;
    const registry = match ? this.identityRegistry : this.registry;
    if (match) {
      const pods = new Set<string>();
      const workloads = new Set<string>();
      for (const [, id] of this.agent.knownPods()) {
        if (!match([id])) continue;
        pods.add(podKey(id));
        if (id.workload) workloads.add(workloadKey(id));
      }
      this.keep = { pod: (k) => pods.has(k), workload: (k) => workloads.has(k) };
    }
    try {
      // prom-client runs every collect() synchronously within this call, before its first await.
      const body = registry.metrics();
      this.keep = undefined;
      return { contentType: registry.contentType, body: await body };
    } finally {
      this.keep = undefined;
      this.scraping = undefined;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.agent.off('cycle', this.onCycle);
    this.agent.off('security', this.onSecurity);
    this.registry.clear();
    this.identityRegistry.clear();
  }
}

function podKey(id: PodIdentity): string {
  return `${id.namespace}/${id.pod}`;
}

function workloadKey(id: PodIdentity): string {
  return `${id.namespace}/${id.workload!.kind}/${id.workload!.name}`;
}
