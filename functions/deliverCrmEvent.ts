import { app } from '@azure/functions';
import { crmEvents, deliverEventsMessage, EVENTS_QUEUE } from '../lib/events';
import type { Services } from './services';

/**
 * Queue `crm-events`: sends the named keys' pending referral and tenant events to the CRM's endpoints
 * (CRM_EVENTS_URL), signed, oldest first per key, paced; retries are delayed messages (docs/events.md).
 */
export function registerDeliverCrmEvent(services: Services): void {
  app.storageQueue('deliverCrmEvent', {
    queueName: EVENTS_QUEUE,
    connection: 'AzureWebJobsStorage',
    handler: async (message, context) => {
      const events = crmEvents(services);
      if (!events) {
        context.warn(`${EVENTS_QUEUE}: CRM_EVENTS_URL is unset, message dropped`);
        return;
      }
      const outcome = await deliverEventsMessage(events.delivery, message, context);
      context.log(
        `${EVENTS_QUEUE} message ${context.triggerMetadata?.id ?? ''}: ${outcome.sent} sent, ${outcome.retries} to retry, ${outcome.failed} given up`,
      );
    },
  });
}
