// Key Vault with RBAC authorization: the FPX client certificate (imported by the operator after provisioning)
// and the CRM webhook secret, which the app reads through a Key Vault reference.
param name string
param location string
param tags object = {}

@minValue(7)
@maxValue(90)
@description('Days a deleted vault, secret or certificate stays recoverable. Azure fixes the value when the vault is created, so the preprovision hook passes an existing vault\'s own value back; new vaults get 90.')
param softDeleteRetentionInDays int = 90

@description('Deny every network but the app\'s subnet and allowedIpAddresses (main.bicep restrictNetwork).')
param restrictNetwork bool = false

@description('The Function App\'s integration subnet (network.bicep); used when restrictNetwork is on.')
param allowedSubnetId string = ''

@description('Public IPv4 addresses or CIDR ranges also let in when restrictNetwork is on (the deployer).')
param allowedIpAddresses array = []

@description('Log Analytics workspace that receives the vault\'s audit events.')
param logAnalyticsWorkspaceId string

// The CRM webhook secret is generated once, here, and never written again. A template cannot see whether a
// secret exists, so the preprovision hook (infra/hooks/provision.mjs) asks Azure Resource Manager for the
// secret's metadata in this vault (the vault's name is the template's own `kv-<resourceToken>`, found in the
// environment's resource group; the value is never read) and passes what it found as createWebhookSecret.
// Only a vault without the secret gets one; an existing secret (rotations included) is left as it is, whatever
// azd environment or machine provisions. Without the hook's answer main.bicep's default is "exists": no write.
// The value of a new secret comes from two random sources and is never passed back into a deployment.
@description('True only when the vault has no crm-webhook-secret yet (decided by the preprovision hook).')
param createWebhookSecret bool

@secure()
@description('Random text from azd ($(secretOrRandomPassword), a fresh value each time): half of a new secret\'s randomness.')
param crmWebhookSecretSeed string = ''

@secure()
@description('Leave unset: a new GUID per deployment, the other half of a new secret\'s randomness.')
param crmWebhookSecretEntropy string = newGuid()

@description('True only when the vault has no crm-events-secret yet (decided by the preprovision hook, as for the webhook secret).')
param createEventsSecret bool = false

@secure()
@description('Random text from azd, as crmWebhookSecretSeed: half of a new events secret\'s randomness.')
param crmEventsSecretSeed string = ''

@secure()
@description('Leave unset: a new GUID per deployment, the other half of a new events secret\'s randomness.')
param crmEventsSecretEntropy string = newGuid()

var webhookSecretName = 'crm-webhook-secret'
// The secret CRM events are signed with (CRM_EVENTS_SECRET), made the same way and also only once.
var eventsSecretName = 'crm-events-secret'
var newEventsSecretValue = 'whsec_${base64(take('${replace(crmEventsSecretEntropy, '-', '')}${crmEventsSecretSeed}', 64))}'
// Standard Webhooks wants "whsec_" + base64 of 24 to 64 bytes: 32 random hex digits and azd's random text.
var newWebhookSecretValue = 'whsec_${base64(take('${replace(crmWebhookSecretEntropy, '-', '')}${crmWebhookSecretSeed}', 64))}'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    // Nobody, not even an owner, can purge the vault or a secret before the retention period ends (a deleted
    // webhook secret or certificate can always be recovered). Once on, Azure does not let it be turned off.
    enablePurgeProtection: true
    // "Enabled from selected networks" when restricted: the rules below decide who gets in.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: restrictNetwork ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
      virtualNetworkRules: restrictNetwork ? [{ id: allowedSubnetId, ignoreMissingVnetServiceEndpoint: false }] : []
      ipRules: restrictNetwork ? map(allowedIpAddresses, ip => { value: ip }) : []
    }
  }
}

resource webhookSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (createWebhookSecret) {
  parent: vault
  name: webhookSecretName
  properties: {
    value: newWebhookSecretValue
    contentType: 'Standard Webhooks secret(s) whsec_…, space separated during rotation'
  }
}

resource eventsSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (createEventsSecret) {
  parent: vault
  name: eventsSecretName
  properties: {
    value: newEventsSecretValue
    contentType: 'Standard Webhooks secret(s) whsec_… CRM events are signed with, space separated during rotation'
  }
}

// Every data-plane access (who read or changed which secret or certificate, from where, with what outcome)
// into the workspace behind Application Insights: table AzureDiagnostics, Category == "AuditEvent".
resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [{ category: 'AuditEvent', enabled: true }]
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
output webhookSecretName string = webhookSecretName
// Without a version: the app follows the latest version of the secret. Built from the name, not from the
// secret resource, which is only part of the deployment that creates the secret.
output webhookSecretUri string = '${vault.properties.vaultUri}secrets/${webhookSecretName}/'
output eventsSecretName string = eventsSecretName
output eventsSecretUri string = '${vault.properties.vaultUri}secrets/${eventsSecretName}/'
