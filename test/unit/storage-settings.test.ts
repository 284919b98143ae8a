import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../lib/config';
import { isInsecureEndpoint, parseStorageSettings, type StorageSettings } from '../../lib/storage';

const CLIENT_ID = '0b7e3c55-1f2a-4c8e-9d3b-6a5f4e3d2c1b';
const KEY = Buffer.alloc(32, 1).toString('base64');
const FPX = { FPX_BASE_URL: 'https://fpx.example.com/ftop/v1.2/api', FPX_CERT_PATH: '/certs/client.pem' };

function settingsOf(env: Record<string, string | undefined>): StorageSettings {
  const result = parseStorageSettings(env);
  if (!result.ok) throw new Error(`unexpected problem with ${result.problem.setting}`);
  return result.settings;
}

function configErrorOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig({ ...FPX, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('connection string form', () => {
  test('nothing set is the local emulator (the contract default)', () => {
    expect(settingsOf({})).toEqual({
      kind: 'connectionString',
      connectionString: 'UseDevelopmentStorage=true',
    });
    expect(settingsOf({ AzureWebJobsStorage: '  ' })).toEqual({
      kind: 'connectionString',
      connectionString: 'UseDevelopmentStorage=true',
    });
    expect(loadConfig(FPX).storage).toEqual({
      kind: 'connectionString',
      connectionString: 'UseDevelopmentStorage=true',
    });
  });

  test.each([
    'UseDevelopmentStorage=true',
    'usedevelopmentstorage=TRUE;DevelopmentStorageProxyUri=http://127.0.0.1',
    `DefaultEndpointsProtocol=https;AccountName=fpxdata;AccountKey=${KEY};EndpointSuffix=core.windows.net`,
    `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;`,
    'TableEndpoint=https://a.table.core.windows.net;QueueEndpoint=https://a.queue.core.windows.net;SharedAccessSignature=sv=2022-11-02&ss=qt&sig=abc%3D',
  ])('accepts %s', (connectionString) => {
    expect(settingsOf({ AzureWebJobsStorage: ` ${connectionString} ` })).toEqual({
      kind: 'connectionString',
      connectionString,
    });
  });

  test('a connection string wins over identity-based settings, as in the Functions host', () => {
    expect(
      settingsOf({
        AzureWebJobsStorage: 'UseDevelopmentStorage=true',
        AzureWebJobsStorage__accountName: 'fpxdata',
      }),
    ).toEqual({ kind: 'connectionString', connectionString: 'UseDevelopmentStorage=true' });
  });

  test.each([
    'not a connection string',
    'AccountName=fpxdata',
    'AccountKey=abc;DefaultEndpointsProtocol=https',
    'SharedAccessSignature=sv=1;TableEndpoint=https://a.table.core.windows.net',
    '=value',
  ])('rejects %s, naming the setting without echoing it', (value) => {
    const error = configErrorOf({ AzureWebJobsStorage: value });
    expect(error.setting).toBe('AzureWebJobsStorage');
    expect(error.message).toMatch(/^Setting AzureWebJobsStorage is invalid: expected a storage connection/);
    expect(error.message).not.toContain(value);
  });

  test('plain-http endpoints (Azurite) are recognised', () => {
    expect(isInsecureEndpoint('UseDevelopmentStorage=true')).toBe(true);
    expect(isInsecureEndpoint('AccountName=a;AccountKey=b;TableEndpoint=http://127.0.0.1:10002/a')).toBe(
      true,
    );
    expect(isInsecureEndpoint('DefaultEndpointsProtocol=http;AccountName=a;AccountKey=b')).toBe(true);
    expect(isInsecureEndpoint(`DefaultEndpointsProtocol=https;AccountName=a;AccountKey=${KEY}`)).toBe(false);
  });
});

describe('identity-based form', () => {
  test('by account name, with a user-assigned managed identity', () => {
    const env = {
      ...FPX,
      AzureWebJobsStorage__accountName: 'fpxdata',
      AzureWebJobsStorage__credential: 'managedidentity',
      AzureWebJobsStorage__clientId: CLIENT_ID,
    };
    const expected: StorageSettings = {
      kind: 'identity',
      tableServiceUrl: 'https://fpxdata.table.core.windows.net',
      queueServiceUrl: 'https://fpxdata.queue.core.windows.net',
      credential: 'managedidentity',
      clientId: CLIENT_ID,
    };
    expect(settingsOf(env)).toEqual(expected);
    expect(loadConfig(env).storage).toEqual(expected);
  });

  test('by service URIs (what the Bicep template writes), trailing slashes dropped', () => {
    expect(
      settingsOf({
        AzureWebJobsStorage__blobServiceUri: 'https://fpxdata.blob.core.windows.net/',
        AzureWebJobsStorage__queueServiceUri: 'https://fpxdata.queue.core.windows.net/',
        AzureWebJobsStorage__tableServiceUri: 'https://fpxdata.table.core.windows.net/',
        AzureWebJobsStorage__credential: 'ManagedIdentity',
        AzureWebJobsStorage__clientId: CLIENT_ID,
      }),
    ).toEqual({
      kind: 'identity',
      tableServiceUrl: 'https://fpxdata.table.core.windows.net',
      queueServiceUrl: 'https://fpxdata.queue.core.windows.net',
      credential: 'managedidentity',
      clientId: CLIENT_ID,
    });
  });

  test('service URIs override the account name; other clouds and custom domains work through them', () => {
    expect(
      settingsOf({
        AzureWebJobsStorage__accountName: 'fpxdata',
        AzureWebJobsStorage__tableServiceUri: 'https://fpxdata.table.core.chinacloudapi.cn',
      }),
    ).toMatchObject({
      tableServiceUrl: 'https://fpxdata.table.core.chinacloudapi.cn',
      queueServiceUrl: 'https://fpxdata.queue.core.windows.net',
    });
  });

  test('without __credential: the default Azure credential chain (developer sign-in), system identity without __clientId', () => {
    expect(settingsOf({ AzureWebJobsStorage__accountName: 'fpxdata' })).toEqual({
      kind: 'identity',
      tableServiceUrl: 'https://fpxdata.table.core.windows.net',
      queueServiceUrl: 'https://fpxdata.queue.core.windows.net',
      credential: 'default',
    });
  });

  test('setting names are case-insensitive, as app settings are', () => {
    expect(
      settingsOf({ AZUREWEBJOBSSTORAGE__ACCOUNTNAME: 'fpxdata', azurewebjobsstorage__ClientId: CLIENT_ID }),
    ).toMatchObject({ kind: 'identity', clientId: CLIENT_ID });
  });

  test.each<[string, Record<string, string>, string, boolean]>([
    [
      'no table service',
      { AzureWebJobsStorage__queueServiceUri: 'https://a.queue.core.windows.net' },
      'AzureWebJobsStorage__tableServiceUri',
      true,
    ],
    [
      'only the blob service (the Functions quickstart default)',
      {
        AzureWebJobsStorage__blobServiceUri: 'https://a.blob.core.windows.net',
        AzureWebJobsStorage__credential: 'managedidentity',
      },
      'AzureWebJobsStorage__tableServiceUri',
      true,
    ],
    [
      'no queue service',
      { AzureWebJobsStorage__tableServiceUri: 'https://a.table.core.windows.net' },
      'AzureWebJobsStorage__queueServiceUri',
      true,
    ],
    [
      'a bad account name',
      { AzureWebJobsStorage__accountName: 'Fpx-Data' },
      'AzureWebJobsStorage__accountName',
      false,
    ],
    [
      'a plain-http service',
      {
        AzureWebJobsStorage__accountName: 'fpxdata',
        AzureWebJobsStorage__queueServiceUri: 'http://fpxdata.queue.core.windows.net',
      },
      'AzureWebJobsStorage__queueServiceUri',
      false,
    ],
    [
      'a SAS in a service URI',
      {
        AzureWebJobsStorage__accountName: 'fpxdata',
        AzureWebJobsStorage__tableServiceUri: 'https://fpxdata.table.core.windows.net/?sv=2022&sig=secret',
      },
      'AzureWebJobsStorage__tableServiceUri',
      false,
    ],
    [
      'an unsupported credential',
      { AzureWebJobsStorage__accountName: 'fpxdata', AzureWebJobsStorage__credential: 'clientsecret' },
      'AzureWebJobsStorage__credential',
      false,
    ],
    [
      'a client id that is not a GUID',
      { AzureWebJobsStorage__accountName: 'fpxdata', AzureWebJobsStorage__clientId: 'my-identity' },
      'AzureWebJobsStorage__clientId',
      false,
    ],
  ])('%s is a ConfigError naming the setting', (_what, env, setting, missing) => {
    const error = configErrorOf(env);
    expect(error.setting).toBe(setting);
    expect(error.message).toMatch(new RegExp(`^Setting ${setting} is ${missing ? 'missing' : 'invalid'}: `));
    for (const value of Object.values(env)) expect(error.message).not.toContain(value);
  });
});
