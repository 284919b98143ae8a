// azd hooks of this template (azure.yaml): `node infra/hooks/provision.mjs preprovision|postprovision`.
// Plain Node.js (20 or later) and no npm packages, so it runs before `npm install`; it talks to Azure Resource
// Manager (control plane only) with the token of whoever is signed in to azd (`azd auth token`).
//
// preprovision tells the Bicep what a template cannot find out by itself, through azd environment values that
// infra/main.parameters.json passes on:
//   CRM_WEBHOOK_SECRET_EXISTS     whether the environment's vault already holds crm-webhook-secret. The secret
//                                 is generated once: Bicep writes it only when this is false, so provisioning
//                                 again, from any machine or a fresh azd environment, never replaces it. Only
//                                 the secret's metadata is read, never its value. Anything unexpected stops
//                                 provisioning instead of guessing "absent".
//   CRM_EVENTS_SECRET_EXISTS      the same for crm-events-secret, the secret CRM events are signed with.
//   KEY_VAULT_SOFT_DELETE_RETENTION_DAYS  90 for a new vault; an existing vault's own value otherwise (Azure
//                                 refuses to change it after creation).
//   NETWORK_ALLOWED_IP_ADDRESSES  with RESTRICT_NETWORK=true: ALLOWED_IP_ADDRESSES, or else this machine's
//                                 public IPv4 address, admitted to Storage and Key Vault next to the app.
// postprovision removes the Contributor role assignment that earlier versions of this template gave the app's
// identity on the Communication Services resource (it now has a send-only custom role, infra/app/email.bicep).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEBHOOK_SECRET_NAME = 'crm-webhook-secret';
export const EVENTS_SECRET_NAME = 'crm-events-secret';
export const NEW_VAULT_RETENTION_DAYS = 90;
const KEY_VAULT_API = '2023-07-01';
const AUTHORIZATION_API = '2022-04-01';
const CONTRIBUTOR_ROLE_ID = 'b24988ac-6180-42a0-ab88-20f7382dd24c';
const ARM_ENDPOINT = 'https://management.azure.com';

// The names main.bicep gives: resource group `rg-<environment>`, vault `kv-<resourceToken>`.
const abbrs = JSON.parse(readFileSync(new URL('../abbreviations.json', import.meta.url), 'utf8'));

/** A failure the hook explains itself; azd stops provisioning on it. */
export class HookError extends Error {}

/** Azure Resource Manager over fetch. `token` returns a bearer token for it. */
export function armClient({ token, endpoint = ARM_ENDPOINT, fetchImpl = fetch }) {
  async function request(method, path) {
    const url = /^https?:\/\//.test(path) ? path : `${endpoint}${path}`;
    const response = await fetchImpl(url, {
      method,
      headers: { authorization: `Bearer ${await token()}`, accept: 'application/json' },
      signal: AbortSignal.timeout(60_000),
    });
    const text = await response.text();
    let body;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    return { status: response.status, body };
  }
  return {
    get: (path) => request('GET', path),
    delete: (path) => request('DELETE', path),
    /** Every item of a list, following nextLink; undefined when the parent (e.g. the resource group) is 404. */
    async list(path) {
      const items = [];
      for (let next = path; next; ) {
        const { status, body } = await request('GET', next);
        if (status === 404) return undefined;
        if (status !== 200) throw armError(`GET ${next}`, status, body);
        items.push(...(body?.value ?? []));
        next = body?.nextLink;
      }
      return items;
    },
  };
}

function armError(what, status, body) {
  const detail = body?.error?.message ?? (typeof body === 'string' ? body : JSON.stringify(body ?? ''));
  return new HookError(`${what} answered ${status}: ${detail}`.slice(0, 600));
}

const sameLocation = (a, b) =>
  String(a).replace(/\s/g, '').toLowerCase() === String(b).replace(/\s/g, '').toLowerCase();

/**
 * The environment's vault as Resource Manager knows it: whether it exists, whether it holds the webhook secret,
 * its soft-delete retention. Throws (never answers "no secret") when anything is unclear.
 */
