import { app } from '@azure/functions';
import { opsRetry } from '../lib/ops';
import { adaptHttp } from './http-adapter';
import { opsDepsOf } from './opsDeps';
import type { Services } from './services';

/** POST /api/ops/deliveries/{id}/retry: a failed (or stranded) delivery back on crm-deliveries. */
export function registerOpsRetryDelivery(services: Services): void {
  const deps = opsDepsOf(services);
  app.http('opsRetryDelivery', {
    methods: ['POST'],
    route: 'ops/deliveries/{id}/retry',
    authLevel: 'function',
    handler: adaptHttp((request) => opsRetry(deps, request, request.params?.id ?? '')),
  });
}
