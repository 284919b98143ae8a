import { app } from '@azure/functions';
import { crmDeps, deliveryStatus } from '../lib/crm';
import { adaptHttp } from './http-adapter';
import type { Services } from './services';

/** GET /api/crm/deliveries/{id}: a delivery's state; signed by the CRM like a webhook, over `GET <path>` in place of a body. */
export function registerCrmDelivery(services: Services): void {
  app.http('crmDelivery', {
    methods: ['GET'],
    route: 'crm/deliveries/{id}',
    authLevel: 'anonymous',
    handler: adaptHttp((request) => deliveryStatus(crmDeps(services), request, request.params?.id ?? '')),
  });
}
