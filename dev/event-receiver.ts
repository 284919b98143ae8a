/**
 * A local CRM events receiver for `npm start` (and the events tests and benchmark): verifies each event's
 * Standard Webhooks signature with CRM_EVENTS_SECRET (lib/crm/signature.ts, as the CRM side would) and
 * prints it. Answers 204 to a valid event, 401 to a bad signature; a test can script other answers.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhookSignature, webhookKeys } from '../lib/crm/signature';

export interface ReceivedEvent {
  webhookId: string;
  timestamp: number;
  /** The body, parsed: `{type, timestamp, data}`. */
  event: { type: string; timestamp: string; data: Record<string, unknown> };
  /** The status answered. */
  status: number;
  receivedAt: number;
}

export interface EventReceiverOptions {
  /** The `whsec_…` secret(s) events are signed with. */
  secret: string;
  /** Default 7072; 0 takes a free port. A busy port falls back to a free one. */
  port?: number;
  /** Told of each event; default a line on the console. `false`: nothing printed. */
  log?: ((line: string) => void) | false;
  /** The status to answer a validly signed event with (default 204); tests script failures with it. */
  answer?: (event: Omit<ReceivedEvent, 'status' | 'receivedAt'>) => number;
  /** The receiver's clock for the signature's five minutes (tests move time). */
  now?: () => number;
}

export interface EventReceiver {
  /** `http://127.0.0.1:<port>/events`, for CRM_EVENTS_URL. */
  url: string;
  /** Every validly signed event received, in order (repeats included). */
  events: ReceivedEvent[];
  /** Requests refused for their signature. */
  rejected: number;
  close(): Promise<void>;
}

export async function startEventReceiver(options: EventReceiverOptions): Promise<EventReceiver> {
  const keys = webhookKeys(options.secret.split(/\s+/).filter(Boolean));
  const log = options.log === false ? undefined : (options.log ?? ((line: string) => console.log(line)));
  const events: ReceivedEvent[] = [];
  const receiver = { events, rejected: 0 };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const header = (name: string) => {
      const value = request.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const check = verifyWebhookSignature(
      keys,
      {
        id: header('webhook-id'),
        timestamp: header('webhook-timestamp'),
        signature: header('webhook-signature'),
      },
      body,
      options.now?.() ?? Date.now(),
    );
    if (!check.ok) {
      receiver.rejected++;
      log?.(`CRM event refused: ${check.message}`);
      response
        .writeHead(401, { 'content-type': 'application/json' })
        .end(JSON.stringify({ message: check.message }));
      return;
    }
    const event = JSON.parse(body.toString('utf8')) as ReceivedEvent['event'];
    const received = { webhookId: check.webhookId, timestamp: check.timestamp, event };
    const status = options.answer?.(received) ?? 204;
    events.push({ ...received, status, receivedAt: Date.now() });
    const data = event.data ?? {};
    log?.(
      `CRM event ${event.type} ${String(data.id ?? data.tenantId ?? '')} (${check.webhookId}, signature valid): ${status}`,
    );
    response.writeHead(status).end();
  };

  const server = createServer((request, response) => {
    handle(request, response).catch(() => response.writeHead(400).end());
  });
  // Keep-alive connections must not hold close() up.
  server.keepAliveTimeout = 1_000;
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const wanted = options.port ?? 7072;
  const port = await listen(wanted).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'EADDRINUSE' && wanted !== 0) return listen(0);
    throw error;
  });
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${port}/events`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
