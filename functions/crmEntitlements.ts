import { app } from '@azure/functions';
import { crmDeps, handleWebhook } from '../lib/crm';
import { adaptHttp } from './http-adapter';
import type { Services } from './services';

/** POST /api/crm/entitlements: a signed CRM webhook adding or updating an entitlement status record in FPX. */
export function registerCrmEntitlements(services: Services): void {
  app.http('crmEntitlements', {
    methods: ['POST'],
    route: 'crm/entitlements',
    // The Standard Webhooks signature is the authentication (checked before anything else).
    authLevel: 'anonymous',
    handler: adaptHttp((request, log) => handleWebhook(crmDeps(services), 'entitlements', request, log)),
  });
}
