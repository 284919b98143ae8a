import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { z } from 'zod';
import { failure, type PublicDeliveryStatus } from './answers';
import { unpackJson } from './blob';
import type { CrmDeps } from './deps';
import { signatureHeaders } from './http-input';
import { verifyWebhookSignature } from './signature';

const uuid = z.uuid();

/**
 * `GET /api/crm/deliveries/{id}`. The answer can hold FPX's record of a person (a contact), so the CRM
 * signs this request like a webhook, over an empty body, with the same secret — no second credential.
 */
export async function deliveryStatus(
  deps: CrmDeps,
  request: HttpRequest,
  id: string,
): Promise<HttpResponseInit> {
  if (deps.keys.length === 0) return failure(503, 'Refused: no CRM_WEBHOOK_SECRET is configured');
  const body = Buffer.from(await request.arrayBuffer());
  const signature = verifyWebhookSignature(deps.keys, signatureHeaders(request), body, deps.now());
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
