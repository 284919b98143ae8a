// Key Vault with RBAC authorization: the FPX client certificate (imported by the operator after provisioning)
// and the CRM webhook secret, which the app reads through a Key Vault reference.
param name string
param location string
param tags object = {}

@secure()
@description('Either the current secret (whsec_…, several space separated during rotation) or a random seed.')
param crmWebhookSecret string

var webhookSecretName = 'crm-webhook-secret'
// A first provision gets azd's random password: Standard Webhooks wants "whsec_" + base64 of at least
// 16 bytes, so it becomes one (the seed plus a GUID derived from it, 50+ bytes). Later provisions get back
// what Key Vault holds, rotations included, and write it unchanged.
var webhookSecretValue = startsWith(crmWebhookSecret, 'whsec_')
  ? crmWebhookSecret
  : 'whsec_${base64('${crmWebhookSecret}${guid(crmWebhookSecret)}')}'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
  }
}

resource webhookSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: webhookSecretName
  properties: {
    value: webhookSecretValue
    contentType: 'Standard Webhooks secret(s) whsec_…, space separated during rotation'
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
output webhookSecretName string = webhookSecret.name
// Without a version: the app follows the latest version of the secret.
output webhookSecretUri string = '${vault.properties.vaultUri}secrets/${webhookSecret.name}/'
