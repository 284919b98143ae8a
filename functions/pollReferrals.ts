import { app } from '@azure/functions';
import { crmEvents } from '../lib/events';
import { syncReferralsAndTheirTenants, TENANT_DETAILS_QUEUE } from '../lib/sync';
import type { Services } from './services';

/**
 * Timer: FPX's referrals into FpxReferrals, and the tenants of new or changed referrals onto
 * `fpx-tenant-details`. Azure's timer singleton (and dev/host) keeps runs from overlapping.
 */
export function registerPollReferrals(services: Services): void {
  app.timer('pollReferrals', {
    schedule: '%POLL_REFERRALS_SCHEDULE%',
    handler: (_timer, context) =>
      syncReferralsAndTheirTenants({
        ...services,
        maxRemovedPercent: services.config.sync.maxRemovedPercent,
        queue: services.queueService.getQueueClient(TENANT_DETAILS_QUEUE),
        recordWrites: crmEvents(services)?.recordWrites,
        log: (line) => context.log(line),
      }),
  });
}
