import { app } from '@azure/functions';
import { crmDeps, DELIVERY_QUEUE, deliverQueuedRequest } from '../lib/crm';
import type { Services } from './services';

/**
 * Queue `crm-deliveries`: the next attempt of a webhook FPX could not take at once. Retries are new
 * messages with an exponential visibility delay, so the host's fixed retries (and its poison queue after
 * host.json's `maxDequeueCount` dequeues) only come into play for unexpected failures, e.g. storage being
 * unreachable.
 */
export function registerDeliverCrmRequest(services: Services): void {
  app.storageQueue('deliverCrmRequest', {
    queueName: DELIVERY_QUEUE,
    connection: 'AzureWebJobsStorage',
    handler: async (message, context) => {
      const outcome = await deliverQueuedRequest(crmDeps(services), message, context);
      context.log(`crm-deliveries message ${context.triggerMetadata?.id ?? ''}: ${outcome}`);
    },
  });
}
