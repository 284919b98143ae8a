/** The settings as the app reads them: defaults, validation, secrets never echoed, unresolved Key Vault references. */
import { describe, expect, test } from 'vitest';
import { buildServices } from '../../functions/services';
import { createAlertSender, LogAlertSender } from '../../lib/alerts';
import { ConfigError, loadConfig } from '../../lib/config';
import { keyVaultReference, loadLogged } from '../support/config';

const minimal = {
  FPX_BASE_URL: 'https://fpx.example.com/ftop/v1.2/api/',
  FPX_CERT_PATH: '/certs/client.pem',
};

function errorOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  test('applies the contract defaults', () => {
    const config = loadConfig(minimal);
    expect(config).toEqual({
      storage: { kind: 'connectionString', connectionString: 'UseDevelopmentStorage=true' },
      fpx: {
        baseUrl: 'https://fpx.example.com/ftop/v1.2/api',
        certificate: { kind: 'file', path: '/certs/client.pem', password: undefined },
        caPath: undefined,
        rateLimitPerMinute: 600,
        maxInstances: 40,
        pageSize: 25,
        origin: undefined,
      },
      crm: { webhookSecrets: [], deliveryMaxAttempts: 8, deliveryBackoffSeconds: 30 },
      alerts: {
        days: [30, 14, 7, 1],
        emailTo: [],
        emailFrom: undefined,
        acsEndpoint: undefined,
        acsConnectionString: undefined,
        smtpUrl: undefined,
      },
      schedules: {
        pollReferrals: '0 */5 * * * *',
        pollTenants: '0 0 * * * *',
        certCheck: '0 0 8 * * *',
        referenceData: '0 0 2 * * *',
      },
      sync: { maxRemovedPercent: 20 },
      dataverse: {
        url: undefined,
        webhookKey: undefined,
        tenantIdColumn: 'fpx_tenantid',
        noteCategoryId: 1,
        contactDefaults: {},
        identityClientId: undefined,
        functionKeyChecked: false,
      },
      events: { urls: [], secrets: [], perSecond: 50 },
      telemetry: { exporter: 'none' },
    });
  });

  test('SYNC_MAX_REMOVED_PERCENT: 1 to 100, named when invalid', () => {
    expect(loadConfig({ ...minimal, SYNC_MAX_REMOVED_PERCENT: '100' }).sync.maxRemovedPercent).toBe(100);
    expect(() => loadConfig({ ...minimal, SYNC_MAX_REMOVED_PERCENT: '150' })).toThrow(
      /SYNC_MAX_REMOVED_PERCENT/,
    );
  });

  test('reads every setting', () => {
    const secret = `whsec_${Buffer.alloc(24, 7).toString('base64')}`;
    const config = loadConfig({
      AzureWebJobsStorage:
        'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=a2V5;EndpointSuffix=core.windows.net',
      FPX_BASE_URL: 'https://uat.partner.fttoolingapi.microsoft.com/ftop/v1.2/api',
      FPX_CERT_KEYVAULT_URL: 'https://kv.vault.azure.net/',
      FPX_CERT_NAME: 'fpx-client',
      CERT_REFRESH_MINUTES: '15',
      FPX_CA_PATH: '/ca.pem',
      FPX_RATE_LIMIT_PER_MINUTE: '300',
      FPX_PAGE_SIZE: '100',
      FPX_ORIGIN: 'https://crm.example.com/path',
      CRM_WEBHOOK_SECRET: `${secret}  ${secret}`,
      CERT_ALERT_DAYS: '7, 30,1',
      ALERT_EMAIL_TO: 'ops@example.com, it@example.com',
      ALERT_EMAIL_FROM: 'fpx@example.com',
      SMTP_URL: 'smtp://127.0.0.1:2525',
      POLL_REFERRALS_SCHEDULE: '0 */1 * * * *',
      POLL_TENANTS_SCHEDULE: '0 30 * * * *',
      CERT_CHECK_SCHEDULE: '0 0 9 * * *',
      REFERENCE_DATA_SCHEDULE: '0 15 3 * * *',
    });
    expect(config.fpx.certificate).toEqual({
      kind: 'keyVault',
      vaultUrl: 'https://kv.vault.azure.net',
      name: 'fpx-client',
      refreshMinutes: 15,
    });
    expect(config.fpx).toMatchObject({
      rateLimitPerMinute: 300,
      pageSize: 100,
      origin: 'https://crm.example.com',
    });
    expect(config.crm.webhookSecrets).toEqual([secret, secret]);
    expect(config.alerts).toMatchObject({ days: [30, 7, 1], emailTo: ['ops@example.com', 'it@example.com'] });
    expect(config.schedules).toMatchObject({ pollTenants: '0 30 * * * *', referenceData: '0 15 3 * * *' });
  });

  test.each([
    [{}, 'FPX_BASE_URL', 'missing'],
    [{ ...minimal, FPX_BASE_URL: 'http://fpx.example.com' }, 'FPX_BASE_URL', 'invalid'],
    [{ FPX_BASE_URL: minimal.FPX_BASE_URL }, 'FPX_CERT_PATH', 'missing'],
    [{ ...minimal, FPX_CERT_NAME: 'cert' }, 'FPX_CERT_KEYVAULT_URL', 'missing'],
    [{ ...minimal, FPX_CERT_KEYVAULT_URL: 'https://kv.vault.azure.net' }, 'FPX_CERT_NAME', 'missing'],
    [{ ...minimal, FPX_PAGE_SIZE: 'ten' }, 'FPX_PAGE_SIZE', 'invalid'],
    [{ ...minimal, FPX_PAGE_SIZE: '0' }, 'FPX_PAGE_SIZE', 'invalid'],
    [{ ...minimal, FPX_RATE_LIMIT_PER_MINUTE: '-5' }, 'FPX_RATE_LIMIT_PER_MINUTE', 'invalid'],
    [{ ...minimal, CERT_REFRESH_MINUTES: '1.5' }, 'CERT_REFRESH_MINUTES', 'invalid'],
    [{ ...minimal, CERT_ALERT_DAYS: '30,soon' }, 'CERT_ALERT_DAYS', 'invalid'],
    [{ ...minimal, ALERT_EMAIL_TO: 'ops@example.com,not-an-address' }, 'ALERT_EMAIL_TO', 'invalid'],
    [{ ...minimal, SMTP_URL: 'http://mail' }, 'SMTP_URL', 'invalid'],
    [{ ...minimal, POLL_REFERRALS_SCHEDULE: '*/5 * * * *' }, 'POLL_REFERRALS_SCHEDULE', 'invalid'],
    [{ ...minimal, REFERENCE_DATA_SCHEDULE: '0 2 * * *' }, 'REFERENCE_DATA_SCHEDULE', 'invalid'],
    [{ ...minimal, FPX_ORIGIN: 'crm' }, 'FPX_ORIGIN', 'invalid'],
  ])('names the bad setting %#', (env, setting, state) => {
    const error = errorOf(env as Record<string, string>);
    expect(error.setting).toBe(setting);
    expect(error.message).toMatch(new RegExp(`^Setting ${setting} is ${state}: expected `));
  });

  test('never echoes the value of a secret setting', () => {
    const cases: Record<string, string>[] = [
      { ...minimal, CRM_WEBHOOK_SECRET: 'whsec_c2VjcmV0 hunter2-topsecret' },
      { ...minimal, SMTP_URL: 'ftp://user:hunter2-topsecret@mail' },
      { ...minimal, ACS_EMAIL_CONNECTION_STRING: 'hunter2-topsecret' },
    ];
    for (const env of cases) {
      const error = errorOf(env);
      expect(error.message).not.toContain('hunter2');
      expect(error.message).not.toContain('c2VjcmV0');
    }
  });

  test('treats empty settings as unset', () => {
    expect(loadConfig({ ...minimal, FPX_PAGE_SIZE: '', FPX_ORIGIN: '  ' }).fpx).toMatchObject({
      pageSize: 25,
      origin: undefined,
    });
  });
});

