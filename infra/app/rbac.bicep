// The app identity's permissions (plus its send-only email role, in email.bicep) and the deployer's Key Vault
// data roles.
// Nothing uses keys.
param identityPrincipalId string
param storageAccountName string
param keyVaultName string
param applicationInsightsName string
@description('Whoever runs azd; empty for no grant.')
param deployerPrincipalId string = ''
param deployerPrincipalType string = 'User'

// Built-in role definition ids.
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  keyVaultCertificatesOfficer: 'a4417e6f-fecd-4de8-b567-7b0420556985'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Storage: the host's blobs (locks, keys, the deployment package), the app's queues and tables.
resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in [roles.storageBlobDataOwner, roles.storageQueueDataContributor, roles.storageTableDataContributor]: {
    name: guid(storage.id, identityPrincipalId, role)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: identityPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

// Key Vault: read secret values only (no keys, no certificate management, no writes). Scoped to the vault,
// not to the certificate's secret: that secret only exists once the operator imports the certificate, and a
// role assignment needs an existing scope. The vault is this app's alone and holds exactly the two secrets
// the app reads: the certificate's (FPX_CERT_NAME) and the CRM webhook secret.
resource vaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identityPrincipalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Application Insights with local authentication off: telemetry is sent as the identity.
resource telemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, identityPrincipalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The deployer imports the FastTrack certificate and reads or rotates the webhook secret. Provisioning itself
// never reads the secret's value (the preprovision hook only asks Resource Manager whether it exists).
resource deployerVaultRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in (empty(deployerPrincipalId) ? [] : [roles.keyVaultCertificatesOfficer, roles.keyVaultSecretsOfficer]): {
    name: guid(vault.id, deployerPrincipalId, role)
    scope: vault
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: deployerPrincipalId
      principalType: deployerPrincipalType
    }
  }
]
