/** Settings at work: with CRM_WEBHOOK_SECRET unresolved, every part starts and the webhooks answer 503. */
import { InvocationContext } from '@azure/functions';
import { describe, expect, inject, test } from 'vitest';
import { buildServices } from '../functions/services';
import { loadConfig } from '../lib/config';
import { crmDeps, handleWebhook } from '../lib/crm';

const minimal = {
  FPX_BASE_URL: 'https://fpx.example.com/ftop/v1.2/api/',
  FPX_CERT_PATH: '/certs/client.pem',
};

describe('unresolved Key Vault references', () => {
  const reference = (secret: string) =>
    `@Microsoft.KeyVault(SecretUri=https://kv-fpx.vault.azure.net/secrets/${secret}/)`;

  function load(env: Record<string, string>) {
    const logged: string[] = [];
    const config = loadConfig(env, { log: (line) => logged.push(line) });
    return { config, logged };
  }

  test('webhooks answer 503 while every other part starts', async () => {
    const { config, logged } = load({
      ...minimal,
      AzureWebJobsStorage: inject('storageConnection'),
      CRM_WEBHOOK_SECRET: reference('crm-webhook-secret'),
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
