/** Settings at work: with CRM_WEBHOOK_SECRET unresolved, every part starts and the webhooks answer 503. */
import { InvocationContext } from '@azure/functions';
import { describe, expect, inject, test } from 'vitest';
import { buildServices } from '../functions/services';
import { crmDeps, handleWebhook } from '../lib/crm';
import { keyVaultReference, loadLogged } from './support/config';

const minimal = {
  FPX_BASE_URL: 'https://fpx.example.com/ftop/v1.2/api/',
  FPX_CERT_PATH: '/certs/client.pem',
};

describe('unresolved Key Vault references', () => {
  test('webhooks answer 503 while every other part starts', async () => {
    const { config, logged } = loadLogged({
      ...minimal,
      AzureWebJobsStorage: inject('storageConnection'),
      CRM_WEBHOOK_SECRET: keyVaultReference('crm-webhook-secret'),
    });
    expect(logged).toHaveLength(1);
    const services = buildServices(config);
    const answer = await handleWebhook(
      crmDeps(services),
      'notes',
      {
        method: 'POST',
        path: '/api/crm/notes',
        headers: { 'content-type': 'application/json' },
        body: Buffer.from('{}'),
      },
      new InvocationContext({ functionName: 'crmNotes' }),
    );
    expect(answer).toMatchObject({
      status: 503,
      jsonBody: { message: 'Webhooks are refused: no CRM_WEBHOOK_SECRET is configured' },
    });
  });
});
