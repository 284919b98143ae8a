import { app } from '@azure/functions';
import { dataverseDeps, handleDataverseWebhook } from '../lib/dataverse';
import { adaptHttp } from './http-adapter';
import type { Services } from './services';

/** POST /api/dataverse: a Dynamics 365 (Dataverse) webhook into FPX (lib/dataverse has the rules). */
export function registerDataverseWebhook(services: Services): void {
  app.http('dataverseWebhook', {
    methods: ['POST'],
    route: 'dataverse',
    // Azure checks ?code= (Dataverse's "WebhookKey" option); the handler checks x-fpx-dataverse-key ("HttpHeader").
    authLevel: 'function',
    handler: adaptHttp((request, log) => handleDataverseWebhook(dataverseDeps(services), request, log)),
  });
}
