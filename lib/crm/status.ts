import { z } from 'zod';
import { header, type PlainRequest, type PlainResponse, readBoundedBody } from '../http';
import { failure, type PublicDeliveryStatus } from './answers';
import type { CrmDeps } from './deps';
import { signatureHeaders } from './http-input';
import { unpackJson } from './packed-json';
import { deliveryStatusContent, verifyWebhookSignature } from './signature';

const uuid = z.uuid();

/**
 * `GET /api/crm/deliveries/{id}`. The answer can hold FPX's record of a person (a contact), so the CRM
 * signs this request like a webhook, with the same secret (no second credential), over
 * `GET /api/crm/deliveries/<id>` in place of a body: a signature read off one request opens no other delivery.
 */
export async function deliveryStatus(
  deps: CrmDeps,
  request: PlainRequest,
  id: string,
): Promise<PlainResponse> {
  if (deps.keys.length === 0) return failure(503, 'Refused: no CRM_WEBHOOK_SECRET is configured');
  if (await hasBody(request)) return failure(413, 'GET /api/crm/deliveries/{id} takes no body');
  const content = Buffer.from(deliveryStatusContent(id), 'utf8');
  const signature = verifyWebhookSignature(deps.keys, signatureHeaders(request), content, deps.now());
  if (!signature.ok) return failure(401, signature.message);

  const deliveryId = id.toLowerCase();
  if (!uuid.safeParse(deliveryId).success) return failure(404, `No delivery ${id}`);
  await deps.pending.settled(deliveryId);
  const delivery = await deps.store.get(deliveryId);
  if (!delivery) return failure(404, `No delivery ${id}`);
  const status: PublicDeliveryStatus = delivery.status === 'processing' ? 'queued' : delivery.status;
  const resultBytes = status === 'delivered' ? await deps.store.result(delivery) : undefined;
  return {
    status: 200,
    jsonBody: {
      deliveryId: delivery.deliveryId,
      status,
      attempts: delivery.attempts,
      ...(delivery.lastError ? { lastError: delivery.lastError } : {}),
      ...(resultBytes ? { result: await unpackJson(resultBytes) } : {}),
    },
  };
}

/** A body announced (Content-Length, Transfer-Encoding) or sent: not a byte of it is read beyond the first. */
async function hasBody(request: PlainRequest): Promise<boolean> {
  const length = header(request, 'content-length');
  if ((length !== null && length.trim() !== '0') || header(request, 'transfer-encoding') !== null)
    return true;
  return (await readBoundedBody(request.body, 0)) === undefined;
}
