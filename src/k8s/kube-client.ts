/**
 * The connection to the API server: configuration, paged lists and watches
 * whose objects are reduced (slim.ts) before the informer caches them.
 *
 * The informers are @kubernetes/client-node's ListWatch: it lists, then
 * watches from the list's resourceVersion, re-watches from the last seen
 * resourceVersion when a watch ends, and relists (replacing its cache, with
 * delete callbacks for what vanished) on 410 Gone. Two things it leaves to
 * us, added here: it does not ask for bookmarks, and after a failed list or
 * a broken watch connection it reports an error and stops, so SlimInformer
 * restarts it with backoff.
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig, ListWatch, Watch, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';

export class KubeConfigError extends Error {
  override name = 'KubeConfigError';
}

export interface KubeConfigSource {
  /** A kubeconfig file; takes precedence over everything else. */
  kubeconfig?: string;
  /** Use the pod's service account (in-cluster config). Default: when KUBERNETES_SERVICE_HOST is set. */
  inCluster?: boolean;
}

const SA_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * Loads the configuration: an explicit kubeconfig path, else in-cluster
 * (service account), else $KUBECONFIG, else ~/.kube/config. Throws a
 * KubeConfigError saying how to give one when there is none.
 */
export function loadKubeConfig(src: KubeConfigSource = {}, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  const how =
    'give a kubeconfig file (the kubeconfig option, or the KUBECONFIG environment variable), ' +
    'or run inside a pod with a service account (in-cluster config)';
  if (src.kubeconfig !== undefined) {
    if (!existsSync(src.kubeconfig)) throw new KubeConfigError(`kubeconfig ${src.kubeconfig} does not exist; ${how}`);
    try {
      kc.loadFromFile(src.kubeconfig);
    } catch (err) {
      throw new KubeConfigError(`cannot read kubeconfig ${src.kubeconfig}: ${(err as Error).message}`);
    }
  } else if (src.inCluster ?? (env.KUBERNETES_SERVICE_HOST !== undefined && env.KUBERNETES_SERVICE_HOST !== '')) {
    if (!env.KUBERNETES_SERVICE_HOST || !existsSync(SA_TOKEN)) {
      throw new KubeConfigError(`in-cluster config needs KUBERNETES_SERVICE_HOST and a service account token at ${SA_TOKEN}; ${how}`);
    }
    kc.loadFromCluster();
  } else {
    const path = env.KUBECONFIG?.split(':').find((p) => p !== '' && existsSync(p)) ?? join(homedir(), '.kube', 'config');
    if (!existsSync(path)) throw new KubeConfigError(`no Kubernetes configuration found; ${how}`);
    try {
      kc.loadFromFile(path);
    } catch (err) {
      throw new KubeConfigError(`cannot read kubeconfig ${path}: ${(err as Error).message}`);
    }
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeConfigError(`the kubeconfig has no current cluster (set current-context); ${how}`);
  return kc;
}

export class KubeApiError extends Error {
  override name = 'KubeApiError';
  constructor(
    message: string,
    readonly statusCode: number,
  ) {
    super(message);
  }
}

/** GET a JSON document from the API server, with the kubeconfig's credentials and TLS settings. */
export async function getJson(kc: KubeConfig, path: string, signal?: AbortSignal): Promise<unknown> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeConfigError('no current cluster');
  const url = new URL(cluster.server.replace(/\/$/, '') + path);
  const opts: https.RequestOptions = { method: 'GET', headers: { Accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  if (signal) opts.signal = signal;
  const request = url.protocol === 'http:' ? http.request : https.request;
  return new Promise((resolve, reject) => {
    const req = request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        if (status !== 200) {
          let msg = body.slice(0, 300);
          try {
            const parsed = JSON.parse(body) as { message?: unknown };
            if (typeof parsed.message === 'string') msg = parsed.message;
          } catch {
            // not JSON: keep the text
          }
          reject(new KubeApiError(`GET ${path}: ${status} ${msg}`, status));
          return;
        }
        try {
          resolve(JSON.parse(body));
        } catch (err) {
          reject(new KubeApiError(`GET ${path}: bad JSON: ${(err as Error).message}`, status));
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

interface RawList {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: unknown[];
}

/**
 * Lists `path` in pages of `limit`, reducing each item with `slim` as the
 * page arrives, so that a full list of raw objects is never held at once.
 */
export async function pagedList<T extends KubernetesObject>(
  kc: KubeConfig,
  path: string,
  slim: (raw: unknown) => T,
  limit = 500,
): Promise<KubernetesListObject<T>> {
  const items: T[] = [];
  let cont = '';
  let resourceVersion = '';
  do {
    const q = new URLSearchParams({ limit: String(limit) });
    if (cont) q.set('continue', cont);
    const page = (await getJson(kc, `${path}?${q.toString()}`)) as RawList;
    for (const raw of page.items ?? []) items.push(slim(raw));
    resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
    cont = page.metadata?.continue ?? '';
  } while (cont);
  return { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion }, items };
}

/** A Watch that asks for bookmarks and reduces each object before the informer sees it. */
class SlimWatch extends Watch {
  constructor(
    config: KubeConfig,
    private readonly slim: (raw: unknown) => KubernetesObject,
    private readonly closed: () => boolean,
  ) {
    super(config);
  }

  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const slim = this.slim;
    // ListWatch does not look at stop() between its list and its watch: a close()
    // during a list must not open a watch afterwards.
    if (this.closed()) return Promise.resolve(new AbortController());
    return super.watch(
      path,
      // timeoutSeconds: the server ends the watch after 5-10 min (as client-go asks), and the
      // informer resumes it; a connection that died silently is not waited on for ever.
      { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: 300 + Math.floor(Math.random() * 300) },
      (phase: string, apiObj: unknown) => {
        // ERROR carries a Status and BOOKMARK only a resourceVersion: pass them through.
        callback(phase, phase === 'ERROR' || phase === 'BOOKMARK' ? apiObj : slim(apiObj));
      },
      done,
    );
  }
}

export interface SlimInformerOptions<T extends KubernetesObject> {
  kc: KubeConfig;
  /** e.g. /api/v1/pods */
  path: string;
  slim: (raw: unknown) => T;
  /** First retry delay after an error; doubles up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  pageSize?: number;
  onAdd: (o: T) => void;
  onUpdate: (o: T) => void;
  onDelete: (o: T) => void;
  onError?: (err: unknown, path: string) => void;
}

/** A ListWatch over slim objects, restarted with backoff after errors. */
export class SlimInformer<T extends KubernetesObject> {
  readonly informer: ListWatch<T>;
  /** Completed lists (the first, plus relists after 410 Gone). */
  lists = 0;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private backoff: number;
  private syncedResolve!: () => void;
  /** Resolves after the first successful list. */
  readonly synced: Promise<void>;
  lastError: unknown;

  get path(): string {
    return this.o.path;
  }

  constructor(private readonly o: SlimInformerOptions<T>) {
    this.backoff = o.backoffMs ?? 200;
    this.synced = new Promise((r) => (this.syncedResolve = r));
    const list = async (): Promise<KubernetesListObject<T>> => {
      const l = await pagedList(o.kc, o.path, o.slim, o.pageSize);
      if (this.closed) throw new Error('closed');
      this.lists++;
      this.backoff = o.backoffMs ?? 200;
      return l;
    };
    this.informer = new ListWatch<T>(o.path, new SlimWatch(o.kc, o.slim, () => this.closed), list, false);
    this.informer.on('add', o.onAdd);
    this.informer.on('update', o.onUpdate);
    this.informer.on('delete', o.onDelete);
    this.informer.on('connect', () => {
      if (this.lists > 0) this.syncedResolve();
    });
    this.informer.on('error', (err: unknown) => this.failed(err));
  }

  async start(): Promise<void> {
    await this.informer.start();
    // The list is complete once the watch has been started.
    if (this.lists > 0) this.syncedResolve();
  }

  private failed(err: unknown): void {
    if (this.closed) return;
    this.lastError = err;
    this.o.onError?.(err, this.o.path);
    clearTimeout(this.retry);
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.o.maxBackoffMs ?? 30_000);
    // Resumes from the last resourceVersion seen; a 410 then makes it relist.
    this.retry = setTimeout(() => {
      if (!this.closed) void this.start();
    }, delay);
    this.retry.unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retry);
    await this.informer.stop();
  }
}
