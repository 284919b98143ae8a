import { app } from '@azure/functions';
import { crmDeps, recoverStalled } from '../lib/crm';
import type { Services } from './services';

/** Timer, every 5 minutes: deliveries whose attempt died before its outcome was recorded go back on the queue. */
export function registerRecoverCrmDeliveries(services: Services): void {
  app.timer('recoverCrmDeliveries', {
    schedule: '0 */5 * * * *',
    handler: async (_timer, context) => {
      const queued = await recoverStalled(crmDeps(services), context);
      context.log(`queued ${queued} stalled CRM deliveries`);
      return { queued };
    },
  });
}
