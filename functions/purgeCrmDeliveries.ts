import { app } from '@azure/functions';
import { crmDeps } from '../lib/crm';
import type { Services } from './services';

/** Timer, daily 03:30 UTC: finished deliveries (and their idempotency keys) older than their 7-day retention go. */
export function registerPurgeCrmDeliveries(services: Services): void {
  app.timer('purgeCrmDeliveries', {
    schedule: '0 30 3 * * *',
    handler: async (_timer, context) => {
      const deps = crmDeps(services);
      const purged = await deps.store.purgeExpired(new Date(deps.now()));
      context.log(`purged ${purged} finished CRM deliveries past their retention`);
      return { purged };
    },
  });
}
