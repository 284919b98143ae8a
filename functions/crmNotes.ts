import { app } from '@azure/functions';
import { crmDeps, handleWebhook } from '../lib/crm';
import { adaptHttp } from './http-adapter';
import type { Services } from './services';

/** POST /api/crm/notes: a signed CRM webhook creating a note in FPX (lib/crm has the rules). */
export function registerCrmNotes(services: Services): void {
  app.http('crmNotes', {
    methods: ['POST'],
    route: 'crm/notes',
    // The Standard Webhooks signature is the authentication (checked before anything else).
    authLevel: 'anonymous',
    handler: adaptHttp((request, log) => handleWebhook(crmDeps(services), 'notes', request, log)),
  });
}
