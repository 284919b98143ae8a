/** The settings `npm run invoke` runs with: npm start's parts where the settings name none, then the contract's. */
import { describe, expect, test } from 'vitest';
import { invokeSettings } from '../../dev/invoke';
import { fillLocalSettings, type LocalParts } from '../../dev/local-settings';
import { SCHEDULE_DEFAULTS } from '../../lib/config';

describe('the settings invoke runs with (filled in explicitly, the host adds none)', () => {
  const parts: LocalParts = {
    storage: 'UseAzurite',
    fpx: { url: 'https://sandbox.local/api', caPath: '/ca.pem', clientCertPath: '/client.pem' },
    mail: { url: 'smtp://127.0.0.1:2525' },
    webhookSecret: 'whsec_local',
  };

  test("npm start's parts where the settings name none, then the contract's schedules", () => {
    const { settings: filled, filled: names } = fillLocalSettings({ FPX_PAGE_SIZE: '7' }, parts);
    expect(filled).toEqual({
      FPX_PAGE_SIZE: '7',
      AzureWebJobsStorage: 'UseAzurite',
      FPX_BASE_URL: 'https://sandbox.local/api',
      FPX_CA_PATH: '/ca.pem',
      FPX_CERT_PATH: '/client.pem',
      SMTP_URL: 'smtp://127.0.0.1:2525',
      ALERT_EMAIL_TO: 'fpx-alerts@fpx-connector.local',
      ALERT_EMAIL_FROM: 'fpx-crm-connector@fpx-connector.local',
      CRM_WEBHOOK_SECRET: 'whsec_local',
      ...SCHEDULE_DEFAULTS,
    });
    expect(names).toEqual(Object.keys(filled).slice(1));
  });

  test('settings that say otherwise win, part by part', () => {
    const own = {
      AzureWebJobsStorage: 'DefaultEndpointsProtocol=https;AccountName=real',
      FPX_BASE_URL: 'https://fpx.example/api',
      ACS_EMAIL_ENDPOINT: 'https://acs.example',
      CRM_WEBHOOK_SECRET: 'whsec_mine',
      POLL_TENANTS_SCHEDULE: '0 0 */2 * * *',
    };
    const { settings: filled } = fillLocalSettings(own, parts);
    // Another FPX: none of the sandbox's settings (its CA would not trust that FPX); no sink beside ACS.
    expect(filled).toEqual({ ...SCHEDULE_DEFAULTS, ...own });
    // `UseDevelopmentStorage=true` and blank values mean the local parts; a Key Vault certificate keeps its own.
    const local = fillLocalSettings(
      {
        AzureWebJobsStorage: 'UseDevelopmentStorage=true',
        FPX_BASE_URL: ' ',
        FPX_CERT_KEYVAULT_URL: 'https://kv',
      },
      parts,
    ).settings;
    expect(local).toMatchObject({
      AzureWebJobsStorage: 'UseAzurite',
      FPX_BASE_URL: 'https://sandbox.local/api',
    });
    expect(local.FPX_CERT_PATH).toBeUndefined();
    // Without npm start: the local emulator.
    expect(invokeSettings({}).AzureWebJobsStorage).toBe('UseDevelopmentStorage=true');
  });
});
