/** What the CRM webhook suites share: real handlers, real Azurite, the sandbox over mTLS, signed requests. */
import { randomBytes, randomUUID } from 'node:crypto';
import { HttpRequest, type HttpResponseInit, InvocationContext } from '@azure/functions';
import { decodeBase64Message } from '../dev/host/queue-message';
import type { Sandbox } from '../dev/sandbox';
import { signedHeaders } from '../dev/webhook';
import { adaptHttp, type FunctionsHttpHandler } from '../functions/http-adapter';
import { buildServices } from '../functions/services';
import { LogAlertSender } from '../lib/alerts';
import { loadConfig } from '../lib/config';
import {
  type CrmDeps,
  DEFAULT_POLICY,
  type DeliveryPolicy,
  DeliveryQueue,
  DeliveryStore,
  deliverQueuedRequest,
  deliveryStatus,
  deliveryStatusContent,
  handleWebhook,
  PendingWrites,
  type WebhookEndpoint,
  type WorkerOutcome,
  webhookKeys,
} from '../lib/crm';
import type { PlainRequest, PlainResponse } from '../lib/http';
import type { Log } from '../lib/log';
import { queueClient, tableClient } from '../lib/storage';

export const TENANT = '9d4c6f56-7db9-4236-9957-ce225e3583be';

export const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

export interface CrmFixture {
  deps: CrmDeps;
  secrets: string[];
  /** Lines the alert sender wrote (no email transport configured: the log). */
  alerts: string[];
  tableName: string;
  queueName: string;
}

/** Handlers' dependencies on their own table and queues, so suites never share a delivery. */
export function crmFixture(
  connection: string,
  sandbox: Sandbox,
  policy: Partial<DeliveryPolicy> = {},
  secrets = [newSecret()],
): CrmFixture {
  const run = randomBytes(4).toString('hex');
  const tableName = `CrmDeliveries${run}`;
  const queueName = `crm-deliveries-${run}`;
  const services = buildServices(
    loadConfig({
      AzureWebJobsStorage: connection,
      FPX_BASE_URL: sandbox.url,
      FPX_CERT_PATH: sandbox.certs.client.pemPath,
      FPX_CA_PATH: sandbox.certs.ca.path,
      FPX_RATE_LIMIT_PER_MINUTE: '60000',
      CRM_WEBHOOK_SECRET: secrets.join(' '),
    }),
  );
  const alerts: string[] = [];
  const deps: CrmDeps = {
    fpx: services.fpx,
    store: new DeliveryStore(tableClient(connection, tableName)),
    queue: new DeliveryQueue(
      queueClient(connection, queueName),
      queueClient(connection, `${queueName}-poison`),
    ),
    alerts: new LogAlertSender('no email transport in tests', (line) => alerts.push(line)),
    keys: webhookKeys(secrets),
    pending: new PendingWrites(),
    policy: { ...DEFAULT_POLICY, maxAttempts: 8, backoffSeconds: 1, ...policy },
    now: Date.now,
  };
  return { deps, secrets, alerts, tableName, queueName };
}

export interface WebhookOptions {
  secrets: readonly string[];
  webhookId?: string;
  headers?: Record<string, string>;
  at?: Date;
}

/** The headers of a signed webhook, `headers` last (they override). */
function webhookHeaders(body: string | Buffer, options: WebhookOptions): Record<string, string> {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  return {
    'content-type': 'application/json',
    ...signedHeaders(options.secrets, text, options.webhookId ?? `msg_${randomUUID()}`, options.at),
    ...options.headers,
  };
}

/** Header names in lower case, as PlainRequest has them. */
const lowerCased = (headers: Record<string, string>) =>
  Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));

/** A signed webhook as lib's handlers take it. */
export function webhookRequest(path: string, body: string | Buffer, options: WebhookOptions): PlainRequest {
  return {
    method: 'POST',
    path: `/api/crm/${path}`,
    headers: lowerCased(webhookHeaders(body, options)),
    body: Buffer.from(body),
  };
}

/** A signed webhook as the Functions library hands it to the function (for the end-to-end cases). */
export function webhookHttpRequest(
  path: string,
  body: string | Buffer,
  options: WebhookOptions,
): HttpRequest {
  return new HttpRequest({
    method: 'POST',
    url: `http://127.0.0.1:7071/api/crm/${path}`,
    headers: webhookHeaders(body, options),
    body: typeof body === 'string' ? { string: body } : { bytes: body },
  });
}

interface DeliveryStatusOptions {
  signedFor?: string;
  at?: Date;
  headers?: Record<string, string>;
}

function deliveryStatusHeaders(
  deliveryId: string,
  secrets: readonly string[],
  options: DeliveryStatusOptions,
) {
  const content = deliveryStatusContent(options.signedFor ?? deliveryId);
  return { ...signedHeaders(secrets, content, `msg_${randomUUID()}`, options.at), ...options.headers };
}

