// infra/ cannot be compiled here (the Bicep CLI is a download), so this suite reads the Bicep as text: comments
// are stripped, then resources, modules, parameters and object properties are picked out with a small
// string-aware scanner and compared with what the hardening issue (#14, items 11 and 13) asks for. The azd hook
// that keeps the webhook secret from being regenerated is plain JavaScript and runs here against a fake
// Azure Resource Manager.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the ${…} compared here is Bicep and azd text, not JavaScript
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type Arm,
  armClient,
  EVENTS_SECRET_NAME,
  HookError,
  inspectVault,
  ipRule,
  NEW_VAULT_RETENTION_DAYS,
  postprovision,
  preprovision,
  WEBHOOK_SECRET_NAME,
} from '../infra/hooks/provision.mjs';
import { MAX_BODY_BYTES } from '../lib/crm/http-input';

// ---------------------------------------------------------------------------------------------------------
// A little Bicep reading

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

const CLOSE: Record<string, string> = { '{': '}', '[': ']', '(': ')' };

/** Index just past the string literal starting at src[i] (escapes, and ${…} holding further strings). */
function skipString(src: string, i: number): number {
  if (src.startsWith("'''", i)) return src.indexOf("'''", i + 3) + 3;
  for (let j = i + 1; j < src.length; ) {
    if (src[j] === '\\') j += 2;
    else if (src[j] === "'") return j + 1;
    else if (src[j] === '$' && src[j + 1] === '{') j = skipGroup(src, j + 1);
    else j++;
  }
  throw new Error(`unterminated string at ${i}`);
}

/** Index just past the bracket group opening at src[i] ('{', '[' or '('), strings and comments skipped. */
function skipGroup(src: string, i: number): number {
  const open = src[i] as string;
  let depth = 0;
  for (let j = i; j < src.length; ) {
    const c = src[j];
    if (c === "'") j = skipString(src, j);
    else if (src.startsWith('//', j)) j = src.indexOf('\n', j) === -1 ? src.length : src.indexOf('\n', j);
    else if (src.startsWith('/*', j)) j = src.indexOf('*/', j) + 2;
    else {
      if (c === open) depth++;
      else if (c === CLOSE[open] && --depth === 0) return j + 1;
      j++;
    }
  }
  throw new Error(`unbalanced ${open} at ${i}`);
}

/** The source without comments (strings, URLs in them included, left alone). */
function code(src: string): string {
  let out = '';
  for (let i = 0; i < src.length; ) {
    if (src[i] === "'") {
      const end = skipString(src, i);
      out += src.slice(i, end);
      i = end;
    } else if (src.startsWith('//', i)) {
      i = src.indexOf('\n', i) === -1 ? src.length : src.indexOf('\n', i);
    } else if (src.startsWith('/*', i)) {
      i = src.indexOf('*/', i) + 2;
    } else {
      out += src[i++];
    }
  }
  return out;
}

const bicep = (path: string) => code(read(path));

/** Splits the inside of a group at newlines and commas that are not nested: one part per entry or item. */
function parts(group: string): string[] {
  const inner = group.slice(1, -1);
  const found: string[] = [];
  let start = 0;
  for (let j = 0; j < inner.length; ) {
    const c = inner[j] as string;
    if (c === "'") j = skipString(inner, j);
    else if (c in CLOSE) j = skipGroup(inner, j);
    else if (c === '\n' || c === ',') {
      found.push(inner.slice(start, j));
      start = ++j;
    } else j++;
  }
  found.push(inner.slice(start));
  return found.map((p) => p.trim()).filter(Boolean);
}

/** Top-level `key: value` pairs of an object literal. */
function entries(object: string): Map<string, string> {
  expect(object.startsWith('{'), `an object literal, not ${object.slice(0, 40)}`).toBe(true);
  const map = new Map<string, string>();
  for (const part of parts(object)) {
    const m = /^([A-Za-z_]\w*|'[^']*'):\s*([\s\S]*)$/.exec(part);
    if (m) map.set((m[1] as string).replace(/^'|'$/g, ''), (m[2] as string).trim());
  }
  return map;
}

/** Follows a dotted path of object properties; fails the test when a step is missing. */
function prop(object: string, path: string): string {
  let current = object;
  for (const key of path.split('.')) {
    const value = entries(current).get(key);
    expect(value, `property ${path} (missing ${key})`).toBeDefined();
    current = value as string;
  }
  return current;
}

const items = (array: string) => {
  expect(array.startsWith('['), `an array literal, not ${array.slice(0, 40)}`).toBe(true);
  return parts(array);
};

/** A string literal's text. */
function str(value: string): string {
  expect(value, 'a string literal').toMatch(/^'[^']*'$/);
  return value.slice(1, -1);
}

interface Declared {
  symbol: string;
  type: string;
  condition: string | undefined;
  existing: boolean;
  body: string;
}

function declarations(src: string, keyword: 'resource' | 'module'): Declared[] {
  const found: Declared[] = [];
  const header = new RegExp(
    `^\\s*${keyword}\\s+(\\w+)\\s+'([^']+)'(\\s+existing)?\\s*=\\s*(?:if\\s*)?`,
    'gm',
  );
  for (let m = header.exec(src); m; m = header.exec(src)) {
    let at = m.index + m[0].length;
    let condition: string | undefined;
    if (src[at] === '(') {
      const end = skipGroup(src, at);
      condition = src.slice(at + 1, end - 1).trim();
      at = end;
      while (/\s/.test(src[at] as string)) at++;
    }
    expect(src[at], `body of ${keyword} ${m[1]}`).toBe('{');
    found.push({
      symbol: m[1] as string,
      type: m[2] as string,
      condition,
      existing: Boolean(m[3]),
      body: src.slice(at, skipGroup(src, at)),
    });
  }
  return found;
}

function resource(src: string, symbol: string): Declared {
  const found = declarations(src, 'resource').find((r) => r.symbol === symbol);
  expect(found, `resource ${symbol}`).toBeDefined();
  return found as Declared;
}

const resourcesOfType = (src: string, type: string) =>
  declarations(src, 'resource').filter((r) => r.type.split('@')[0]?.toLowerCase() === type.toLowerCase());

