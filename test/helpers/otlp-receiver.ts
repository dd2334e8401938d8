/**
 * A test OTLP/HTTP logs receiver: an HTTP server on 127.0.0.1 (a free
 * port) that takes POST /v1/logs in protobuf (application/x-protobuf, with a
 * small wire-format decoder of its own) or JSON (application/json), and keeps
 * the log records it got, decoded into plain values. It can be told to
 * refuse requests, to test how failures are counted.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Value = string | number | boolean | Uint8Array | Value[] | { [k: string]: Value } | null;

export interface ReceivedRecord {
  resource: Record<string, Value>;
  scope: string;
  timeUnixNano: bigint;
  observedTimeUnixNano: bigint;
  severityNumber: number;
  severityText: string;
  eventName: string;
  body: Value;
  attributes: Record<string, Value>;
}

export class OtlpReceiver {
  readonly records: ReceivedRecord[] = [];
  /** Content types of the requests, in order. */
  readonly contentTypes: string[] = [];
  /** While above 0, requests are answered with this status (and the count goes down). */
  refuse = { status: 0, count: 0 };
  private readonly server: Server;
  private port = 0;

  private constructor() {
    this.server = createServer((req, res) => {
      void (async () => {
        const body = await read(req);
        const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
        if (req.method !== 'POST' || req.url !== '/v1/logs') {
          res.writeHead(404).end();
          return;
        }
        this.contentTypes.push(type);
        if (this.refuse.count > 0) {
          this.refuse.count--;
          res.writeHead(this.refuse.status, { 'content-type': 'text/plain' }).end('refused by the test');
          return;
        }
        try {
          this.records.push(...(type === 'application/x-protobuf' ? decodeProto(body) : decodeJson(JSON.parse(body.toString('utf8')) as JsonRequest)));
        } catch (err) {
          res.writeHead(400, { 'content-type': 'text/plain' }).end(`cannot decode: ${(err as Error).message}`);
          return;
        }
        // An empty ExportLogsServiceResponse: full success.
        if (type === 'application/x-protobuf') res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      })();
    });
  }

  /** The receiver's base URL (the exporter adds /v1/logs). */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<OtlpReceiver> {
    const rx = new OtlpReceiver();
    await new Promise<void>((resolve) => rx.server.listen(0, '127.0.0.1', resolve));
    rx.port = (rx.server.address() as AddressInfo).port;
    return rx;
  }

  /** Waits until `n` records have come (or fails after `ms`). */
  async waitFor(n: number, ms = 10_000): Promise<ReceivedRecord[]> {
    const end = Date.now() + ms;
    while (this.records.length < n) {
      if (Date.now() > end) throw new Error(`the receiver got ${this.records.length} records, waited for ${n}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.records;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

function read(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// --- protobuf: the wire format (varints, fixed, length-delimited) and the OTLP logs messages ---

type Field = { no: number; varint?: bigint; bytes?: Uint8Array };

function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const b = buf[pos++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
  };
  const take = (n: number): Uint8Array => {
    if (pos + n > buf.length) throw new Error('truncated field');
    const b = buf.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  while (pos < buf.length) {
    const tag = Number(varint());
    const no = tag >>> 3;
    const wire = tag & 7;
    if (wire === 0) out.push({ no, varint: varint() });
    else if (wire === 1) out.push({ no, bytes: take(8) });
    else if (wire === 2) out.push({ no, bytes: take(Number(varint())) });
    else if (wire === 5) out.push({ no, bytes: take(4) });
    else throw new Error(`wire type ${wire} not expected in OTLP logs`);
  }
  return out;
}

const text = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('utf8');
const u64le = (b: Uint8Array | undefined): bigint => (b ? Buffer.from(b).readBigUInt64LE(0) : 0n);

function protoValue(buf: Uint8Array): Value {
  for (const f of fields(buf)) {
    switch (f.no) {
      case 1:
        return text(f.bytes);
      case 2:
        return f.varint !== 0n;
      case 3:
        return Number(BigInt.asIntN(64, f.varint!));
      case 4:
        return Buffer.from(f.bytes!).readDoubleLE(0);
      case 5:
        return fields(f.bytes!).filter((x) => x.no === 1).map((x) => protoValue(x.bytes!));
      case 6:
        return protoKeyValues(fields(f.bytes!).filter((x) => x.no === 1).map((x) => x.bytes!));
      case 7:
        return Uint8Array.from(f.bytes!);
    }
  }
  return null;
}

function protoKeyValues(list: Uint8Array[]): Record<string, Value> {
  const out: Record<string, Value> = {};
  for (const kv of list) {
    const fs = fields(kv);
    out[text(fs.find((x) => x.no === 1)?.bytes)] = protoValue(fs.find((x) => x.no === 2)?.bytes ?? new Uint8Array());
  }
  return out;
}

const all = (fs: Field[], no: number): Uint8Array[] => fs.filter((f) => f.no === no).map((f) => f.bytes!);

/** ExportLogsServiceRequest { repeated ResourceLogs resource_logs = 1 } */
function decodeProto(body: Uint8Array): ReceivedRecord[] {
  const out: ReceivedRecord[] = [];
  for (const rl of all(fields(body), 1)) {
    const rlf = fields(rl);
    // ResourceLogs { Resource resource = 1; repeated ScopeLogs scope_logs = 2 }; Resource { repeated KeyValue attributes = 1 }
    const resource = protoKeyValues(all(fields(all(rlf, 1)[0] ?? new Uint8Array()), 1));
    for (const sl of all(rlf, 2)) {
      const slf = fields(sl);
      // ScopeLogs { InstrumentationScope scope = 1; repeated LogRecord log_records = 2 }
      const scope = text(fields(all(slf, 1)[0] ?? new Uint8Array()).find((f) => f.no === 1)?.bytes);
      for (const lr of all(slf, 2)) {
        const f = fields(lr);
        const one = (no: number): Field | undefined => f.find((x) => x.no === no);
        out.push({
          resource,
          scope,
          timeUnixNano: u64le(one(1)?.bytes),
          observedTimeUnixNano: u64le(one(11)?.bytes),
          severityNumber: Number(one(2)?.varint ?? 0n),
          severityText: text(one(3)?.bytes),
          eventName: text(one(12)?.bytes),
          body: one(5) ? protoValue(one(5)!.bytes!) : null,
          attributes: protoKeyValues(all(f, 6)),
        });
      }
    }
  }
  return out;
}

// --- JSON (OTLP/HTTP JSON encoding) ---

interface JsonValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: JsonValue[] };
  kvlistValue?: { values?: JsonKeyValue[] };
  bytesValue?: string;
}
interface JsonKeyValue {
  key: string;
  value?: JsonValue;
}
interface JsonRequest {
  resourceLogs?: {
    resource?: { attributes?: JsonKeyValue[] };
    scopeLogs?: {
      scope?: { name?: string };
      logRecords?: {
        timeUnixNano?: string | number;
        observedTimeUnixNano?: string | number;
        severityNumber?: number;
        severityText?: string;
        eventName?: string;
        body?: JsonValue;
        attributes?: JsonKeyValue[];
      }[];
    }[];
  }[];
}

function jsonValue(v: JsonValue | undefined): Value {
  if (!v) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(jsonValue);
  if (v.kvlistValue) return jsonKeyValues(v.kvlistValue.values);
  if (v.bytesValue !== undefined) return Uint8Array.from(Buffer.from(v.bytesValue, 'base64'));
  return null;
}

function jsonKeyValues(list: JsonKeyValue[] | undefined): Record<string, Value> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, jsonValue(kv.value)]));
}

function decodeJson(req: JsonRequest): ReceivedRecord[] {
  const out: ReceivedRecord[] = [];
  for (const rl of req.resourceLogs ?? []) {
    const resource = jsonKeyValues(rl.resource?.attributes);
    for (const sl of rl.scopeLogs ?? []) {
      for (const r of sl.logRecords ?? []) {
        out.push({
          resource,
          scope: sl.scope?.name ?? '',
          timeUnixNano: BigInt(r.timeUnixNano ?? 0),
          observedTimeUnixNano: BigInt(r.observedTimeUnixNano ?? 0),
          severityNumber: r.severityNumber ?? 0,
          severityText: r.severityText ?? '',
          eventName: r.eventName ?? '',
          body: jsonValue(r.body),
          attributes: jsonKeyValues(r.attributes),
        });
      }
    }
  }
  return out;
}
