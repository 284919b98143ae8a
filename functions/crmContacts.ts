import { app } from '@azure/functions';
import { crmDeps, handleWebhook } from '../lib/crm';
import { adaptHttp } from './http-adapter';
import type { Services } from './services';

/** POST /api/crm/contacts: a signed CRM webhook creating a contact in FPX, or updating one (with contactId). */
export function registerCrmContacts(services: Services): void {
  app.http('crmContacts', {
    methods: ['POST'],
    route: 'crm/contacts',
    // The Standard Webhooks signature is the authentication (checked before anything else).
    authLevel: 'anonymous',
    handler: adaptHttp((request, log) => handleWebhook(crmDeps(services), 'contacts', request, log)),
  });
}
