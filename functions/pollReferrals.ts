import { app } from '@azure/functions';
import { syncReferrals } from '../lib/sync';
import type { Services } from './services';

/** Timer: FPX's referrals into FpxReferrals. Azure's timer singleton (and dev/host) keeps runs from overlapping. */
export function registerPollReferrals(services: Services): void {
  app.timer('pollReferrals', {
    schedule: '%POLL_REFERRALS_SCHEDULE%',
    handler: (_timer, context) => syncReferrals({ ...services, log: (line) => context.log(line) }),
  });
}