function module(src: string, symbol: string): Declared {
  const found = declarations(src, 'module').find((r) => r.symbol === symbol);
  expect(found, `module ${symbol}`).toBeDefined();
  return found as Declared;
}

/** `param name type = default`, decorators aside. */
function param(src: string, name: string): { type: string; default: string | undefined } {
  const m = new RegExp(`^\\s*param\\s+${name}\\s+(\\w+)(?:\\s*=\\s*(.+?))?\\s*$`, 'm').exec(src);
  expect(m, `param ${name}`).not.toBeNull();
  return { type: (m as RegExpExecArray)[1] as string, default: (m as RegExpExecArray)[2] };
}

/** `var name = value`, the value balanced over several lines. */
function variable(src: string, name: string): string {
  const m = new RegExp(`^\\s*var\\s+${name}\\s*=\\s*`, 'm').exec(src);
  expect(m, `var ${name}`).not.toBeNull();
  const at = (m as RegExpExecArray).index + (m as RegExpExecArray)[0].length;
  if ((src[at] as string) in CLOSE) return src.slice(at, skipGroup(src, at));
  return src.slice(at, src.indexOf('\n', at)).trim();
}

/** `cond ? a : b` with a plain condition and literal branches, evaluated for both values of the condition. */
function ternary(value: string): { condition: string; whenTrue: string; whenFalse: string } {
  const m = /^!?(\w+)\s*\?\s*('[^']*'|\[[\s\S]*?\]|\w+)\s*:\s*('[^']*'|\[[\s\S]*?\]|\w+)$/.exec(value);
  expect(m, `a condition ? a : b expression, not ${value}`).not.toBeNull();
  const [, condition, whenTrue, whenFalse] = m as RegExpExecArray;
  return { condition: condition as string, whenTrue: whenTrue as string, whenFalse: whenFalse as string };
}

const main = bicep('infra/main.bicep');
const keyvault = bicep('infra/app/keyvault.bicep');
const storage = bicep('infra/app/storage.bicep');
const email = bicep('infra/app/email.bicep');
const api = bicep('infra/app/api.bicep');
const network = bicep('infra/app/network.bicep');
const monitoring = bicep('infra/app/monitoring.bicep');
const parameters = JSON.parse(read('infra/main.parameters.json')).parameters as Record<
  string,
  { value: string }
>;
const allBicep = [
  'main',
  'api',
  'email',
  'identity',
  'keyvault',
  'monitoring',
  'network',
  'rbac',
  'storage',
].map((name) => [name, bicep(name === 'main' ? 'infra/main.bicep' : `infra/app/${name}.bicep`)] as const);

