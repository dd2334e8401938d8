/**
 * Pod identity without a cluster: a static inventory file that maps pod IPs
 * to their name, namespace and labels (the demo writes one). A deleted pod's
 * IP can be reused, so the file is read again when it changes.
 */
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';
import { KubeNetProbeError } from '../errors.js';

/** A pod's identity, from the inventory file or the cluster (the same shape). */
export interface PodIdentity {
  namespace: string;
  pod: string;
  labels: Record<string, string>;
  /** What owns the pod, through ReplicaSet -> Deployment and Job -> CronJob ({kind: 'Pod', name} for a bare pod). */
  workload?: { kind: string; name: string };
  /** A service whose endpoints list the pod (same namespace). */
  service?: string;
  /** The node it runs on. */
  node?: string;
}

const schema = z
  .object({
    pods: z.array(
      z
        .object({
          name: z.string().min(1),
          namespace: z.string().min(1),
          labels: z.record(z.string(), z.string()).default({}),
          ip: z.string().refine((s) => isIP(s) !== 0, 'not an IP address'),
          workload: z.object({ kind: z.string().min(1), name: z.string().min(1) }).strict().optional(),
          service: z.string().min(1).optional(),
          node: z.string().min(1).optional(),
        })
        .strict(),
    ),
  })
  .strict();

export class Inventory {
  private byIp = new Map<string, PodIdentity>();
  private mtimeMs = -1;

  private constructor(readonly path: string) {}

  static load(path: string): Inventory {
    const inv = new Inventory(path);
    inv.reload();
    return inv;
  }

  /** Re-reads the file if it changed since the last read. */
  reload(): void {
    let mtime: number;
    try {
      mtime = statSync(this.path).mtimeMs;
    } catch (err) {
      throw new KubeNetProbeError('INVALID_ARGUMENT', `inventory ${this.path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    if (mtime === this.mtimeMs) return;
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(this.path, 'utf8'));
    } catch (err) {
      throw new KubeNetProbeError('INVALID_ARGUMENT', `inventory ${this.path}: not JSON (${(err as Error).message})`);
    }
    const r = schema.safeParse(data);
    if (!r.success) {
      const i = r.error.issues[0]!;
      throw new KubeNetProbeError('INVALID_ARGUMENT', `inventory ${this.path}: ${i.path.join('.') || 'file'}: ${i.message}`, {
        hint: 'expected {"pods": [{"name", "namespace", "labels", "ip"}]} (optional: "workload": {"kind", "name"}, "service", "node")',
      });
    }
    this.byIp = new Map(
      r.data.pods.map((p) => {
        const id: PodIdentity = { namespace: p.namespace, pod: p.name, labels: p.labels };
        if (p.workload) id.workload = p.workload;
        if (p.service !== undefined) id.service = p.service;
        if (p.node !== undefined) id.node = p.node;
        return [p.ip, id];
      }),
    );
    this.mtimeMs = mtime;
  }

  lookup(ip: string): PodIdentity | undefined {
    return this.byIp.get(ip);
  }

  get size(): number {
    return this.byIp.size;
  }

  /** Every pod the file names, by IP. */
  entries(): IterableIterator<[string, PodIdentity]> {
    return this.byIp.entries();
  }
}
