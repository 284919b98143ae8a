import { createHash } from 'node:crypto';
import { header, type PlainRequest, type PlainResponse, readBoundedBody } from '../http';
import { failure, invalid } from './answers';
import { type CrmOperation, parsePayload, type WebhookEndpoint } from './payloads';
import { verifyWebhookSignature } from './signature';

/** Bodies up to 5 MiB: a note of 1,048,576 characters fits even when every one needs 3 bytes of UTF-8. */
export const MAX_BODY_BYTES = 5 * 1024 * 1024;
/** The header through which the CRM passes its end user's JWT (forwarded to FPX, never logged or stored). */
export const END_USER_TOKEN_HEADER = 'x-end-user-token';
const WEBHOOK_ID = /^[\x21-\x7e]{1,256}$/;
const TOKEN = /^[\x21-\x7e]{1,16384}$/;

export interface WebhookInput {
  webhookId: string;
  /** `webhook-timestamp` (Unix seconds, signed): orders updates of one contact or record. */
  signedAt: number;
  operation: CrmOperation;
  /** sha256 of the endpoint and the body bytes: the same webhook-id with another body is refused. */
  fingerprint: string;
  endUserToken?: string;
}

export type WebhookInputResult = { ok: true; input: WebhookInput } | { ok: false; answer: PlainResponse };

const refuse = (answer: PlainResponse): WebhookInputResult => ({ ok: false, answer });

/**
 * Everything checked before a webhook may claim its id: a webhook secret is configured (else 503), the
 * size (413), the signature (401), JSON content (415), the payload (400). Nothing is parsed before the
 * signature is verified; the body is read only up to the limit, so a huge one is neither held nor hashed.
 */
export async function readWebhookRequest(
  request: PlainRequest,
  endpoint: WebhookEndpoint,
  keys: readonly Buffer[],
  nowMs: number,
): Promise<WebhookInputResult> {
  if (keys.length === 0) {
    return refuse(failure(503, 'Webhooks are refused: no CRM_WEBHOOK_SECRET is configured'));
  }
  const declared = Number(header(request, 'content-length') ?? 0);
  if (declared > MAX_BODY_BYTES) return refuse(tooLarge());
  const body = await readBoundedBody(request.body, MAX_BODY_BYTES);
  if (!body) return refuse(tooLarge());

  const signature = verifyWebhookSignature(keys, signatureHeaders(request), body, nowMs);
  if (!signature.ok) return refuse(failure(401, signature.message));
  const { webhookId, timestamp: signedAt } = signature;
  if (!WEBHOOK_ID.test(webhookId)) {
    return refuse(
      invalid('Invalid webhook-id', { 'webhook-id': ['1 to 256 printable ASCII characters without spaces'] }),
    );
  }

  const contentType = header(request, 'content-type') ?? '';
  if (!isJsonContentType(contentType)) {
    return refuse(failure(415, 'Content-Type must be application/json (UTF-8)'));
  }
  const token = endUserToken(header(request, END_USER_TOKEN_HEADER));
  if (token === false) {
    return refuse(
      invalid('Invalid X-End-User-Token', {
        'X-End-User-Token': ['a JWT, optionally prefixed with "Bearer ", without spaces'],
      }),
    );
  }

  const json = parseJson(body);
  if (!json.ok) return refuse(invalid('The body is not valid JSON', { body: [json.reason] }));
  const payload = parsePayload(endpoint, json.value);
  if (!payload.ok) return refuse(invalid('The body does not match the schema', payload.errors));

  const fingerprint = fingerprintOf(endpoint, body);
  return {
    ok: true,
    input: { webhookId, signedAt, operation: payload.operation, fingerprint, endUserToken: token },
  };
}

/** sha256 of the endpoint and the exact body bytes. */
export function fingerprintOf(endpoint: WebhookEndpoint, body: Buffer): string {
  return createHash('sha256').update(`${endpoint}\n`).update(body).digest('hex');
}

export function signatureHeaders(request: Pick<PlainRequest, 'headers'>) {
  return {
    id: header(request, 'webhook-id'),
    timestamp: header(request, 'webhook-timestamp'),
    signature: header(request, 'webhook-signature'),
  };
}

const tooLarge = () => failure(413, `The body is larger than ${MAX_BODY_BYTES} bytes (5 MiB)`);

/** `application/json`, with at most a UTF-8 charset parameter. */
function isJsonContentType(value: string): boolean {
  const [type, ...params] = value.split(';').map((part) => part.trim().toLowerCase());
  if (type !== 'application/json') return false;
  return params.every((param) => !param.startsWith('charset=') || /^charset="?utf-8"?$/.test(param));
}

/** undefined when absent, false when malformed; a `Bearer ` prefix is dropped. */
function endUserToken(header: string | null): string | undefined | false {
  if (header === null || header.trim() === '') return undefined;
  const token = header.trim().replace(/^Bearer\s+/i, '');
  return TOKEN.test(token) ? token : false;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseJson(body: Buffer): { ok: true; value: unknown } | { ok: false; reason: string } {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return { ok: false, reason: 'not UTF-8' };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, reason: (error as Error).message.slice(0, 200) };
  }
}