/** `GET /api/crm/deliveries/<id>` signed as the CRM signs it: over the method and path, in place of a body. */
export function deliveryStatusRequest(
  deliveryId: string,
  secrets: readonly string[],
  options: DeliveryStatusOptions = {},
): PlainRequest {
  return {
    method: 'GET',
    path: `/api/crm/deliveries/${deliveryId}`,
    headers: lowerCased(deliveryStatusHeaders(deliveryId, secrets, options)),
    body: null,
    params: { id: deliveryId },
  };
}

/** The same as the Functions library hands it to the function (for the end-to-end cases). */
export function deliveryStatusHttpRequest(
  deliveryId: string,
  secrets: readonly string[],
  options: DeliveryStatusOptions = {},
): HttpRequest {
  return new HttpRequest({
    method: 'GET',
    url: `http://127.0.0.1:7071/api/crm/deliveries/${deliveryId}`,
    headers: deliveryStatusHeaders(deliveryId, secrets, options),
    params: { id: deliveryId },
  });
}

/**
 * The webhook function as functions/ registers it (crmNotes, crmContacts, crmEntitlements), on the
 * fixture's dependencies: the Functions library's HttpRequest and InvocationContext in, its answer out.
 */
export function webhookFunction(deps: CrmDeps, endpoint: WebhookEndpoint): FunctionsHttpHandler {
  return adaptHttp((request, log) => handleWebhook(deps, endpoint, request, log));
}

/** crmDelivery as functions/ registers it, on the fixture's dependencies. */
export function deliveryStatusFunction(deps: CrmDeps): FunctionsHttpHandler {
  return adaptHttp((request) => deliveryStatus(deps, request, request.params?.id ?? ''));
}

/** A Log that keeps its lines. */
export function recordingLog(): { log: Log; lines: string[] } {
  const lines: string[] = [];
  const line =
    (level: string) =>
    (...args: unknown[]) =>
      lines.push(`${level}: ${args.map(String).join(' ')}`);
  return { log: { log: line('information'), warn: line('warning'), error: line('error') }, lines };
}

export interface LoggedContext {
  context: InvocationContext;
  lines: string[];
}

/** The Functions library's InvocationContext, keeping its log lines (for the end-to-end cases). */
export function loggedContext(functionName = 'crmNotes'): LoggedContext {
  const lines: string[] = [];
  const context = new InvocationContext({
    functionName,
    logHandler: (level, ...args) => lines.push(`${level}: ${args.map(String).join(' ')}`),
  });
  return { context, lines };
}

/** An answer of lib's (PlainResponse) or of a function (HttpResponseInit, through the adapter). */
type Answer = PlainResponse | HttpResponseInit;

export function bodyOf(answer: Answer): Record<string, unknown> {
  return answer.jsonBody as Record<string, unknown>;
}

export function headerOf(answer: Answer, name: string): string | undefined {
  const headers = (answer.headers ?? {}) as Record<string, string>;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  return key ? headers[key] : undefined;
}

/** Note creates the sandbox answered (not dropped or failed), optionally for one text. */
export function noteCreates(sandbox: Sandbox, text?: string) {
  return sandbox.requests.filter(
    (r) =>
      r.method === 'POST' &&
      r.path.endsWith('/notes') &&
      (text === undefined || (r.body as { text?: string } | undefined)?.text === text),
  );
}

/** Notes stored in the sandbox for a tenant with this text. */
export function storedNotes(sandbox: Sandbox, tenantId: string, text: string) {
  return (sandbox.data.tenants.get(tenantId)?.notes ?? []).filter((entry) => entry.note.text === text);
}

export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Plays the queue trigger: takes visible messages and hands each to the worker, as the host would. */
export async function runWorker(deps: CrmDeps, lines: string[] = []): Promise<WorkerOutcome[]> {
  const received = await deps.queue.main.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 60 });
  const outcomes: WorkerOutcome[] = [];
  for (const message of received.receivedMessageItems) {
    const text = decodeBase64Message(message.messageText)?.toString('utf8') ?? message.messageText;
    const log: Log = {
      log: () => undefined,
      warn: () => undefined,
      error: (...args: unknown[]) => lines.push(args.join(' ')),
    };
    outcomes.push(await deliverQueuedRequest(deps, JSON.parse(text), log));
    await deps.queue.main.deleteMessage(message.messageId, message.popReceipt);
  }
  return outcomes;
}

/** Runs the worker until `count` outcomes are in (each retry becomes visible after its backoff). */
export async function workerOutcomes(deps: CrmDeps, count: number): Promise<WorkerOutcome[]> {
  const outcomes: WorkerOutcome[] = [];
  await waitFor(`${count} worker outcome(s)`, async () => {
    outcomes.push(...(await runWorker(deps)));
    return outcomes.length >= count;
  });
  return outcomes;
}
