/** CRM → FPX webhooks: verification, payload schemas, idempotency and durable delivery. See docs/crm-webhooks.md. */
export { ignored, REPLAYED_HEADER } from './answers';
export { retryDelaySeconds } from './backoff';
export { DELIVERY_POISON_QUEUE, DELIVERY_QUEUE, DeliveryQueue } from './delivery-queue';
export { deliveryIdFor } from './delivery-steps';
export { DELIVERIES_TABLE, type Delivery, DeliveryStore, RETENTION_DAYS } from './delivery-store';
export {
  type CrmDeps,
  type CrmServices,
  crmDeps,
  DEFAULT_POLICY,
  type DeliveryPolicy,
} from './deps';
export { END_USER_TOKEN_HEADER, MAX_BODY_BYTES, type WebhookInput } from './http-input';
export { openApiDocument } from './openapi';
export {
  type CrmOperation,
  contactCreatePayload,
  contactPayload,
  contactUpdatePayload,
  entitlementPayload,
  notePayload,
  parsePayload,
  WEBHOOK_ENDPOINTS,
  type WebhookEndpoint,
} from './payloads';
export { PendingWrites } from './pending-writes';
export {
  alertPoisonQueues,
  type PoisonQueueCheck,
  type PoisonWatch,
  poisonWatch,
  QUEUE_ALERTS_TABLE,
} from './poison-alerts';
export {
  deliveryStatusContent,
  SIGNATURE_TOLERANCE_SECONDS,
  signWebhook,
  verifyWebhookSignature,
  webhookKeys,
} from './signature';
export { deliveryStatus } from './status';
export { deliverWebhookInput, handleWebhook, repeatOf } from './webhook';
export { deliverQueuedRequest, recoverStalled, type WorkerOutcome } from './worker';
