import type { Delivery } from './delivery-store';
import type { CrmDeps } from './deps';
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

/** Why this delivery must not be sent (a newer update of its target was delivered), or undefined. */
export async function supersededReason(deps: CrmDeps, delivery: Delivery): Promise<string | undefined> {
  if (!delivery.target || !delivery.signedAt) return undefined;
  const newest = await deps.store.newestDelivered(delivery.target);
  if (newest <= delivery.signedAt) return undefined;
  const at = (seconds: number) => new Date(seconds * 1000).toISOString();
  return `superseded: an update of the same ${delivery.op === 'updateContact' ? 'contact' : 'status record'} signed at ${at(newest)} was delivered first (this one was signed at ${at(delivery.signedAt)}); not sent`;
}