export async function inspectVault(arm, { subscriptionId, environmentName, location }) {
  const resourceGroup = `${abbrs.resourcesResourceGroups}${environmentName}`;
  const ours = (vault) =>
    vault.name?.startsWith(abbrs.keyVaultVaults) && sameLocation(vault.location, location);

  const vaults = await arm.list(
    `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.KeyVault/vaults?api-version=${KEY_VAULT_API}`,
  );
  const live = (vaults ?? []).filter(ours);
  if (live.length > 1) {
    throw new HookError(
      `resource group ${resourceGroup} holds several vaults in ${location} (${live.map((v) => v.name).join(', ')}); expected the template's one`,
    );
  }
  if (live.length === 1) {
    const vault = live[0];
    const exists = async (name) => {
      const secret = await arm.get(`${vault.id}/secrets/${name}?api-version=${KEY_VAULT_API}`);
      if (secret.status !== 200 && secret.status !== 404) {
        throw armError(`GET ${vault.name}/secrets/${name}`, secret.status, secret.body);
      }
      return secret.status === 200;
    };
    return {
      vaultName: vault.name,
      vaultExists: true,
      secretExists: await exists(WEBHOOK_SECRET_NAME),
      eventsSecretExists: await exists(EVENTS_SECRET_NAME),
      softDeleteRetentionInDays: vault.properties?.softDeleteRetentionInDays ?? NEW_VAULT_RETENTION_DAYS,
    };
  }

  // No live vault. A deleted one of this environment (`azd down`) keeps its name, its secret and its
  // certificate for the retention period, and purge protection forbids purging it: recover it, do not replace it.
  const deleted = await arm.list(
    `/subscriptions/${subscriptionId}/providers/Microsoft.KeyVault/deletedVaults?api-version=${KEY_VAULT_API}`,
  );
  const rgPart = `/resourcegroups/${resourceGroup.toLowerCase()}/`;
  const mine = (deleted ?? []).filter(
    (v) =>
      ours({ name: v.name, location: v.properties?.location }) &&
      String(v.properties?.vaultId).toLowerCase().includes(rgPart),
  );
  if (mine.length > 0) {
    const name = mine[0].name;
    throw new HookError(
      `Key Vault ${name} of this environment was deleted and is kept until ${mine[0].properties?.scheduledPurgeDate} ` +
        '(purge protection). Recover it, with its webhook secret and certificate, then provision again:\n' +
        `  az group create --name ${resourceGroup} --location ${location}\n` +
        `  az keyvault recover --name ${name} --resource-group ${resourceGroup} --location ${location}`,
    );
  }
  return {
    vaultName: undefined,
    vaultExists: false,
    secretExists: false,
    eventsSecretExists: false,
    softDeleteRetentionInDays: NEW_VAULT_RETENTION_DAYS,
  };
}

/** "true"/"false" (any case) or unset; anything else is a mistake worth stopping for. */
export function parseBool(name, value, fallback) {
  if (value === undefined || value === '') return fallback;
  if (/^true$/i.test(value)) return true;
  if (/^false$/i.test(value)) return false;
  throw new HookError(`${name} must be true or false, not "${value}"`);
}

const privateRanges = [
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['127.0.0.0', 8],
];
const ipNumber = (ip) => ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
const inRange = (ip, [base, bits]) =>
  Math.floor(ipNumber(ip) / 2 ** (32 - bits)) === Math.floor(ipNumber(base) / 2 ** (32 - bits));

/**
 * An address as Storage and Key Vault network rules take it: a public IPv4 address or a range up to /30
 * (Storage takes no /31 or /32 ranges and no private addresses).
 */
export function ipRule(text) {
  const match = /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?$/.exec(text.trim());
  const [, ip, bits] = match ?? [];
  if (!ip || !isIPv4(ip) || (bits !== undefined && (Number(bits) > 32 || Number(bits) === 31))) {
    throw new HookError(`"${text}" is not a public IPv4 address or CIDR range (/0 to /30, or /32)`);
  }
  if (privateRanges.some((range) => inRange(ip, range))) {
    throw new HookError(`"${text}" is a private address: network rules admit public addresses only`);
  }
  return bits === undefined || bits === '32' ? ip : `${ip}/${bits}`;
}

/** This machine's public IPv4 address, as a public echo service sees it. */
export async function lookupPublicIp(fetchImpl = fetch) {
  try {
    const response = await fetchImpl('https://api.ipify.org', { signal: AbortSignal.timeout(10_000) });
    const ip = (await response.text()).trim();
    if (response.ok && isIPv4(ip)) return ip;
  } catch {
    // reported below
  }
  throw new HookError(
    "could not find this machine's public IPv4 address; set it yourself: azd env set ALLOWED_IP_ADDRESSES <address>",
  );
}

function required(env, name) {
  const value = env[name];
  if (!value) {
    throw new HookError(
      `${name} is not set yet. Run \`azd up\` (which asks for the subscription and location first) or ` +
        `\`azd env set ${name} <value>\` before \`azd provision\`.`,
    );
  }
  return value;
}

