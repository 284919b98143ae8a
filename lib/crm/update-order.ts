import type { DeliveryFields } from './delivery-store';
import type { CrmOperation } from './payloads';

/**
 * Updates of one contact or status record are applied in the order the CRM signed them (`webhook-timestamp`):
 * one that comes late (queued while FPX was down) is `superseded` when a newer update of the same target was
 * delivered meanwhile, instead of overwriting it. Updates signed in the same second are not ordered.
 * Creates have no target: each makes a new record.
 */
export function orderTarget(operation: CrmOperation): string {
  switch (operation.op) {
    case 'updateContact':
      return `contact:${operation.contactId}`;
    case 'updateEntitlement': {
      const { serviceIntentId } = operation.update;
      return serviceIntentId
        ? `entitlement:${operation.tenantId}:${operation.serviceId}:${serviceIntentId}`
        : '';
    }
    default:
      return '';
  }
}

type Ordered = Pick<DeliveryFields, 'op' | 'target' | 'signedAt'>;

/** Whether the delivery takes part in the order (an update with a target, from a request whose signing time is kept). */
export function isOrdered(delivery: Ordered): boolean {
  return Boolean(delivery.target && delivery.signedAt);
}

/**
 * Why this delivery must not be sent, given the signing time (Unix seconds) of the newest update of its target
 * delivered so far (`DeliveryStore.newestDelivered`), or undefined.
 */
export function supersededBy(delivery: Ordered, newestDelivered: number): string | undefined {
  if (!isOrdered(delivery) || newestDelivered <= delivery.signedAt) return undefined;
  const at = (seconds: number) => new Date(seconds * 1000).toISOString();
  return `superseded: an update of the same ${delivery.op === 'updateContact' ? 'contact' : 'status record'} signed at ${at(newestDelivered)} was delivered first (this one was signed at ${at(delivery.signedAt)}); not sent`;
}
