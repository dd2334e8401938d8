/** What the agent's API sends, as far as the page reads it (docs/api.md). */

export interface Identity {
  namespace: string;
  pod: string;
  labels?: Record<string, string>;
  workload?: { kind: string; name: string };
  service?: string;
}

export interface MapNode {
  id: string;
  kind: 'pod' | 'world';
  label: string;
  namespace: string | null;
  pod: string | null;
  workload: { kind: string; name: string } | null;
  service: string | null;
  labels: Record<string, string>;
  ips: string[];
  bytesPerSecIn: number;
  bytesPerSecOut: number;
  alert: boolean;
}

export interface MapEdge {
  id: string;
  source: string;
  target: string;
  protocol: string;
  port: number | null;
  ports: number;
  bytesPerSec: number;
  packetsPerSec: number;
  bytes: number;
  packets: number;
  connections: number;
  resets: number;
  drops: number;
  securityEvents: number;
  severity: string | null;
  securityTypes: string[];
}

export interface ServiceMap {
  at: string;
  nodes: MapNode[];
  edges: MapEdge[];
  truncatedEdges: number;
  securityWindowMs: number;
}

export interface FlowRow {
  key: { srcIp: string; srcPort: number; dstIp: string; dstPort: number; protocol: string; direction: string };
  interface?: string;
  packets: number;
  bytes: number;
  bytesPerSec: number;
  packetsPerSec: number;
  lastSeen: string;
  firstSeen: string;
  tcpFlags: string[];
  state?: 'live' | 'finished';
  record?: 'active' | 'final';
  source: Identity | null;
  destination: Identity | null;
}

export interface SecurityEventRow {
  timestamp: string;
  type: string;
  severity: string;
  description: string;
  attacker: { ip: string; port: number };
  target: { ip: string; port: number };
  attackerIdentity: Identity | null;
  targetIdentity: Identity | null;
  interface?: string;
  count: number;
  threshold: number;
  seq: string;
  cpu: number;
}

export interface BlockRow {
  ip: string;
  reason: string;
  createdAt: string;
  expiresAt?: string;
  packetsDropped: number;
}

type Counts = { parsed: number; nonIp: number; truncated: number; malformed: number; total: number };

export interface Stats {
  interfaces: { name: string; attached: boolean; counters: Record<string, { packets: Counts; bytes: Counts } | undefined> }[];
  flowTable: { entries: number; capacity: number; fill: number; insertFailed: number };
  lost: { packetEvents: number; securityEvents: number; securityGaps: number; consumer: number };
  coverage: { seen: number; attributed: number; ratio: number };
  security: { mode: string };
  blocks: { active: number };
}
