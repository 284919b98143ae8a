import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks 1.0 signatures: `webhook-signature` holds one or more space-separated `v1,<base64>`
 * HMAC-SHA256 signatures of `<webhook-id>.<webhook-timestamp>.<body>` with a `whsec_<base64>` secret.
 *
 * Verified here with node:crypto rather than the `standardwebhooks` package, which we checked and use to
 * sign (dev/webhook.ts, tests): it does compare in constant time and loops over `v1,` signatures, but it
 * hashes in JavaScript (about 80 ms for a 2 MiB body, per secret during rotation), decodes the body as a
 * UTF-8 string before hashing (invalid byte sequences alias), and `parseInt`s the timestamp ("12abc" passes).
 */

export const SIGNATURE_TOLERANCE_SECONDS = 5 * 60;
const HMAC_BYTES = 32;

export type SignatureCheck =
  | { ok: true; webhookId: string; timestamp: number }
  | { ok: false; message: string };

export interface SignatureHeaders {
  id?: string | null;
  timestamp?: string | null;
  signature?: string | null;
}

/**
 * What a `GET /api/crm/deliveries/{id}` request signs in place of a body: the method, a space and the path,
 * so a captured request cannot be replayed to read another delivery.
 */
export function deliveryStatusContent(deliveryId: string): string {
  return `GET /api/crm/deliveries/${deliveryId}`;
}

/** The secrets' keys, decoded once (a key per `whsec_…`; several while the secret is rotated). */
export function webhookKeys(secrets: readonly string[]): Buffer[] {
  return secrets.map((secret) => Buffer.from(secret.replace(/^whsec_/, ''), 'base64'));
}

/** `v1,<base64>` for one key (what a sender puts in `webhook-signature`). */
export function signWebhook(
  key: Buffer,
  webhookId: string,
  timestamp: number,
  body: Buffer | string,
): string {
  return `v1,${hmac(key, webhookId, timestamp, body).toString('base64')}`;
}

/**
 * Accepts the request when any `v1` signature matches any key and the timestamp is within five minutes
 * of `nowMs`. Messages never echo a signature or a secret.
 */
export function verifyWebhookSignature(
  keys: readonly Buffer[],
  headers: SignatureHeaders,
  body: Buffer,
  nowMs = Date.now(),
): SignatureCheck {
  const { id, timestamp, signature } = headers;
  if (!id || !timestamp || !signature) {
    return { ok: false, message: 'Missing webhook-id, webhook-timestamp or webhook-signature header' };
  }
  if (!/^\d{1,12}$/.test(timestamp.trim())) return { ok: false, message: 'Invalid webhook-timestamp' };
  const seconds = Number(timestamp.trim());
  const age = Math.floor(nowMs / 1000) - seconds;
  if (age > SIGNATURE_TOLERANCE_SECONDS) return { ok: false, message: 'webhook-timestamp is too old' };
  if (age < -SIGNATURE_TOLERANCE_SECONDS) return { ok: false, message: 'webhook-timestamp is in the future' };

  const candidates = signature
    .split(' ')
    .map((entry) => /^v1,([A-Za-z0-9+/]+={0,2})$/.exec(entry.trim())?.[1])
    .filter((value): value is string => value !== undefined)
    .map((value) => Buffer.from(value, 'base64'))
    .filter((bytes) => bytes.length === HMAC_BYTES);
  if (candidates.length > 0) {
    for (const key of keys) {
      const expected = hmac(key, id, seconds, body);
      // Constant time per comparison; the loop only tells whether some signature matched.
      if (candidates.some((candidate) => timingSafeEqual(candidate, expected))) {
        return { ok: true, webhookId: id, timestamp: seconds };
      }
    }
  }
  return { ok: false, message: 'No matching webhook signature' };
}

function hmac(key: Buffer, webhookId: string, timestamp: number, body: Buffer | string): Buffer {
  return createHmac('sha256', key).update(`${webhookId}.${timestamp}.`, 'utf8').update(body).digest();
}
