import { app } from '@azure/functions';
import { syncTenants } from '../lib/sync';
import type { Services } from './services';

/** Timer: FPX's partner tenants into FpxTenants. Azure's timer singleton (and dev/host) keeps runs from overlapping. */
export function registerPollTenants(services: Services): void {
  app.timer('pollTenants', {
    schedule: '%POLL_TENANTS_SCHEDULE%',
    handler: (_timer, context) => syncTenants({ ...services, log: (line) => context.log(line) }),
  });
}
