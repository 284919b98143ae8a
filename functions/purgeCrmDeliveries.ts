import { app } from '@azure/functions';
import { crmDeps } from '../lib/crm';
import { purgeSyncRuns, SYNC_RUNS_TABLE } from '../lib/sync/sync-state';
import type { Services } from './services';

/**
 * Timer, daily 03:30 UTC: finished deliveries (and their idempotency keys) older than their 7-day retention go,
 * and so do FpxSyncRuns rows (the operations page's run history) older than 30 days.
 */
export function registerPurgeCrmDeliveries(services: Services): void {
  app.timer('purgeCrmDeliveries', {
    schedule: '0 30 3 * * *',
    handler: async (_timer, context) => {
      const deps = crmDeps(services);
      const now = new Date(deps.now());
      const purged = await deps.store.purgeExpired(now);
      context.log(`purged ${purged} finished CRM deliveries past their retention`);
      const syncRunsPurged = await purgeSyncRuns(services.table(SYNC_RUNS_TABLE), now);
      context.log(`purged ${syncRunsPurged} FpxSyncRuns rows older than 30 days`);
      return { purged, syncRunsPurged };
    },
  });
}
