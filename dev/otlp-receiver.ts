/**
 * A small OTLP/HTTP receiver (JSON encoding, the `http/json` protocol) that keeps what the app exports:
 * spans, metric points and log records, flattened for reading. Tests start it and point
 * OTEL_EXPORTER_OTLP_ENDPOINT at it; `npm start -- --otel` runs one beside the local host, and GET / on it
 * shows what arrived. Protobuf bodies are refused with 415 (set OTEL_EXPORTER_OTLP_PROTOCOL=http/json).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type AttributeValue = string | number | boolean | AttributeValue[] | null;
export type Attributes = Record<string, AttributeValue>;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP's SpanKind number: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  attributes: Attributes;
  /** 0 unset, 1 ok, 2 error. */
  status: number;
  service: string;
}

export interface ReceivedPoint {
  metric: string;
  type: 'sum' | 'gauge' | 'histogram';
  attributes: Attributes;
  /** The value of a sum or gauge point; a histogram point's sum. */
  value: number;
  /** A histogram point's count. */
  count?: number;
}

export interface ReceivedLog {
  body: AttributeValue;
  severity: string;
  traceId: string;
  spanId: string;
  attributes: Attributes;
}

export interface OtlpReceiver {
  /** The base URL, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  spans: ReceivedSpan[];
  points: ReceivedPoint[];
  logs: ReceivedLog[];
  /** Every string of every attribute, name, body and resource received: what a leak check searches. */
  allText(): string;
  clear(): void;
  close(): Promise<void>;
}

interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}
interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: OtlpAnyValue[] };
  kvlistValue?: { values?: OtlpKeyValue[] };
}

function anyValue(value: OtlpAnyValue | undefined): AttributeValue {
  if (!value) return null;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.arrayValue) return (value.arrayValue.values ?? []).map(anyValue);
  if (value.kvlistValue) return JSON.stringify(attributes(value.kvlistValue.values));
  return null;
}

function attributes(list: OtlpKeyValue[] | undefined): Attributes {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, anyValue(kv.value)]));
}

type Json = Record<string, unknown>;
const array = (value: unknown): Json[] => (Array.isArray(value) ? (value as Json[]) : []);

function serviceOf(resource: unknown): string {
  const found = attributes((resource as Json | undefined)?.attributes as OtlpKeyValue[])['service.name'];
  return typeof found === 'string' ? found : '';
}

export async function startOtlpReceiver(
  options: { port?: number; host?: string } = {},
): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const points: ReceivedPoint[] = [];
  const logs: ReceivedLog[] = [];
  const texts: string[] = [];

  const onTraces = (body: Json) => {
    for (const rs of array(body.resourceSpans)) {
      const service = serviceOf(rs.resource);
      for (const ss of array(rs.scopeSpans)) {
        for (const s of array(ss.spans)) {
          spans.push({
            traceId: String(s.traceId ?? ''),
            spanId: String(s.spanId ?? ''),
            parentSpanId: String(s.parentSpanId ?? ''),
            name: String(s.name ?? ''),
            kind: Number(s.kind ?? 0),
            attributes: attributes(s.attributes as OtlpKeyValue[]),
            status: Number((s.status as Json | undefined)?.code ?? 0),
            service,
          });
        }
      }
    }
  };
  const onMetrics = (body: Json) => {
    for (const rm of array(body.resourceMetrics)) {
      for (const sm of array(rm.scopeMetrics)) {
        for (const m of array(sm.metrics)) {
          for (const type of ['sum', 'gauge', 'histogram'] as const) {
            const data = m[type] as Json | undefined;
            for (const p of array(data?.dataPoints)) {
              const value = type === 'histogram' ? p.sum : (p.asInt ?? p.asDouble);
              points.push({
                metric: String(m.name),
                type,
                attributes: attributes(p.attributes as OtlpKeyValue[]),
                value: Number(value ?? 0),
                ...(type === 'histogram' ? { count: Number(p.count ?? 0) } : {}),
              });
            }
          }
        }
      }
    }
  };
  const onLogs = (body: Json) => {
    for (const rl of array(body.resourceLogs)) {
      for (const sl of array(rl.scopeLogs)) {
        for (const r of array(sl.logRecords)) {
          logs.push({
            body: anyValue(r.body as OtlpAnyValue),
            severity: String(r.severityText ?? ''),
            traceId: String(r.traceId ?? ''),
            spanId: String(r.spanId ?? ''),
            attributes: attributes(r.attributes as OtlpKeyValue[]),
          });
        }
      }
    }
  };
  const handlers: Record<string, (body: Json) => void> = {
    '/v1/traces': onTraces,
    '/v1/metrics': onMetrics,
    '/v1/logs': onLogs,
  };

  const server = createServer(async (request: IncomingMessage, response: ServerResponse) => {
    const reply = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const path = (request.url ?? '/').split('?')[0] as string;
    if (request.method === 'GET' && path === '/') {
      reply(200, { spans: spans.slice(-200), points: points.slice(-200), logs: logs.slice(-200) });
      return;
    }
    const handler = handlers[path];
    if (request.method !== 'POST' || !handler) {
      reply(404, { error: 'POST /v1/traces, /v1/metrics or /v1/logs' });
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    if (!/json/i.test(request.headers['content-type'] ?? '')) {
      reply(415, {
        error: 'only the JSON encoding is accepted here (OTEL_EXPORTER_OTLP_PROTOCOL=http/json)',
      });
      return;
    }
    const text = Buffer.concat(chunks).toString('utf8');
    try {
      handler(JSON.parse(text) as Json);
    } catch {
      reply(400, { error: 'not OTLP JSON' });
      return;
    }
    texts.push(text);
    reply(200, {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  return {
    url: `http://${address}:${port}`,
    spans,
    points,
    logs,
    allText: () => texts.join('\n'),
    clear() {
      spans.length = 0;
      points.length = 0;
      logs.length = 0;
      texts.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