describe('the scanner', () => {
  test('ignores comments, keeps // inside strings, and balances braces of ${} inside strings', () => {
    const src = code("// x: 1\nvar a = { // y\n  u: 'https://h/${f('}')}'\n  v: [1, 2] }\n");
    expect(src).not.toContain('x: 1');
    expect(prop(variable(src, 'a'), 'u')).toBe("'https://h/${f('}')}'");
    expect(items(prop(variable(src, 'a'), 'v'))).toEqual(['1', '2']);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Item 13: Key Vault

describe('Key Vault', () => {
  const vault = resource(keyvault, 'vault');

  test('is a vault with purge protection on and soft delete on', () => {
    expect(vault.type).toMatch(/^Microsoft\.KeyVault\/vaults@\d{4}-\d{2}-\d{2}$/);
    expect(prop(vault.body, 'properties.enablePurgeProtection')).toBe('true');
    expect(prop(vault.body, 'properties.enableSoftDelete')).toBe('true');
  });

  test('keeps deleted items 90 days (a new vault; an existing vault keeps the value Azure fixed at creation)', () => {
    const retention = prop(vault.body, 'properties.softDeleteRetentionInDays');
    expect(retention).toBe('softDeleteRetentionInDays');
    expect(param(keyvault, 'softDeleteRetentionInDays')).toEqual({ type: 'int', default: '90' });
    // main.bicep passes its own parameter, 90 unless the hook found an older vault with another value.
    expect(prop(module(main, 'keyVault').body, 'params.softDeleteRetentionInDays')).toBe(
      'keyVaultSoftDeleteRetentionInDays',
    );
    expect(param(main, 'keyVaultSoftDeleteRetentionInDays')).toEqual({ type: 'int', default: '90' });
    expect(parameters.keyVaultSoftDeleteRetentionInDays?.value).toBe(
      '${KEY_VAULT_SOFT_DELETE_RETENTION_DAYS=90}',
    );
    expect(NEW_VAULT_RETENTION_DAYS).toBe(90);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Item 13: restrictNetwork

describe('restrictNetwork', () => {
  test('is a parameter, false by default and in the azd environment', () => {
    expect(param(main, 'restrictNetwork')).toEqual({ type: 'bool', default: 'false' });
    expect(parameters.restrictNetwork?.value).toBe('${RESTRICT_NETWORK=false}');
  });

  for (const [name, src, moduleSymbol, vnetRule, ipRuleShape] of [
    [
      'Storage',
      storage,
      'storage',
      { id: 'allowedSubnetId', action: "'Allow'" },
      "{ value: ip, action: 'Allow' }",
    ],
    [
      'Key Vault',
      keyvault,
      'keyVault',
      { id: 'allowedSubnetId', ignoreMissingVnetServiceEndpoint: 'false' },
      '{ value: ip }',
    ],
  ] as const) {
    test(`denies by default on ${name} when on, allows when off, and admits the app's subnet and the deployer`, () => {
      const target = declarations(src, 'resource').find((r) =>
        /^Microsoft\.(Storage\/storageAccounts|KeyVault\/vaults)@/.test(r.type),
      ) as Declared;
      const acls = prop(target.body, 'properties.networkAcls');

      const defaultAction = ternary(prop(acls, 'defaultAction'));
      expect(defaultAction).toEqual({
        condition: 'restrictNetwork',
        whenTrue: "'Deny'",
        whenFalse: "'Allow'",
      });
      expect(param(src, 'restrictNetwork')).toEqual({ type: 'bool', default: 'false' });
      expect(prop(module(main, moduleSymbol).body, 'params.restrictNetwork')).toBe('restrictNetwork');

      const subnetRules = ternary(prop(acls, 'virtualNetworkRules'));
      expect(subnetRules.condition).toBe('restrictNetwork');
      expect(subnetRules.whenFalse).toBe('[]');
      expect(Object.fromEntries(entries(items(subnetRules.whenTrue)[0] as string))).toEqual(vnetRule);
      expect(prop(module(main, moduleSymbol).body, 'params.allowedSubnetId')).toBe(
        "restrictNetwork ? network!.outputs.subnetId : ''",
      );

      expect(prop(acls, 'ipRules')).toBe(
        `restrictNetwork ? map(allowedIpAddresses, ip => ${ipRuleShape}) : []`,
      );
      expect(prop(module(main, moduleSymbol).body, 'params.allowedIpAddresses')).toBe(
        'restrictedIpAddresses',
      );
    });
  }

  test('puts the app in a subnet with service endpoints for Storage and Key Vault, only when on', () => {
    const net = module(main, 'network');
    expect(net.condition).toBe('restrictNetwork');
    expect(prop(module(main, 'api').body, 'params.virtualNetworkSubnetId')).toBe(
      "restrictNetwork ? network!.outputs.subnetId : ''",
    );
    expect(prop(resource(api, 'site').body, 'properties.virtualNetworkSubnetId')).toBe(
      'empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId',
    );

    const subnet = items(prop(resource(network, 'vnet').body, 'properties.subnets'))[0] as string;
    const endpoints = items(prop(subnet, 'properties.serviceEndpoints')).map((e) => str(prop(e, 'service')));
    expect(endpoints.sort()).toEqual(['Microsoft.KeyVault', 'Microsoft.Storage']);
    const delegation = items(prop(subnet, 'properties.delegations'))[0] as string;
    expect(str(prop(delegation, 'properties.serviceName'))).toBe('Microsoft.App/environments');
  });

  test("takes the deployer's addresses from the hook, comma separated", () => {
    expect(param(main, 'allowedIpAddresses')).toEqual({ type: 'string', default: "''" });
    expect(parameters.allowedIpAddresses?.value).toBe('${NETWORK_ALLOWED_IP_ADDRESSES}');
    expect(variable(main, 'restrictedIpAddresses')).toBe(
      "filter(map(split(allowedIpAddresses, ','), ip => trim(ip)), ip => !empty(ip))",
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// Item 13: the email sender's role

describe('the email sender', () => {
  const CONTRIBUTOR = 'b24988ac-6180-42a0-ab88-20f7382dd24c';
  const OWNER = '8e3af657-a8ff-443c-a75c-2fe8c4bcb635';

  test('gets a custom role that can send email and nothing broader', () => {
    const [role, ...others] = resourcesOfType(email, 'Microsoft.Authorization/roleDefinitions');
    expect(others).toEqual([]);
    expect(role).toBeDefined();
    const body = (role as Declared).body;
    expect(str(prop(body, 'properties.type'))).toBe('CustomRole');
    expect(items(prop(body, 'properties.assignableScopes'))).toEqual(['resourceGroup().id']);

    const [permission, ...more] = items(prop(body, 'properties.permissions'));
    expect(more).toEqual([]);
    const actionsText = prop(permission as string, 'actions');
    const actions = items(/^\w+$/.test(actionsText) ? variable(email, actionsText) : actionsText).map(str);
    expect(actions.length).toBeGreaterThan(0);
    for (const action of actions) {
      expect(action).not.toContain('*');
      expect(action).toMatch(
        /^Microsoft\.Communication\/(CommunicationServices|EmailServices)\/(Read|Write|write)$/,
      );
    }
    expect(actions).toContain('Microsoft.Communication/CommunicationServices/Read');
    expect(actions).toContain('Microsoft.Communication/EmailServices/write');
    expect(actions.some((a) => /ListKeys|RegenerateKey|Delete/i.test(a))).toBe(false);
    expect(items(prop(permission as string, 'dataActions'))).toEqual([]);
  });

  test('is assigned that role on the Communication Services resource, and no Contributor anywhere', () => {
    const [assignment, ...others] = resourcesOfType(email, 'Microsoft.Authorization/roleAssignments');
    expect(others).toEqual([]);
    const body = (assignment as Declared).body;
    expect(prop(body, 'scope')).toBe('communicationService');
    expect(prop(body, 'properties.roleDefinitionId')).toBe(
      "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', emailSendRole.name)",
    );
    expect(prop(body, 'properties.principalId')).toBe('senderPrincipalId');
    expect(items(prop(body, 'dependsOn'))).toEqual(['emailSendRole']);

    for (const [name, src] of allBicep) {
      expect(src.toLowerCase(), `${name}.bicep grants Contributor`).not.toContain(CONTRIBUTOR);
      expect(src.toLowerCase(), `${name}.bicep grants Owner`).not.toContain(OWNER);
      expect(src, `${name}.bicep names a Contributor role`).not.toMatch(/contributorRoleId|'Contributor'/);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Item 13: diagnostic settings

describe('diagnostic settings', () => {
  const workspaceFlows = (moduleSymbol: string) =>
    expect(prop(module(main, moduleSymbol).body, 'params.logAnalyticsWorkspaceId')).toBe(
      'monitoring.outputs.logAnalyticsWorkspaceId',
    );

  /** The enabled categories of a logs array (resolving a variable reference). */
  function categories(src: string, logs: string): string[] {
    const array = /^\w+$/.test(logs) ? variable(src, logs) : logs;
    return items(array)
      .filter((item) => prop(item, 'enabled') === 'true')
      .map((item) => str(prop(item, 'category')));
  }

  test('send Key Vault audit events to the Log Analytics workspace', () => {
    const [setting, ...others] = resourcesOfType(keyvault, 'Microsoft.Insights/diagnosticSettings');
    expect(others).toEqual([]);
    const body = (setting as Declared).body;
    expect(prop(body, 'scope')).toBe('vault');
    expect(prop(body, 'properties.workspaceId')).toBe('logAnalyticsWorkspaceId');
    expect(categories(keyvault, prop(body, 'properties.logs'))).toContain('AuditEvent');
    workspaceFlows('keyVault');
  });

  test('send blob, queue and table reads, writes and deletes to the workspace', () => {
    const settings = resourcesOfType(storage, 'Microsoft.Insights/diagnosticSettings');
    expect(settings.map((s) => prop(s.body, 'scope')).sort()).toEqual([
      'storage::blobServices',
      'storage::queueServices',
      'storage::tableServices',
    ]);
    for (const setting of settings) {
      expect(prop(setting.body, 'properties.workspaceId')).toBe('logAnalyticsWorkspaceId');
      expect(categories(storage, prop(setting.body, 'properties.logs')).sort()).toEqual([
        'StorageDelete',
        'StorageRead',
        'StorageWrite',
      ]);
    }
    // The scopes are the account's default services.
    const account = resource(storage, 'storage').body;
    for (const service of ['blobServices', 'queueServices', 'tableServices']) {
      const child = declarations(account, 'resource').find((r) => r.symbol === service) as Declared;
      expect(child?.type, service).toBe(service);
      expect(str(prop(child.body, 'name'))).toBe('default');
    }
    workspaceFlows('storage');
  });

  test('go to the workspace Application Insights uses', () => {
    const workspace = resource(monitoring, 'logAnalytics');
    expect(workspace.type).toMatch(/^Microsoft\.OperationalInsights\/workspaces@/);
    expect(monitoring).toMatch(/^output logAnalyticsWorkspaceId string = logAnalytics\.id$/m);
    expect(prop(resource(monitoring, 'applicationInsights').body, 'properties.WorkspaceResourceId')).toBe(
      'logAnalytics.id',
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// Item 6 (infra part): the host's body limit

describe('FUNCTIONS_REQUEST_BODY_SIZE_LIMIT', () => {
  test("is 5.5 MiB in the app settings: just above the webhooks' 5 MiB, far below the host's 100 MB", () => {
    const settings = resource(api, 'site').body;
    const appSettings = declarations(settings, 'resource').find((r) => r.symbol === 'settings') as Declared;
    expect(appSettings.type).toBe('config');
    expect(str(prop(appSettings.body, 'name'))).toBe('appsettings');
    const union = prop(appSettings.body, 'properties');
    const platform = union.slice(union.indexOf('{'), skipGroup(union, union.indexOf('{')));
    const limit = Number(str(prop(platform, 'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT')));
    expect(limit).toBe(5_767_168);
    expect(limit).toBe(5.5 * 1024 * 1024);
    expect(limit).toBeGreaterThan(MAX_BODY_BYTES);
    expect(limit).toBeLessThanOrEqual(MAX_BODY_BYTES * 1.25);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Item 11: the webhook secret is generated once

describe('the webhook secret in the templates', () => {
  test('is written only when the hook found none; the default never writes', () => {
    const [secret, ...others] = resourcesOfType(keyvault, 'Microsoft.KeyVault/vaults/secrets');
    // The other secret is the CRM events' one (issue 19), generated once the same way (tested below).
    expect(others.map((o) => (o as Declared).condition)).toEqual(['createEventsSecret']);
    expect((secret as Declared).condition).toBe('createWebhookSecret');
    expect(param(keyvault, 'createWebhookSecret')).toEqual({ type: 'bool', default: undefined });
    expect(prop((secret as Declared).body, 'name')).toBe('webhookSecretName');
    expect(variable(keyvault, 'webhookSecretName')).toBe(`'${WEBHOOK_SECRET_NAME}'`);

    expect(prop(module(main, 'keyVault').body, 'params.createWebhookSecret')).toBe('!crmWebhookSecretExists');
    expect(param(main, 'crmWebhookSecretExists')).toEqual({ type: 'bool', default: 'true' });
    expect(parameters.crmWebhookSecretExists?.value).toBe('${CRM_WEBHOOK_SECRET_EXISTS=true}');
  });

  test('is never read back into a deployment, and the app follows it whether or not this deployment wrote it', () => {
    // No parameter carries the current value: azd's random text has no vault or secret to read.
    for (const [name, { value }] of Object.entries(parameters)) {
      expect(value, name).not.toMatch(/secretOrRandomPassword\s+\S/);
      expect(value, name).not.toMatch(/KEY_VAULT_NAME|crm-webhook-secret/);
    }
    expect(parameters.crmWebhookSecretSeed?.value).toBe('$(secretOrRandomPassword)');
    expect(main).not.toMatch(/^\s*param\s+crmWebhookSecret\s/m);
    // The output the Key Vault reference uses is built from names, not from the (conditional) secret resource.
    const uri = /^output webhookSecretUri string = (.+)$/m.exec(keyvault)?.[1];
    expect(uri).toBe("'${vault.properties.vaultUri}secrets/${webhookSecretName}/'");
    expect(prop(module(main, 'api').body, 'params.appSettings.CRM_WEBHOOK_SECRET')).toBe(
      "'@Microsoft.KeyVault(SecretUri=${keyVault.outputs.webhookSecretUri})'",
    );
  });

  test('is fresh random text in whsec_ form when it is created', () => {
    expect(param(keyvault, 'crmWebhookSecretEntropy')).toEqual({ type: 'string', default: 'newGuid()' });
    expect(
      prop(
        (resourcesOfType(keyvault, 'Microsoft.KeyVault/vaults/secrets')[0] as Declared).body,
        'properties.value',
      ),
    ).toBe('newWebhookSecretValue');
    expect(variable(keyvault, 'newWebhookSecretValue')).toBe(
      "'whsec_${base64(take('${replace(crmWebhookSecretEntropy, '-', '')}${crmWebhookSecretSeed}', 64))}'",
    );
    // newGuid() appears nowhere else: no name, no other value changes from one deployment to the next.
    for (const [name, src] of allBicep) {
      const uses = src.match(/newGuid\(\)|utcNow\(/g) ?? [];
      // One per generated secret: the webhook's and the events' (issue 19).
      expect(uses.length, `${name}.bicep`).toBe(name === 'keyvault' ? 2 : 0);
    }
  });

  test('the CRM events secret (issue 19): generated once the same way, a Key Vault reference in the app', () => {
    const events = resourcesOfType(keyvault, 'Microsoft.KeyVault/vaults/secrets')[1] as Declared;
    expect(events.condition).toBe('createEventsSecret');
    expect(prop(events.body, 'name')).toBe('eventsSecretName');
    expect(variable(keyvault, 'eventsSecretName')).toBe(`'${EVENTS_SECRET_NAME}'`);
    expect(prop(events.body, 'properties.value')).toBe('newEventsSecretValue');
    expect(variable(keyvault, 'newEventsSecretValue')).toBe(
      "'whsec_${base64(take('${replace(crmEventsSecretEntropy, '-', '')}${crmEventsSecretSeed}', 64))}'",
    );
    expect(param(keyvault, 'crmEventsSecretEntropy')).toEqual({ type: 'string', default: 'newGuid()' });
    expect(prop(module(main, 'keyVault').body, 'params.createEventsSecret')).toBe('!crmEventsSecretExists');
    expect(param(main, 'crmEventsSecretExists')).toEqual({ type: 'bool', default: 'true' });
    expect(parameters.crmEventsSecretExists?.value).toBe('${CRM_EVENTS_SECRET_EXISTS=true}');
    expect(parameters.crmEventsSecretSeed?.value).toBe('$(secretOrRandomPassword)');
    expect(/^output eventsSecretUri string = (.+)$/m.exec(keyvault)?.[1]).toBe(
      "'${vault.properties.vaultUri}secrets/${eventsSecretName}/'",
    );
    const settings = (name: string) => prop(module(main, 'api').body, `params.appSettings.${name}`);
    expect(settings('CRM_EVENTS_SECRET')).toBe(
      "'@Microsoft.KeyVault(SecretUri=${keyVault.outputs.eventsSecretUri})'",
    );
    expect(settings('CRM_EVENTS_URL')).toBe('crmEventsUrl');
    expect(settings('CRM_EVENTS_PER_SECOND')).toBe('string(crmEventsPerSecond)');
    expect(parameters.crmEventsUrl?.value).toBe('${CRM_EVENTS_URL}');
  });

  test('lives in the vault the template names from the environment', () => {
    expect(str(prop(module(main, 'keyVault').body, 'params.name'))).toBe(
      '${abbrs.keyVaultVaults}${resourceToken}',
    );
    expect(variable(main, 'resourceToken')).toBe(
      'toLower(uniqueString(subscription().id, environmentName, location))',
    );
    expect(str(prop(resource(main, 'rg').body, 'name'))).toBe(
      '${abbrs.resourcesResourceGroups}${environmentName}',
    );
    expect(prop(resource(keyvault, 'vault').body, 'name')).toBe('name');
  });

  test('azd runs the hook before and after provisioning, on every platform', () => {
    const yaml = read('azure.yaml');
    const hooks = yaml.slice(yaml.search(/^hooks:/m));
    for (const stage of ['preprovision', 'postprovision']) {
      const block = new RegExp(`^  ${stage}:\\n((?:    .*\\n)+)`, 'm').exec(hooks)?.[1] ?? '';
      for (const platform of ['posix', 'windows']) {
        expect(block, `${stage} ${platform}`).toMatch(
          new RegExp(
            `^    ${platform}:\\n(?:      .*\\n)*?      run: node infra/hooks/provision\\.mjs ${stage}$`,
            'm',
          ),
        );
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Item 11: the hook, against a fake Azure Resource Manager

type Route = (method: string, url: URL) => { status: number; body?: unknown } | undefined;

interface FakeArm {
  arm: Arm;
  requests: { method: string; path: string; auth: string | undefined }[];
  route: (handler: Route) => void;
}

const SUB = '00000000-0000-0000-0000-0000000000aa';
const ENV = 'fpx-prod';
const RG = `/subscriptions/${SUB}/resourceGroups/rg-${ENV}`;
const VAULTS = `${RG}/providers/Microsoft.KeyVault/vaults`;
const DELETED = `/subscriptions/${SUB}/providers/Microsoft.KeyVault/deletedVaults`;

const vault = (name: string, location = 'westeurope', retention?: number) => ({
  id: `${VAULTS}/${name}`,
  name,
  location,
  tags: { 'azd-env-name': ENV },
  properties: retention === undefined ? {} : { softDeleteRetentionInDays: retention },
});

describe('the preprovision hook', () => {
  let server: Server;
  let fake: FakeArm;
  let handler: Route = () => undefined;
  let endpoint = '';

  beforeAll(async () => {
    const requests: FakeArm['requests'] = [];
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://arm.test');
      requests.push({
        method: req.method ?? '',
        path: url.pathname + url.search,
        auth: req.headers.authorization,
      });
      const answer = handler(req.method ?? '', url) ?? {
        status: 404,
        body: { error: { code: 'NotFound', message: 'nothing here' } },
      };
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    fake = {
      arm: armClient({ token: async () => 'test-token', endpoint }),
      requests,
      route: (h) => {
        handler = h;
        requests.length = 0;
      },
    };
  });

  afterAll(() => new Promise<void>((done) => server.close(() => done())));

  const env = (extra: Record<string, string> = {}) => ({
    AZURE_ENV_NAME: ENV,
    AZURE_SUBSCRIPTION_ID: SUB,
    AZURE_LOCATION: 'westeurope',
    ...extra,
  });

  async function run(extra: Record<string, string> = {}, lookupIp = async () => '203.0.113.7') {
    const set: Record<string, string> = {};
    const values = await preprovision(env(extra), {
      arm: fake.arm,
      lookupIp,
      setEnv: (k, v) => (set[k] = v),
    });
    expect(set).toEqual(values);
    return set;
  }

  const listVaults =
    (vaults: unknown[]): Route =>
    (method, url) =>
      method === 'GET' && url.pathname === VAULTS ? { status: 200, body: { value: vaults } } : undefined;

  test('an existing secret is kept: CRM_WEBHOOK_SECRET_EXISTS=true, and nothing is written to Azure', async () => {
    fake.route((method, url) => {
      if (url.pathname === `${VAULTS}/kv-abc123/secrets/${WEBHOOK_SECRET_NAME}`) {
        return {
          status: 200,
          body: { name: WEBHOOK_SECRET_NAME, properties: { attributes: { enabled: true } } },
        };
      }
      return listVaults([vault('kv-abc123', 'West Europe', 7)])(method, url);
    });
    expect(await run()).toEqual({
      CRM_WEBHOOK_SECRET_EXISTS: 'true',
      CRM_EVENTS_SECRET_EXISTS: 'false',
      KEY_VAULT_SOFT_DELETE_RETENTION_DAYS: '7',
      NETWORK_ALLOWED_IP_ADDRESSES: '',
    });
    expect(fake.requests.every((r) => r.method === 'GET' && r.auth === 'Bearer test-token')).toBe(true);
    expect(fake.requests.map((r) => r.path.split('?')[0])).toEqual([
      VAULTS,
      `${VAULTS}/kv-abc123/secrets/${WEBHOOK_SECRET_NAME}`,
      `${VAULTS}/kv-abc123/secrets/${EVENTS_SECRET_NAME}`,
    ]);
  });

  test('a vault without the secret gets one: CRM_WEBHOOK_SECRET_EXISTS=false', async () => {
    fake.route(listVaults([vault('kv-abc123', 'westeurope', 90)]));
    expect(await run()).toMatchObject({
      CRM_WEBHOOK_SECRET_EXISTS: 'false',
      KEY_VAULT_SOFT_DELETE_RETENTION_DAYS: '90',
    });
  });

  test('a fresh environment (no resource group, no deleted vault) gets a new vault with 90 days and a new secret', async () => {
    fake.route((_method, url) =>
      url.pathname === DELETED ? { status: 200, body: { value: [] } } : undefined,
    );
    expect(await run()).toMatchObject({
      CRM_WEBHOOK_SECRET_EXISTS: 'false',
      KEY_VAULT_SOFT_DELETE_RETENTION_DAYS: '90',
    });
  });

  test("finds the vault on a later page and ignores other regions' vaults", async () => {
    fake.route((_method, url) => {
      if (url.pathname === VAULTS && url.searchParams.get('page') === '2') {
        return { status: 200, body: { value: [vault('kv-here', 'westeurope', 30)] } };
      }
      if (url.pathname === VAULTS) {
        return {
          status: 200,
          body: {
            value: [vault('kv-there', 'northeurope')],
            nextLink: `${endpoint}${VAULTS}?api-version=x&page=2`,
          },
        };
      }
      if (url.pathname === `${VAULTS}/kv-here/secrets/${WEBHOOK_SECRET_NAME}`)
        return { status: 200, body: {} };
      return undefined;
    });
    expect(await run()).toMatchObject({
      CRM_WEBHOOK_SECRET_EXISTS: 'true',
      KEY_VAULT_SOFT_DELETE_RETENTION_DAYS: '30',
    });
  });

  test('stops, setting nothing, when Resource Manager does not say clearly whether the secret exists', async () => {
    for (const status of [403, 500]) {
      fake.route((method, url) =>
        url.pathname.endsWith(`/secrets/${WEBHOOK_SECRET_NAME}`)
          ? { status, body: { error: { message: 'no' } } }
          : listVaults([vault('kv-abc123')])(method, url),
      );
      const set: string[] = [];
      await expect(preprovision(env(), { arm: fake.arm, setEnv: (k) => set.push(k) })).rejects.toThrow(
        new RegExp(`answered ${status}`),
      );
      expect(set).toEqual([]);
    }
    fake.route((_method, url) => (url.pathname === VAULTS ? { status: 429, body: {} } : undefined));
    await expect(run()).rejects.toBeInstanceOf(HookError);
  });

  test('stops when the resource group holds two candidate vaults', async () => {
    fake.route(listVaults([vault('kv-one'), vault('kv-two')]));
    await expect(run()).rejects.toThrow(/several vaults/);
  });

  test("stops with recovery steps when the environment's vault was deleted (purge protection keeps it)", async () => {
    fake.route((method, url) =>
      url.pathname === DELETED
        ? {
            status: 200,
            body: {
              value: [
                {
                  name: 'kv-other',
                  properties: {
                    location: 'westeurope',
                    vaultId: `/subscriptions/${SUB}/resourceGroups/rg-other/providers/Microsoft.KeyVault/vaults/kv-other`,
                  },
                },
                {
                  name: 'kv-abc123',
                  properties: {
                    location: 'westeurope',
                    vaultId: `${VAULTS}/kv-abc123`,
                    scheduledPurgeDate: '2026-09-01T00:00:00Z',
                  },
                },
              ],
            },
          }
        : listVaults([])(method, url),
    );
    await expect(run()).rejects.toThrow(/az keyvault recover --name kv-abc123 --resource-group rg-fpx-prod/);
  });

  test('needs the subscription and location azd chooses', async () => {
    await expect(
      preprovision(
        { AZURE_ENV_NAME: ENV, AZURE_LOCATION: 'westeurope' },
        { arm: fake.arm, setEnv: () => {} },
      ),
    ).rejects.toThrow(/AZURE_SUBSCRIPTION_ID is not set/);
  });

  test("with RESTRICT_NETWORK=true passes the listed addresses, or else this machine's", async () => {
    fake.route(listVaults([vault('kv-abc123', 'westeurope', 90)]));
    expect(
      await run({
        RESTRICT_NETWORK: 'true',
        ALLOWED_IP_ADDRESSES: '198.51.100.4, 203.0.113.0/24 192.0.2.9/32',
      }),
    ).toMatchObject({
      NETWORK_ALLOWED_IP_ADDRESSES: '198.51.100.4,203.0.113.0/24,192.0.2.9',
    });
    expect(await run({ RESTRICT_NETWORK: 'TRUE' }, async () => '198.51.100.77')).toMatchObject({
      NETWORK_ALLOWED_IP_ADDRESSES: '198.51.100.77',
    });
    expect(await run({ RESTRICT_NETWORK: 'false', ALLOWED_IP_ADDRESSES: '198.51.100.4' })).toMatchObject({
      NETWORK_ALLOWED_IP_ADDRESSES: '',
    });
    await expect(run({ RESTRICT_NETWORK: 'yes' })).rejects.toThrow(/RESTRICT_NETWORK must be true or false/);
    await expect(run({ RESTRICT_NETWORK: 'true', ALLOWED_IP_ADDRESSES: '10.1.2.3' })).rejects.toThrow(
      /private/,
    );
  });

  test('address rules are what Storage and Key Vault accept', () => {
    expect(ipRule('203.0.113.5')).toBe('203.0.113.5');
    expect(ipRule('203.0.113.5/32')).toBe('203.0.113.5');
    expect(ipRule('203.0.112.0/22')).toBe('203.0.112.0/22');
    for (const bad of [
      '203.0.113.5/31',
      '300.1.1.1',
      'example.com',
      '2001:db8::1',
      '192.168.1.1',
      '172.20.0.1/16',
    ]) {
      expect(() => ipRule(bad), bad).toThrow(HookError);
    }
  });

  test('inspectVault reports the vault it asked about', async () => {
    fake.route(listVaults([vault('kv-abc123', 'westeurope', 90)]));
    expect(
      await inspectVault(fake.arm, { subscriptionId: SUB, environmentName: ENV, location: 'westeurope' }),
    ).toEqual({
      vaultName: 'kv-abc123',
      vaultExists: true,
      secretExists: false,
      eventsSecretExists: false,
      softDeleteRetentionInDays: 90,
    });
  });

  describe('postprovision', () => {
    const ACS = `${RG}/providers/Microsoft.Communication/communicationServices/acs-abc123`;
    const APP = '11111111-1111-1111-1111-111111111111';
    const assignment = (id: string, principalId: string, role: string, scope = ACS) => ({
      id: `${scope}/providers/Microsoft.Authorization/roleAssignments/${id}`,
      properties: {
        principalId,
        scope,
        roleDefinitionId: `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${role}`,
      },
    });

    test("removes the app's Contributor assignment on the Communication Services resource, and nothing else", async () => {
      const deleted: string[] = [];
      fake.route((method, url) => {
        if (method === 'GET' && url.pathname === `${ACS}/providers/Microsoft.Authorization/roleAssignments`) {
          expect(url.searchParams.get('$filter')).toBe(`principalId eq '${APP}'`);
          return {
            status: 200,
            body: {
              value: [
                assignment('a1', APP, 'b24988ac-6180-42a0-ab88-20f7382dd24c'),
                assignment('a2', APP, '9c0b8d4e-5a1f-4a54-8f4c-77f0ad3c9d01'),
                assignment('a3', APP, 'b24988ac-6180-42a0-ab88-20f7382dd24c', RG),
                assignment(
                  'a4',
                  '22222222-2222-2222-2222-222222222222',
                  'b24988ac-6180-42a0-ab88-20f7382dd24c',
                ),
              ],
            },
          };
        }
        if (method === 'DELETE') {
          deleted.push(url.pathname);
          return { status: 200, body: {} };
        }
        return undefined;
      });
      const removed = await postprovision(
        { AZURE_APP_IDENTITY_PRINCIPAL_ID: APP, AZURE_COMMUNICATION_SERVICE_ID: ACS },
        { arm: fake.arm },
      );
      expect(removed).toEqual([`${ACS}/providers/Microsoft.Authorization/roleAssignments/a1`]);
      expect(deleted).toEqual(removed);
    });

    test('does nothing without email alerts', async () => {
      fake.route(() => undefined);
      expect(
        await postprovision(
          { AZURE_APP_IDENTITY_PRINCIPAL_ID: APP, AZURE_COMMUNICATION_SERVICE_ID: '' },
          { arm: fake.arm },
        ),
      ).toEqual([]);
      expect(fake.requests).toEqual([]);
    });

    test('reports a removal it could not make', async () => {
      fake.route((method, url) =>
        method === 'GET' && url.pathname.endsWith('/roleAssignments')
          ? { status: 200, body: { value: [assignment('a1', APP, 'b24988ac-6180-42a0-ab88-20f7382dd24c')] } }
          : method === 'DELETE'
            ? { status: 403, body: { error: { message: 'AuthorizationFailed' } } }
            : undefined,
      );
      await expect(
        postprovision(
          { AZURE_APP_IDENTITY_PRINCIPAL_ID: APP, AZURE_COMMUNICATION_SERVICE_ID: ACS },
          { arm: fake.arm },
        ),
      ).rejects.toThrow(/az role assignment delete --ids .*a1.*403.*AuthorizationFailed/s);
    });
  });
});

// ---------------------------------------------------------------------------------------------------------
// Dynamics 365 (#18): the DATAVERSE_* settings

describe('the Dataverse settings', () => {
  test('are set from azd parameters with the contract defaults; the key only as a Key Vault reference', () => {
    const settings = (name: string) => prop(module(main, 'api').body, `params.appSettings.${name}`);
    expect(settings('DATAVERSE_URL')).toBe('dataverseUrl');
    expect(settings('DATAVERSE_TENANT_ID_COLUMN')).toBe('dataverseTenantIdColumn');
    expect(settings('DATAVERSE_NOTE_CATEGORY_ID')).toBe('string(dataverseNoteCategoryId)');
    expect(settings('DATAVERSE_CONTACT_DEFAULTS')).toBe('dataverseContactDefaults');
    expect(settings('DATAVERSE_WEBHOOK_KEY')).toBe(
      "dataverseWebhookKeyInVault ? '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${dataverseWebhookKeySecretName}/)' : ''",
    );
    expect(param(main, 'dataverseUrl')).toEqual({ type: 'string', default: "''" });
    expect(param(main, 'dataverseTenantIdColumn')).toEqual({ type: 'string', default: "'fpx_tenantid'" });
    expect(param(main, 'dataverseNoteCategoryId')).toEqual({ type: 'int', default: '1' });
    expect(param(main, 'dataverseWebhookKeyInVault')).toEqual({ type: 'bool', default: 'false' });
    expect(parameters.dataverseUrl?.value).toBe('${DATAVERSE_URL}');
    expect(parameters.dataverseTenantIdColumn?.value).toBe('${DATAVERSE_TENANT_ID_COLUMN=fpx_tenantid}');
  });
});

// ---------------------------------------------------------------------------------------------------------
// Issue 17: alert rules and the workbook on what lib/telemetry exports

describe('alert rules and the workbook (issue 17)', () => {
  const alertsFile = 'infra/app/monitoring-alerts.bicep';
  const alerts = bicep(alertsFile);
  const telemetrySource = read('lib/telemetry/index.ts');

  /** A `var name = '''…'''` query's text. */
  const query = (name: string) => {
    const m = new RegExp(`^\\s*var\\s+${name}\\s*=\\s*'''([\\s\\S]*?)'''`, 'm').exec(alerts);
    expect(m, `var ${name} (a ''' string)`).not.toBeNull();
    return ((m as RegExpExecArray)[1] as string).trim();
  };
  const rules = new Map(
    items(variable(alerts, 'rules')).map((rule) => {
      const fields = entries(rule);
      return [str(fields.get('name') as string), fields] as const;
    }),
  );
  /** A rule's threshold: a literal, or a parameter's default. */
  const threshold = (fields: Map<string, string>) => {
    const value = fields.get('threshold') as string;
    return Number(/^\d+$/.test(value) ? value : param(alerts, value).default);
  };
  /** The metric names a query reads must be names lib/telemetry exports. */
  const exported = (metric: string) => expect(telemetrySource).toContain(`'${metric}'`);

  test('there are the five rules the issue asks for, on Application Insights, mailing ALERT_EMAIL_TO', () => {
    expect([...rules.keys()].sort()).toEqual([
      'certificate-expiring',
      'fpx-throttled',
      'function-failures',
      'poison-queue',
      'sync-failing',
    ]);
    expect(alerts).toMatch(
      /resource alertRules 'Microsoft\.Insights\/scheduledQueryRules@[\d-]+' = \[\s*for rule in rules:/,
    );
    expect(alerts).toMatch(/scopes: \[applicationInsights\.id\]/);
    expect(alerts).toMatch(/actions: actions/);
    expect(variable(alerts, 'actions')).toBe('empty(recipients) ? {} : { actionGroups: [actionGroup.id] }');
    expect(variable(alerts, 'recipients')).toContain("split(alertEmailTo, ',')");
    expect(alerts).toMatch(/emailReceivers: \[\s*for \(address, i\) in recipients:/);
    const wired = module(main, 'monitoringAlerts');
    expect(prop(wired.body, 'params.alertEmailTo')).toBe('alertEmailTo');
    expect(prop(wired.body, 'params.applicationInsightsName')).toBe(
      'monitoring.outputs.applicationInsightsName',
    );
  });

  test('a stream failing three runs in a row: its last three sync spans all failed', () => {
    const rule = rules.get('sync-failing') as Map<string, string>;
    expect(rule.get('query')).toBe('syncFailingQuery');
    const text = query('syncFailingQuery');
    expect(text).toMatch(/^dependencies\b/);
    expect(text).toContain('top 3 by timestamp desc');
    expect(text).toContain('runs == 3 and failed == 3');
    expect(text).toContain('perTenant != "true"');
    expect([rule.get('aggregation'), rule.get('operator'), threshold(rule)]).toEqual([
      "'Count'",
      "'GreaterThan'",
      0,
    ]);
    expect(telemetrySource).toContain("'sync.status'");
  });

  test('any message in a poison queue', () => {
    const rule = rules.get('poison-queue') as Map<string, string>;
    const text = query(rule.get('query') as string);
    expect(text).toContain('name == "queue.depth"');
    expect(text).toContain('customDimensions["queue.poison"]) == "true"');
    exported('queue.depth');
    expect([rule.get('measure'), rule.get('aggregation'), rule.get('operator'), threshold(rule)]).toEqual([
      "'depth'",
      "'Maximum'",
      "'GreaterThan'",
      0,
    ]);
  });

  test('certificate days left under 14', () => {
    const rule = rules.get('certificate-expiring') as Map<string, string>;
    expect(query(rule.get('query') as string)).toContain('name == "certificate.days_left"');
    exported('certificate.days_left');
    expect([rule.get('measure'), rule.get('aggregation'), rule.get('operator')]).toEqual([
      "'daysLeft'",
      "'Minimum'",
      "'LessThan'",
    ]);
    expect(threshold(rule)).toBe(14);
  });

  test("FPX 429s above a threshold; the Function App's failure rate", () => {
    const throttled = rules.get('fpx-throttled') as Map<string, string>;
    expect(query(throttled.get('query') as string)).toContain('name == "fpx.throttled"');
    exported('fpx.throttled');
    expect([throttled.get('measure'), throttled.get('aggregation'), throttled.get('operator')]).toEqual([
      "'throttled'",
      "'Total'",
      "'GreaterThan'",
    ]);
    expect(threshold(throttled)).toBe(20);

    const failures = rules.get('function-failures') as Map<string, string>;
    const text = query(failures.get('query') as string);
    expect(text).toMatch(/^requests\b/);
    expect(text).toContain('failurePercent = 100.0 * failed / total');
    expect([failures.get('measure'), failures.get('operator')]).toEqual([
      "'failurePercent'",
      "'GreaterThan'",
    ]);
    expect(threshold(failures)).toBe(10);
  });

  test('the workbook charts FPX calls, 429s, syncs, rows, deliveries, queues, the certificate and failures', () => {
    expect(alerts).toMatch(/resource workbook 'Microsoft\.Insights\/workbooks@[\d-]+' = \{/);
    const charts = items(variable(alerts, 'charts')).map((chart) => {
      const fields = entries(chart);
      return { title: str(fields.get('title') as string), query: str(fields.get('query') as string) };
    });
    for (const metric of [
      'fpx.calls',
      'fpx.throttled',
      'fpx.rate_wait',
      'sync.runs',
      'sync.rows',
      'crm.deliveries',
      'queue.depth',
      'certificate.days_left',
    ]) {
      expect(
        charts.some((c) => c.query.includes(`"${metric}"`)),
        `a chart of ${metric}`,
      ).toBe(true);
      exported(metric);
    }
    expect(charts.some((c) => c.query.startsWith('requests'))).toBe(true);
  });
});
