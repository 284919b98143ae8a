import { app } from '@azure/functions';
import { opsRequeue } from '../lib/ops';
import { adaptHttp } from './http-adapter';
import { opsDepsOf } from './opsDeps';
import type { Services } from './services';

/** POST /api/ops/queues/{queue}/requeue: a poison queue's messages back to their queue (the two poison queues only). */
export function registerOpsRequeue(services: Services): void {
  const deps = opsDepsOf(services);
  app.http('opsRequeue', {
    methods: ['POST'],
    route: 'ops/queues/{queue}/requeue',
    authLevel: 'function',
    handler: adaptHttp((request) => opsRequeue(deps, request, request.params?.queue ?? '')),
  });
}
