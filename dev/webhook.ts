/**
 * `npm run webhook -- <notes|contacts|entitlements> <json-file> [--id <webhook-id>] [--token <jwt>] [--url <base>]`
 * signs a JSON file as a Standard Webhook with the local secret and sends it to the local host, printing
 * the answer. `npm run webhook -- delivery <deliveryId>` asks for a delivery's state (signed over
 * `GET /api/crm/deliveries/<deliveryId>` in place of a body).
 *
 * The secret: CRM_WEBHOOK_SECRET from the environment or local.settings.json, else `.local/webhook-secret`
 * (which `npm start` generates), as `npm start` chooses it. Every secret given (space separated) signs, as
 * during a rotation.
 * The host: `--url`, else CRM_WEBHOOK_URL, else the host of the running `npm start` (`.local/settings.json`,
 * whatever its port), else http://127.0.0.1:7071.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { deliveryStatusContent } from '../lib/crm/signature';
import { PROJECT_ROOT } from './host/app-loader';
import { currentSettings } from './host/settings';
import { runningStart } from './local-settings';

export const DEFAULT_HOST_URL = 'http://127.0.0.1:7071';
const ENDPOINTS = ['notes', 'contacts', 'entitlements'] as const;

/** CRM_WEBHOOK_SECRET (environment, then local.settings.json), else the one `npm start` generated. */
export function localWebhookSecrets(root = PROJECT_ROOT): string[] {
  const configured = currentSettings(root).CRM_WEBHOOK_SECRET?.trim();
  if (configured) return configured.split(/\s+/);
  const file = path.join(root, '.local', 'webhook-secret');
  if (existsSync(file)) return [readFileSync(file, 'utf8').trim()];
  throw new Error(
    'No webhook secret: set CRM_WEBHOOK_SECRET or run `npm start` once (it writes .local/webhook-secret)',
  );
}

/** Standard Webhooks headers for `body`, signed (by the `standardwebhooks` package) with every secret. */
export function signedHeaders(
  secrets: readonly string[],
  body: string,
  webhookId = `msg_${randomUUID()}`,
  at = new Date(),
): Record<string, string> {
  const signatures = secrets.map((secret) => new Webhook(secret).sign(webhookId, at, body));
  return {
    'webhook-id': webhookId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': signatures.join(' '),
  };
}

/** CRM_WEBHOOK_URL, else the host of the running `npm start`, else http://127.0.0.1:7071. */
export function localHostUrl(): string {
  const url = process.env.CRM_WEBHOOK_URL?.trim() || runningStart()?.start.hostUrl || DEFAULT_HOST_URL;
  return url.replace(/\/+$/, '');
}

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

export interface SendOptions {
  baseUrl?: string;
  secrets?: readonly string[];
  webhookId?: string;
  endUserToken?: string;
}

/** POSTs a signed webhook to `/api/crm/<endpoint>` and returns the answer. */
export async function sendWebhook(
  endpoint: string,
  body: string,
  options: SendOptions = {},
): Promise<Answer> {
  const headers = {
    'content-type': 'application/json',
    ...signedHeaders(options.secrets ?? localWebhookSecrets(), body, options.webhookId),
    ...(options.endUserToken ? { 'x-end-user-token': options.endUserToken } : {}),
  };
  const response = await fetch(`${options.baseUrl ?? localHostUrl()}/api/crm/${endpoint}`, {
    method: 'POST',
    headers,
    body,
  });
  return answerOf(response);
}

/** GET /api/crm/deliveries/{id}, signed over `GET /api/crm/deliveries/<id>` (the request's own path). */
export async function getDelivery(deliveryId: string, options: SendOptions = {}): Promise<Answer> {
  const secrets = options.secrets ?? localWebhookSecrets();
  const headers = signedHeaders(secrets, deliveryStatusContent(deliveryId), options.webhookId);
  const url = `${options.baseUrl ?? localHostUrl()}/api/crm/deliveries/${encodeURIComponent(deliveryId)}`;
  return answerOf(await fetch(url, { headers }));
}

export async function answerOf(response: Response): Promise<Answer> {
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: shown as text
  }
  return { status: response.status, headers: Object.fromEntries(response.headers), body };
}

const USAGE =
  'usage: npm run webhook -- <notes|contacts|entitlements> <json-file> [--id <webhook-id>] [--token <jwt>] [--url <base>]\n' +
  '       npm run webhook -- delivery <deliveryId> [--url <base>]';

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { id: { type: 'string' }, token: { type: 'string' }, url: { type: 'string' } },
  });
  const [what, target] = positionals;
  if (!what || !target || !(ENDPOINTS.includes(what as never) || what === 'delivery')) {
    console.error(USAGE);
    return 2;
  }
  const options: SendOptions = {
    baseUrl: values.url?.replace(/\/+$/, '') ?? localHostUrl(),
    webhookId: values.id ?? `msg_${randomUUID()}`,
    endUserToken: values.token,
  };
  if (what !== 'delivery')
    console.log(`webhook-id ${options.webhookId} (send again with --id to see the replay)`);
  const answer =
    what === 'delivery'
      ? await getDelivery(target, options)
      : await sendWebhook(what, readFileSync(target, 'utf8'), options);
  return printAnswer(answer);
}

/** Prints an answer as the dev commands do (status, a replay marked, the body) and gives the exit code. */
export function printAnswer(answer: Answer): number {
  const replayed = answer.headers['idempotent-replayed'] ? ' (Idempotent-Replayed)' : '';
  console.log(`HTTP ${answer.status}${replayed}`);
  console.log(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body, null, 2));
  return answer.status < 400 ? 0 : 1;
}

if (typeof require !== 'undefined' && require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`webhook: ${error.message}`);
      process.exit(1);
    },
  );
}