describe('unresolved Key Vault references', () => {
  test('a setting still holding its reference is unset, with one error line naming it', () => {
    const { config, logged } = loadLogged({
      ...minimal,
      CRM_WEBHOOK_SECRET: keyVaultReference('crm-webhook-secret'),
      FPX_RATE_LIMIT_PER_MINUTE: '@Microsoft.KeyVault(VaultName=kv-fpx;SecretName=rate)',
    });
    expect(config.crm.webhookSecrets).toEqual([]);
    expect(config.fpx.rateLimitPerMinute).toBe(600);
    expect(logged).toHaveLength(2);
    expect(logged[0]).toMatch(
      /^Setting CRM_WEBHOOK_SECRET holds the Key Vault reference @Microsoft\.KeyVault\(SecretUri=https:\/\/kv-fpx\.vault\.azure\.net\/secrets\/crm-webhook-secret\/\), which did not resolve: the app takes CRM_WEBHOOK_SECRET as unset/,
    );
    expect(logged[1]).toMatch(/^Setting FPX_RATE_LIMIT_PER_MINUTE holds the Key Vault reference/);
  });

  test('nothing after the reference is ever quoted', () => {
    const { logged } = loadLogged({
      ...minimal,
      SMTP_URL: `${keyVaultReference('smtp')}smtp://user:hunter2@mail`,
    });
    expect(logged).toHaveLength(1);
    expect(logged[0]).not.toContain('hunter2');
  });

  test('alert settings: alerts go to the log instead of stopping start-up', async () => {
    const { config } = loadLogged({
      ...minimal,
      SMTP_URL: 'smtp://127.0.0.1:2525',
      ALERT_EMAIL_TO: keyVaultReference('alert-to'),
      ALERT_EMAIL_FROM: 'fpx@example.com',
    });
    expect(config.alerts.unresolved).toEqual(['ALERT_EMAIL_TO']);
    expect(buildServices(config).alerts).toBeInstanceOf(LogAlertSender);
    const lines: string[] = [];
    await createAlertSender(config.alerts, { log: (line) => lines.push(line) }).send({
      subject: 'FPX client certificate expires in 7 days',
      text: '…',
    });
    expect(lines[0]).toMatch(/^ALERT \(not emailed: ALERT_EMAIL_TO: unresolved Key Vault reference\)/);
  });

  test.each([
    ['FPX_BASE_URL', {}],
    ['FPX_CERT_PATH', {}],
    ['FPX_CERT_NAME', { FPX_CERT_KEYVAULT_URL: 'https://kv.vault.azure.net' }],
    ['AzureWebJobsStorage', {}],
    ['AzureWebJobsStorage__accountName', {}],
  ])('%s, which every function needs, stops start-up, naming it', (setting, extra) => {
    const env = { ...minimal, ...extra, [setting]: keyVaultReference('x') };
    const error = (() => {
      try {
        loadLogged(env);
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.setting).toBe(setting);
    expect(error.message).toMatch(
      new RegExp(`^Setting ${setting} is an unresolved Key Vault reference: expected `),
    );
  });
});

describe('CRM events settings', () => {
  const secret = `whsec_${Buffer.alloc(24, 7).toString('base64')}`;

  test('URLs space separated, with the secret and the pace', () => {
    const config = loadConfig({
      ...minimal,
      CRM_EVENTS_URL: 'https://crm.example.com/events  http://127.0.0.1:7072/events',
      CRM_EVENTS_SECRET: secret,
      CRM_EVENTS_PER_SECOND: '20',
    });
    expect(config.events).toEqual({
      urls: ['https://crm.example.com/events', 'http://127.0.0.1:7072/events'],
      secrets: [secret],
      perSecond: 20,
    });
  });

  test('the secret is required with a URL; bad values are named, the secret never echoed', () => {
    expect(() => loadConfig({ ...minimal, CRM_EVENTS_URL: 'https://crm.example.com/events' })).toThrow(
      /Setting CRM_EVENTS_SECRET is missing/,
    );
    expect(() =>
      loadConfig({ ...minimal, CRM_EVENTS_URL: 'http://crm.example.com/events', CRM_EVENTS_SECRET: secret }),
    ).toThrow(/Setting CRM_EVENTS_URL is invalid/);
    expect(() => loadConfig({ ...minimal, CRM_EVENTS_PER_SECOND: '0' })).toThrow(/CRM_EVENTS_PER_SECOND/);
    let message = '';
    try {
      loadConfig({
        ...minimal,
        CRM_EVENTS_URL: 'https://crm.example.com/e',
        CRM_EVENTS_SECRET: 'whsec_short hunter2-topsecret',
      });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/CRM_EVENTS_SECRET is invalid/);
    expect(message).not.toContain('hunter2');
  });

  test('an unresolved Key Vault reference does not stop start-up: events are recorded, not signed', () => {
    const config = loadConfig(
      {
        ...minimal,
        CRM_EVENTS_URL: 'https://crm.example.com/events',
        CRM_EVENTS_SECRET:
          '@Microsoft.KeyVault(SecretUri=https://kv-fpx.vault.azure.net/secrets/crm-events-secret/)',
      },
      { log: () => undefined },
    );
    expect(config.events).toEqual({ urls: ['https://crm.example.com/events'], secrets: [], perSecond: 50 });
  });
});
