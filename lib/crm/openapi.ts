import { z } from 'zod';
import { fpxSchemas } from '../fpx';
import {
  deliveredAnswer,
  deliveryStatusAnswer,
  invalidAnswer,
  messageAnswer,
  queuedAnswer,
  REPLAYED_HEADER,
  rejectedAnswer,
  supersededAnswer,
} from './answers';
import { DELIVERIES_TABLE, RETENTION_DAYS } from './delivery-store';
import { MAX_BODY_BYTES } from './http-input';
import { contactPayload, entitlementPayload, notePayload } from './payloads';
import { SIGNATURE_TOLERANCE_SECONDS } from './signature';

/**
 * The OpenAPI 3.1 document of the CRM endpoints (`GET /api/openapi.json`), generated from the zod schemas
 * the handlers validate and answer with: requests as their input shape, answers as their output shape.
 */

type JsonSchema = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

const json = (schema: JsonSchema, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

const SIGNED = `Signed as [Standard Webhooks](https://www.standardwebhooks.com/) with CRM_WEBHOOK_SECRET: \`webhook-signature\` is \`v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">\` (several space separated, e.g. during secret rotation), accepted within ${SIGNATURE_TOLERANCE_SECONDS / 60} minutes of \`webhook-timestamp\`.`;

const WEBHOOKS = [
  {
    path: '/api/crm/notes',
    operationId: 'crmNotes',
    summary: 'Create a note in FPX (POST /tenants/{tenantId}/notes, with ?rfaId= when rfaId is given)',
    request: notePayload,
    result: fpxSchemas.note,
    ordered: false,
  },
  {
    path: '/api/crm/contacts',
    operationId: 'crmContacts',
    summary:
      'Create a contact (POST /tenants/{tenantId}/contacts, with ?rfaId= when rfaId is given), or with contactId update it (PATCH /contacts/{contactId}; phone required)',
    request: contactPayload,
    result: fpxSchemas.contact,
    ordered: true,
  },
  {
    path: '/api/crm/entitlements',
    operationId: 'crmEntitlements',
    summary:
      'Add or update an entitlement status record (PATCH /tenants/{tenantId}/services/{serviceId}/entitlements)',
    request: entitlementPayload,
    result: fpxSchemas.entitlementList,
    ordered: true,
  },
] as const;

function webhookOperation(webhook: (typeof WEBHOOKS)[number]) {
  const replayHeader = {
    [REPLAYED_HEADER]: {
      description: 'true when this is the stored answer to an earlier request with the same webhook-id',
      schema: { type: 'string', enum: ['true'] },
    },
  };
  return {
    post: {
      operationId: webhook.operationId,
      summary: webhook.summary,
      description: `${SIGNED} \`webhook-id\` is the idempotency key (kept ${RETENTION_DAYS} days): a repeat gets the first answer again with \`${REPLAYED_HEADER}: true\` and causes no second FPX call.`,
      parameters: [
        { $ref: '#/components/parameters/webhookId' },
        { $ref: '#/components/parameters/webhookTimestamp' },
        { $ref: '#/components/parameters/webhookSignature' },
        { $ref: '#/components/parameters/endUserToken' },
      ],
      requestBody: {
        required: true,
        description: `At most ${MAX_BODY_BYTES} bytes (5 MiB)`,
        content: { 'application/json': { schema: jsonSchema(webhook.request, 'input') } },
      },
      responses: {
        200: {
          ...(webhook.ordered
            ? json(
                { oneOf: [jsonSchema(deliveredAnswer(webhook.result), 'output'), ref('Superseded')] },
                `FPX accepted it; result is FPX's body. Or, for an update (contactId, serviceIntentId): superseded, not sent, because an update of the same contact or record signed later (webhook-timestamp) was delivered first`,
              )
            : json(
                jsonSchema(deliveredAnswer(webhook.result), 'output'),
                "FPX accepted it; result is FPX's body",
              )),
          headers: replayHeader,
        },
        202: {
          ...json(
            ref('Queued'),
            'FPX is unavailable (5xx, 429, timeout, connection error, our certificate refused): queued for delivery (see GET /api/crm/deliveries/{id}); after a 5xx or timeout on a create, FPX is looked in before it is sent again',
          ),
          headers: replayHeader,
        },
        400: json(ref('Invalid'), 'The body (or a header) is invalid'),
        401: json(ref('Message'), 'Signature missing, wrong or too old'),
        409: json(ref('Message'), 'The same webhook-id is still being processed'),
        413: json(ref('Message'), 'Body over 5 MiB (read no further, whatever Content-Length says)'),
        415: json(ref('Message'), 'Not application/json'),
        422: {
          ...json(
            { oneOf: [ref('Rejected'), ref('Message')] },
            "FPX refused it for good (Rejected): its 400 or another 4xx such as 403 (not allowed for this tenant) or 404, or a 401 to a request carrying the end user's token; or the webhook-id was already used for another body (Message)",
          ),
          headers: replayHeader,
        },
        503: json(ref('Message'), 'No CRM_WEBHOOK_SECRET is configured'),
      },
    },
  };
}

let document: JsonSchema | undefined;

export function openApiDocument(): JsonSchema {
  document ??= {
    openapi: '3.1.0',
    info: {
      title: 'FPX CRM connector: CRM webhooks',
      version: '1.0.0',
      description: `Signed CRM webhooks delivered to the FastTrack Partner Experience (FPX) API exactly once. Deliveries are recorded in the table ${DELIVERIES_TABLE}.`,
    },
    paths: {
      ...Object.fromEntries(WEBHOOKS.map((webhook) => [webhook.path, webhookOperation(webhook)])),
      '/api/crm/deliveries/{id}': {
        get: {
          operationId: 'crmDelivery',
          summary: 'The state of one delivery',
          description: `${SIGNED} There is no body: what is signed in its place is the method, a space and the path, exactly \`GET /api/crm/deliveries/<id>\` (so the signature is over \`<webhook-id>.<webhook-timestamp>.GET /api/crm/deliveries/<id>\`), which binds the request to that delivery; any unique webhook-id will do. A status \`superseded\` is final: an update not sent because a newer one of the same contact or record was delivered first.`,
          parameters: [
            { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } },
            { $ref: '#/components/parameters/webhookId' },
            { $ref: '#/components/parameters/webhookTimestamp' },
            { $ref: '#/components/parameters/webhookSignature' },
          ],
          responses: {
            200: json(ref('DeliveryStatus'), 'The delivery'),
            401: json(ref('Message'), 'Signature missing, wrong or too old'),
            404: json(ref('Message'), 'No such delivery'),
            413: json(ref('Message'), 'The request has a body (it takes none)'),
            503: json(ref('Message'), 'No CRM_WEBHOOK_SECRET is configured'),
          },
        },
      },
    },
    components: {
      parameters: {
        webhookId: header(
          'webhook-id',
          true,
          'Unique id of this message: the idempotency key (1 to 256 printable ASCII characters)',
        ),
        webhookTimestamp: header(
          'webhook-timestamp',
          true,
          'Unix time in seconds when the message was signed',
        ),
        webhookSignature: header(
          'webhook-signature',
          true,
          'Space separated `v1,<base64 signature>` entries',
        ),
        endUserToken: header(
          'X-End-User-Token',
          false,
          "The CRM user's JWT, forwarded to FPX as Authorization: Bearer on the first attempt; never stored, so a queued delivery goes without it. A 401 from FPX to a request with it is final (422): FPX refused that user",
        ),
      },
      schemas: {
        Queued: jsonSchema(queuedAnswer, 'output'),
        Superseded: jsonSchema(supersededAnswer, 'output'),
        Rejected: jsonSchema(rejectedAnswer, 'output'),
        Invalid: jsonSchema(invalidAnswer, 'output'),
        Message: jsonSchema(messageAnswer, 'output'),
        DeliveryStatus: jsonSchema(deliveryStatusAnswer, 'output'),
      },
    },
  };
  return document;
}

function header(name: string, required: boolean, description: string) {
  return { name, in: 'header', required, description, schema: { type: 'string' } };
}
