/** Reads the agent's API (same origin). A refusal becomes an ApiError with the agent's message and the parameter it names. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly parameter?: string,
  ) {
    super(message);
  }
}

export type Query = Record<string, string | undefined>;

export function queryString(q: Query): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

export async function getJson<T>(path: string, q: Query = {}, signal?: AbortSignal): Promise<T> {
  let r: Response;
  try {
    r = await fetch(`${path}${queryString(q)}`, { signal: signal ?? null, headers: { accept: 'application/json' } });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'UNREACHABLE', 'the agent does not answer');
  }
  const body = (await r.json().catch(() => ({}))) as { error?: { code?: string; message?: string; parameter?: string } };
  if (!r.ok) throw new ApiError(r.status, body.error?.code ?? 'HTTP', body.error?.message ?? `HTTP ${r.status}`, body.error?.parameter);
  return body as T;
}
