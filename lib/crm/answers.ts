import { z } from 'zod';
import type { PlainResponse } from '../http';

/**
 * Every answer the webhook endpoints give (the contract's table), as zod schemas: the handlers build
 * their bodies with the functions below, and the OpenAPI document is generated from the same schemas.
 */

export const REPLAYED_HEADER = 'Idempotent-Replayed';

const deliveryId = z.uuid().meta({ description: 'Our id for this delivery; GET /api/crm/deliveries/{id}' });
export const fieldErrorsSchema = z
  .record(z.string(), z.array(z.string()))
  .meta({ description: 'Reasons by field (dotted path), e.g. {"noteCategoryId": ["expected an integer"]}' });

export const deliveredAnswer = (result: z.ZodType = z.unknown()) =>
  z.object({
    status: z.literal('delivered'),
    deliveryId,
    result: result.meta({ description: "FPX's answer body" }),
  });
export const queuedAnswer = z.object({ status: z.literal('queued'), deliveryId });
export const supersededAnswer = z.object({
  status: z.literal('superseded'),
  deliveryId,
  message: z.string().meta({ description: 'Which newer update of the same contact or record came first' }),
});
export const rejectedAnswer = z.object({
  status: z.literal('rejected'),
  deliveryId,
  message: z.string().meta({ description: "FPX's message" }),
  errors: fieldErrorsSchema.meta({ description: "FPX's field errors (its 400), e.g. {Email: [...]}" }),
});
export const invalidAnswer = z.object({ message: z.string(), errors: fieldErrorsSchema });
export const messageAnswer = z.object({ message: z.string() });

/** `superseded`: an update not sent because a newer one of the same contact or record was delivered first. */
/** `ignored`: a Dataverse event acknowledged but never sent (the reason in `lastError`). */
export const DELIVERY_STATUSES = [
  'queued',
  'delivered',
  'rejected',
  'failed',
  'superseded',
  'ignored',
] as const;
export type PublicDeliveryStatus = (typeof DELIVERY_STATUSES)[number];
export const deliveryStatusAnswer = z.object({
  deliveryId,
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.int().nonnegative().meta({ description: 'Calls made to FPX so far' }),
  lastError: z.string().optional(),
  result: z.unknown().optional().meta({ description: "FPX's answer body, once delivered" }),
});

type Json = Record<string, unknown>;
const answer = (status: number, body: Json, headers?: Record<string, string>): PlainResponse => ({
  status,
  jsonBody: body,
  headers,
});

export const delivered = (id: string, result: unknown) =>
  answer(200, { status: 'delivered', deliveryId: id, result: result ?? null });
export const queued = (id: string) => answer(202, { status: 'queued', deliveryId: id });
export const superseded = (id: string, message: string) =>
  answer(200, { status: 'superseded', deliveryId: id, message });
export const ignored = (id: string, message: string) =>
  answer(200, { status: 'ignored', deliveryId: id, message });
export const rejected = (id: string, message: string, errors: Record<string, string[]>) =>
  answer(422, { status: 'rejected', deliveryId: id, message, errors });
export const invalid = (message: string, errors: Record<string, string[]>) =>
  answer(400, { message, errors });
export const failure = (status: 401 | 404 | 409 | 413 | 415 | 422 | 503, message: string) =>
  answer(status, { message });

/** The same answer again, marked as a replay of the first. */
export function replayed(first: PlainResponse): PlainResponse {
  return { ...first, headers: { ...first.headers, [REPLAYED_HEADER]: 'true' } };
}
