import { randomUUID } from 'node:crypto';
import { app } from '@azure/functions';
import { crmEvents } from '../lib/events';
import { fanOutTenantDetails, syncTenants, TENANT_DETAILS_QUEUE } from '../lib/sync';
import type { Services } from './services';

/**
 * Timer: FPX's partner tenants into FpxTenants, then one `fpx-tenant-details` message per tenant
 * (claimed and referred) for syncTenantDetails. Azure's timer singleton (and dev/host) keeps runs from overlapping.
 */
export function registerPollTenants(services: Services): void {
  app.timer('pollTenants', {
    schedule: '%POLL_TENANTS_SCHEDULE%',
    handler: async (_timer, context) => {
      const sync = await syncTenants({
        ...services,
        maxRemovedPercent: services.config.sync.maxRemovedPercent,
        recordWrites: crmEvents(services)?.recordWrites,
        log: (line) => context.log(line),
      });
      // A listing that continues in the next run fans out once it is complete.
      if (sync.status === 'partial') return { sync };
      const fanOut = await fanOutTenantDetails(
        {
          table: services.table,
          queue: services.queueService.getQueueClient(TENANT_DETAILS_QUEUE),
          clock: services.clock,
        },
        randomUUID(),
      );
      context.log(
        `fan-out ${fanOut.runId}: ${fanOut.enqueued} tenants onto ${TENANT_DETAILS_QUEUE} ` +
          `(${fanOut.claimed} claimed, ${fanOut.referralOnly} referred only); ` +
          (fanOut.departedSkipped
            ? `departed tenants not looked for: ${fanOut.departedSkipped}`
            : `${fanOut.departedTenants} departed tenants, ${fanOut.departedRows} of their rows marked removed`),
      );
      return { sync, fanOut };
    },
  });
}