/** Decides the values main.parameters.json reads, and stores them in the azd environment. */
export async function preprovision(env, { arm, lookupIp = lookupPublicIp, setEnv, log = () => {} }) {
  const environmentName = required(env, 'AZURE_ENV_NAME');
  const subscriptionId = required(env, 'AZURE_SUBSCRIPTION_ID');
  const location = required(env, 'AZURE_LOCATION');
  const restrictNetwork = parseBool('RESTRICT_NETWORK', env.RESTRICT_NETWORK, false);

  const vault = await inspectVault(arm, { subscriptionId, environmentName, location });
  let allowedIps = [];
  if (restrictNetwork) {
    const listed = (env.ALLOWED_IP_ADDRESSES ?? '').split(/[\s,]+/).filter(Boolean);
    allowedIps = (listed.length > 0 ? listed : [await lookupIp()]).map(ipRule);
  }

  const values = {
    CRM_WEBHOOK_SECRET_EXISTS: String(vault.secretExists),
    CRM_EVENTS_SECRET_EXISTS: String(vault.eventsSecretExists),
    KEY_VAULT_SOFT_DELETE_RETENTION_DAYS: String(vault.softDeleteRetentionInDays),
    NETWORK_ALLOWED_IP_ADDRESSES: allowedIps.join(','),
  };
  for (const [name, value] of Object.entries(values)) setEnv(name, value);

  log(
    vault.vaultExists
      ? `Key Vault ${vault.vaultName}: ${WEBHOOK_SECRET_NAME} ${vault.secretExists ? 'exists and is kept as it is' : 'is missing and will be generated'}, ${EVENTS_SECRET_NAME} ${vault.eventsSecretExists ? 'exists' : 'will be generated'}; soft-delete retention ${vault.softDeleteRetentionInDays} days.`
      : `No Key Vault yet: it is created with ${WEBHOOK_SECRET_NAME} and ${EVENTS_SECRET_NAME} generated once.`,
  );
  log(
    restrictNetwork
      ? `restrictNetwork: Storage and Key Vault admit the app's subnet and ${allowedIps.join(', ')}.`
      : 'restrictNetwork is off: Storage and Key Vault accept all networks (identities still required).',
  );
  return values;
}

/** Removes Contributor assignments of the app's identity on the Communication Services resource. */
export async function postprovision(env, { arm, log = () => {} }) {
  const principalId = env.AZURE_APP_IDENTITY_PRINCIPAL_ID;
  const scope = env.AZURE_COMMUNICATION_SERVICE_ID;
  if (!principalId || !scope) return [];

  const filter = encodeURIComponent(`principalId eq '${principalId}'`);
  const assignments = await arm.list(
    `${scope}/providers/Microsoft.Authorization/roleAssignments?api-version=${AUTHORIZATION_API}&$filter=${filter}`,
  );
  const stale = (assignments ?? []).filter(
    (a) =>
      a.properties?.principalId === principalId &&
      String(a.properties?.scope).toLowerCase() === scope.toLowerCase() &&
      String(a.properties?.roleDefinitionId).toLowerCase().endsWith(`/${CONTRIBUTOR_ROLE_ID}`),
  );
  const removed = [];
  for (const assignment of stale) {
    const { status, body } = await arm.delete(`${assignment.id}?api-version=${AUTHORIZATION_API}`);
    if (status !== 200 && status !== 204 && status !== 404) {
      throw armError(
        `removing the email sender's Contributor assignment (az role assignment delete --ids ${assignment.id})`,
        status,
        body,
      );
    }
    removed.push(assignment.id);
    log(
      `Removed the Contributor assignment of the app's identity on ${scope}: it sends with the send-only role.`,
    );
  }
  return removed;
}

function azdToken(env) {
  let cached;
  return async () => {
    if (cached && cached.expiresAt - Date.now() > 120_000) return cached.token;
    const args = ['auth', 'token', '--output', 'json', '--no-prompt', '--scope', `${ARM_ENDPOINT}/.default`];
    if (env.AZURE_TENANT_ID) args.push('--tenant-id', env.AZURE_TENANT_ID);
    let out;
    try {
      out = JSON.parse(execFileSync('azd', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
    } catch (error) {
      throw new HookError(
        `azd auth token failed (is azd signed in? azd auth login): ${error.stderr || error.message}`,
      );
    }
    cached = { token: out.token, expiresAt: new Date(out.expiresOn).getTime() || Date.now() + 300_000 };
    return cached.token;
  };
}

function azdEnvSet(env) {
  return (name, value) => {
    execFileSync('azd', ['env', 'set', name, value, '--environment', env.AZURE_ENV_NAME], {
      stdio: 'inherit',
    });
  };
}

async function main(stage, env) {
  const arm = armClient({ token: azdToken(env) });
  if (stage === 'preprovision') {
    await preprovision(env, { arm, setEnv: azdEnvSet(env), log: console.log });
  } else if (stage === 'postprovision') {
    await postprovision(env, { arm, log: console.log });
  } else {
    throw new HookError('usage: node infra/hooks/provision.mjs preprovision|postprovision');
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv[2], process.env).catch((error) => {
    console.error(`provision hook: ${error instanceof HookError ? error.message : error?.stack || error}`);
    process.exit(1);
  });
}
