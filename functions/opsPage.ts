import { app } from '@azure/functions';
import { opsPage } from '../lib/ops';
import { adaptHttp } from './http-adapter';
import { opsDepsOf } from './opsDeps';
import type { Services } from './services';

/** GET /api/ops: the operations page (server-rendered, then refreshed from /api/ops/status by its script). */
export function registerOpsPage(services: Services): void {
  const deps = opsDepsOf(services);
  app.http('opsPage', {
    methods: ['GET'],
    route: 'ops',
    authLevel: 'function',
    handler: adaptHttp((request) => opsPage(deps, request)),
  });
}
