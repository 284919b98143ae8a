/** The DATAVERSE_* settings: defaults, validation naming the setting (and the field), the key never echoed. */
import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../lib/config';

const minimal = { FPX_BASE_URL: 'https://fpx.example.com/ftop/v1.2/api', FPX_CERT_PATH: '/certs/client.pem' };

function errorOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig({ ...minimal, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('DATAVERSE_* settings', () => {
  test('read and normalized', () => {
    const { dataverse } = loadConfig({
      ...minimal,
      DATAVERSE_URL: 'https://contoso.crm.dynamics.com/',
      DATAVERSE_WEBHOOK_KEY: 'k'.repeat(32),
      DATAVERSE_TENANT_ID_COLUMN: 'new_fpxtenant',
      DATAVERSE_NOTE_CATEGORY_ID: '3',
      DATAVERSE_CONTACT_DEFAULTS: '{"contactTypeId": 2, "surveyEligible": false, "services": [1]}',
    });
    expect(dataverse).toMatchObject({
      url: 'https://contoso.crm.dynamics.com',
      webhookKey: 'k'.repeat(32),
      tenantIdColumn: 'new_fpxtenant',
      noteCategoryId: 3,
      contactDefaults: { contactTypeId: 2, surveyEligible: false, services: [1] },
    });
    expect(loadConfig({ ...minimal, DATAVERSE_URL: 'http://127.0.0.1:7400' }).dataverse.url).toBe(
      'http://127.0.0.1:7400',
    );
  });

  test('invalid values name the setting; the defaults name the field', () => {
    expect(errorOf({ DATAVERSE_URL: 'http://contoso.crm.dynamics.com' }).setting).toBe('DATAVERSE_URL');
    expect(errorOf({ DATAVERSE_TENANT_ID_COLUMN: 'Bad Column' }).setting).toBe('DATAVERSE_TENANT_ID_COLUMN');
    expect(errorOf({ DATAVERSE_NOTE_CATEGORY_ID: '0' }).setting).toBe('DATAVERSE_NOTE_CATEGORY_ID');
    const field = errorOf({ DATAVERSE_CONTACT_DEFAULTS: '{"contactTypeId": "two"}' });
    expect(field.setting).toBe('DATAVERSE_CONTACT_DEFAULTS');
    expect(field.message).toContain('contactTypeId');
    expect(errorOf({ DATAVERSE_CONTACT_DEFAULTS: '{"colour": 1}' }).message).toContain('colour');
    expect(errorOf({ DATAVERSE_CONTACT_DEFAULTS: 'not json' }).setting).toBe('DATAVERSE_CONTACT_DEFAULTS');
  });

  test('a short key is refused without echoing it', () => {
    const error = errorOf({ DATAVERSE_WEBHOOK_KEY: 'short-secret' });
    expect(error.setting).toBe('DATAVERSE_WEBHOOK_KEY');
    expect(error.message).not.toContain('short-secret');
  });
});
