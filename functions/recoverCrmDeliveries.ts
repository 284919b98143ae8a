import { app } from '@azure/functions';
import { alertPoisonQueues, crmDeps, poisonWatch, recoverStalled } from '../lib/crm';
import { crmEvents } from '../lib/events';
import { POISON_QUEUES } from '../lib/ops';
import type { Services } from './services';

/**
 * Timer, every 5 minutes: deliveries whose attempt died before its outcome was recorded, or whose queued
 * retry lost its message, go back on the queue; a poison queue that starts filling alerts the operators.
 * CRM events whose message was lost are queued again (lib/events sweep). Each runs whatever the others do;
 * a failure of any fails the invocation (after all).
 */
export function registerRecoverCrmDeliveries(services: Services): void {
  app.timer('recoverCrmDeliveries', {
    schedule: '0 */5 * * * *',
    handler: async (_timer, context) => {
      const deps = crmDeps(services);
      const [recovered, poison, events] = await Promise.allSettled([
        recoverStalled(deps, context),
        alertPoisonQueues(poisonWatch(services, POISON_QUEUES, deps.now), context),
        // CRM events whose message was lost go out again; counts into FpxSyncState (docs/events.md).
        crmEvents(services)?.sweep(context),
      ]);
      const queued = recovered.status === 'fulfilled' ? recovered.value : 0;
      const poisonQueues = poison.status === 'fulfilled' ? poison.value : [];
      context.log(
        `queued ${queued} stalled CRM deliveries; poison queues: ${poisonQueues.map((q) => `${q.queue} ${q.depth}${q.alert ? ` (alert ${q.alert})` : ''}`).join(', ')}`,
      );
      if (recovered.status === 'rejected') throw recovered.reason;
      if (events.status === 'rejected') throw events.reason;
      if (poison.status === 'rejected') throw poison.reason;
      const failed = poisonQueues.filter((q) => q.error);
      if (failed.length > 0) {
        throw new Error(`Poison queues: ${failed.map((q) => `${q.queue}: ${q.error}`).join('; ')}`);
      }
      return { queued, poisonQueues, events: events.value };
    },
  });
}
