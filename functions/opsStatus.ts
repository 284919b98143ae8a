import { app } from '@azure/functions';
import { opsStatus } from '../lib/ops';
import { adaptHttp } from './http-adapter';
import { opsDepsOf } from './opsDeps';
import type { Services } from './services';

/** GET /api/ops/status: the operations page's facts as JSON. */
export function registerOpsStatus(services: Services): void {
  const deps = opsDepsOf(services);
  app.http('opsStatus', {
    methods: ['GET'],
    route: 'ops/status',
    authLevel: 'function',
    handler: adaptHttp(() => opsStatus(deps)),
  });
}
