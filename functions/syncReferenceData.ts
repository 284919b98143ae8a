import { app } from '@azure/functions';
import { syncReferenceData } from '../lib/sync';
import type { Services } from './services';

/**
 * Timer `%REFERENCE_DATA_SCHEDULE%` (daily 02:00 UTC): FPX's reference lists into FpxReferenceData, so the
 * CRM has the ids its webhook bodies need and the names to show. A failed list fails the invocation, after
 * the other lists were synced.
 */
export function registerSyncReferenceData(services: Services): void {
  app.timer('syncReferenceData', {
    schedule: '%REFERENCE_DATA_SCHEDULE%',
    handler: (_timer, context) =>
      syncReferenceData({
        ...services,
        maxRemovedPercent: services.config.sync.maxRemovedPercent,
        log: (line) => context.log(line),
      }),
  });
}
