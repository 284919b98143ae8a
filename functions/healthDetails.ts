import { app } from '@azure/functions';
import { healthCheck } from './health';
import { adaptHttp } from './http-adapter';
import type { Services } from './services';

/**
 * GET /api/health/details: every check with its error, the certificate's thumbprint and expiry, the poison
 * queues' depths. Behind the function key, since it tells a stranger more than whether the app is up.
 */
export function registerHealthDetails(services: Services): void {
  app.http('healthDetails', {
    methods: ['GET'],
    route: 'health/details',
    authLevel: 'function',
    handler: adaptHttp(() => healthCheck(services)),
  });
}
