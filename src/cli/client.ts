/**
 * The CLI's side of the API: fetches from a running agent, and says how to
 * start one when none answers.
 */
import { KubeNetProbeError } from '../errors.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:9470';

export class NoAgentError extends KubeNetProbeError {
  constructor(server: string, cause: unknown) {
    super('SYSTEM', `no agent answers at ${server}`, {
      hint: 'start one with `npx kubenetprobe agent --interface eth0` (as root), or point --server at it',
      cause,
    });
  }
}

function checkServer(server: string): URL {
  let u: URL;
  try {
    u = new URL(server);
  } catch {
    throw new KubeNetProbeError('INVALID_ARGUMENT', `--server ${JSON.stringify(server)} is not a URL`, { hint: `e.g. ${DEFAULT_SERVER}` });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new KubeNetProbeError('INVALID_ARGUMENT', `--server must be an http(s) URL, got ${server}`);
  return u;
}

export async function apiGet<T>(server: string, path: string, query: Record<string, string | undefined> = {}, signal?: AbortSignal): Promise<T> {
  return readBody<T>(await request(server, path, query, signal));
}

/** A text answer (the Prometheus exposition); the agent's own message for a bad one. */
export async function apiText(server: string, path: string, query: Record<string, string | undefined> = {}): Promise<string> {
  const r = await request(server, path, query);
  if (!r.ok) await readBody(r);
  return r.text();
}

/** A request that changes something (POST, PATCH, DELETE), with a JSON body if given. */
export async function apiSend<T>(server: string, method: 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const u = new URL(path, checkServer(server));
  let r: Response;
  try {
    r = await fetch(u, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  } catch (err) {
    throw new NoAgentError(server, err);
  }
  return readBody<T>(r);
}

/** The JSON body of a good answer; the agent's own message for a bad one. */
async function readBody<T>(r: Response): Promise<T> {
  let body: (T & { error?: { message: string } }) | undefined;
  try {
    body = (await r.json()) as T & { error?: { message: string } };
  } catch {
    body = undefined;
  }
  if (!r.ok || body === undefined) {
    const message = body?.error?.message ?? `HTTP ${r.status} ${r.statusText}`;
    throw new KubeNetProbeError('INVALID_ARGUMENT', r.status === 404 && body?.error ? message : `the agent refused: ${message}`);
  }
  return body;
}

export async function request(server: string, path: string, query: Record<string, string | undefined>, signal?: AbortSignal): Promise<Response> {
  const u = new URL(path, checkServer(server));
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') u.searchParams.set(k, v);
  try {
    return await fetch(u, signal ? { signal } : {});
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new NoAgentError(server, err);
  }
}

/** Opens the agent's live stream; a refused query is an error with the agent's message. */
export async function openStream(server: string, query: Record<string, string | undefined>): Promise<Response> {
  const r = await request(server, '/api/v1/events', query);
  if (!r.ok) await readBody(r);
  return r;
}

/** Reads a server-sent-event stream and calls `onEvent` per event. */
export async function followEvents(res: Response, onEvent: (event: string, data: string) => void): Promise<void> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      onEvent(event, data.join('\n'));
    }
  }
}
