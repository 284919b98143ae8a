/** What the CRM webhook suites share: real handlers, real Azurite, the sandbox over mTLS, signed requests. */
import { randomBytes, randomUUID } from 'node:crypto';
import { HttpRequest, type HttpResponseInit, InvocationContext } from '@azure/functions';
import type { QueueClient } from '@azure/storage-queue';
import { afterAll, beforeAll } from 'vitest';
import { decodeBase64Message } from '../dev/host/queue-message';
import { type Sandbox, sandboxSettings, startSandbox } from '../dev/sandbox';
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
  deliveryIdFor,
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
import { MovableClock } from './support/clock';

export const TENANT = '9d4c6f56-7db9-4236-9957-ce225e3583be';

export const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

/** A contact webhook body FPX (and the sandbox) accepts. */
export function contactPayload(email: string, tenantId: string = TENANT): Record<string, unknown> {
  return {
    tenantId,
    name: 'Pat Lee',
    email,
    title: 'CTO',
    surveyEligible: false,
    countryRegionId: '12345678-1234-1234-1234-123456789abc',
    surveyLanguageId: '12345678-1234-1234-1234-123456789abc',
    contactTypeId: 1,
    services: [1, 2],
  };
}

/** The suite's own small FPX sandbox (4 tenants), started before its tests and closed after them. */
export function suiteSandbox(): () => Sandbox {
  let sandbox: Sandbox | undefined;
  beforeAll(async () => {
    sandbox = await startSandbox({ data: { tenants: 4, referrals: 2 }, rateLimitPerMinute: 0 });
  });
  afterAll(() => sandbox?.close());
  return () => {
    if (!sandbox) throw new Error('the suite sandbox is started in beforeAll');
    return sandbox;
  };
}

export interface CrmFixture {
  deps: CrmDeps;
  /** The handlers' clock (`deps.now`): real time, moved on by the test instead of waiting. */
  clock: MovableClock;
  /** `deps.queue`: retries are on the queue at once, handed to the worker once due on `clock`. */
  queue: ScheduledDeliveryQueue;
  secrets: string[];
  /** Lines the alert sender wrote (no email transport configured: the log). */
  alerts: string[];
  tableName: string;
  queueName: string;
}

/**
 * The delivery queue on the test's clock. A retry is sent visible at once and its due time (the backoff the
 * handlers asked for, on `clock`) is kept; `runWorker` moves the clock on to it before handing the message
 * over, as the queue would have kept it invisible until then. `scheduled` lists every retry asked for.
 */
export class ScheduledDeliveryQueue extends DeliveryQueue {
  readonly scheduled: Array<{ deliveryId: string; delaySeconds: number }> = [];
  private readonly dueAt = new Map<string, number>();

  constructor(
    main: QueueClient,
    poisonQueue: QueueClient,
    readonly clock: MovableClock,
  ) {
    super(main, poisonQueue);
  }

  override async schedule(deliveryId: string, delaySeconds: number): Promise<void> {
    this.scheduled.push({ deliveryId, delaySeconds });
    this.dueAt.set(deliveryId, this.clock.now() + Math.max(0, delaySeconds) * 1000);
    await super.schedule(deliveryId, 0);
  }

  /** Time passes until the latest retry of this delivery is due (no waiting: the clock moves). */
  letDueTimePass(deliveryId: string): void {
    const due = this.dueAt.get(deliveryId);
    if (due !== undefined) this.clock.advanceTo(due);
  }
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
      ...sandboxSettings(sandbox),
      FPX_RATE_LIMIT_PER_MINUTE: '60000',
      CRM_WEBHOOK_SECRET: secrets.join(' '),
    }),
  );
  const alerts: string[] = [];
  const clock = new MovableClock();
  const queue = new ScheduledDeliveryQueue(
    queueClient(connection, queueName),
    queueClient(connection, `${queueName}-poison`),
    clock,
  );
  const deps: CrmDeps = {
    fpx: services.fpx,
    store: new DeliveryStore(tableClient(connection, tableName)),
    queue,
    alerts: new LogAlertSender('no email transport in tests', (line) => alerts.push(line)),
    keys: webhookKeys(secrets),
    pending: new PendingWrites(),
    policy: { ...DEFAULT_POLICY, maxAttempts: 8, backoffSeconds: 1, ...policy },
    now: () => clock.now(),
  };
  return { deps, clock, queue, secrets, alerts, tableName, queueName };
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

/**
 * A signed webhook through lib's handler, as the CRM posts it: the answer, its JSON body, the delivery id and
 * what the handler logged. `drain` waits for the final record written after the answer.
 */
export async function postWebhook(
  target: { deps: CrmDeps; secrets: readonly string[] },
  endpoint: WebhookEndpoint,
  body: Record<string, unknown>,
  options: Partial<WebhookOptions> & { drain?: boolean } = {},
) {
  const webhookId = options.webhookId ?? `msg_${randomUUID()}`;
  const { log, lines } = recordingLog();
  const request = webhookRequest(endpoint, JSON.stringify(body), {
    secrets: target.secrets,
    ...options,
    webhookId,
  });
  const answer = await handleWebhook(target.deps, endpoint, request, log);
  if (options.drain) await target.deps.pending.drain();
  return {
    answer,
    status: answer.status,
    body: bodyOf(answer),
    deliveryId: deliveryIdFor(webhookId),
    webhookId,
    lines,
  };
}

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

/**
 * Plays the queue trigger: takes the visible messages and hands each to the worker, as the host would. On a
 * fixture's queue, time first passes until the message is due (the clock moves; nothing waits).
 */
export async function runWorker(deps: CrmDeps, lines: string[] = []): Promise<WorkerOutcome[]> {
  // A retry comes a second or more after the answer: by then this process's final records have landed.
  await deps.pending.drain();
  const received = await deps.queue.main.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 60 });
  const outcomes: WorkerOutcome[] = [];
  for (const message of received.receivedMessageItems) {
    const text = decodeBase64Message(message.messageText)?.toString('utf8') ?? message.messageText;
    const log: Log = {
      log: () => undefined,
      warn: () => undefined,
      error: (...args: unknown[]) => lines.push(args.join(' ')),
    };
    const parsed: unknown = JSON.parse(text);
    if (deps.queue instanceof ScheduledDeliveryQueue && isDeliveryMessage(parsed)) {
      deps.queue.letDueTimePass(parsed.deliveryId);
    }
    outcomes.push(await deliverQueuedRequest(deps, parsed, log));
    await deps.queue.main.deleteMessage(message.messageId, message.popReceipt);
  }
  return outcomes;
}

const isDeliveryMessage = (value: unknown): value is { deliveryId: string } =>
  typeof (value as { deliveryId?: unknown } | null)?.deliveryId === 'string';

/**
 * Runs the worker until `count` outcomes are in: each retry is on the queue at once and due after its
 * backoff on the fixture's clock, so this takes no waiting. Fails when the queue runs dry first.
 */
export async function workerOutcomes(deps: CrmDeps, count: number): Promise<WorkerOutcome[]> {
  const outcomes: WorkerOutcome[] = [];
  while (outcomes.length < count) {
    const ran = await runWorker(deps);
    if (ran.length === 0) {
      throw new Error(`The queue ran dry after ${outcomes.length} of ${count} outcome(s): ${outcomes}`);
    }
    outcomes.push(...ran);
  }
  return outcomes;
}
