// The Function App on the Flex Consumption plan (Linux, Node.js 22), running as the user-assigned identity.
// azd deploys dist/ (one esbuild bundle, host.json, package.json) into the deployment container.
param name string
param planName string
param location string
param tags object = {}
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
param maximumInstanceCount int
param instanceMemoryMB int
@description('The app\'s own settings (lib/config); the platform settings below are added to them.')
param appSettings object
@description('Subnet the app sends all outbound traffic through (network.bicep, restrictNetwork); empty for none.')
param virtualNetworkSubnetId string = ''

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references (CRM_WEBHOOK_SECRET) are resolved as this identity, not a system-assigned one.
    keyVaultReferenceIdentity: identityId
    // With restrictNetwork, Storage and Key Vault admit this subnet only (Key Vault references included).
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: { name: 'node', version: '22' }
    }
  }

  resource settings 'config' = {
    name: 'appsettings'
    properties: union(appSettings, {
      // Identity-based AzureWebJobsStorage, for the host and for lib/storage alike (no connection string).
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: identityClientId
      AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
      AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
      AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
      // DefaultAzureCredential (Key Vault certificate, ACS Email) picks the user-assigned identity by this.
      AZURE_CLIENT_ID: identityClientId
      APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
      // The host refuses request bodies above this many bytes before the worker sees them (its default is
      // 100 MB). 5.5 MiB (5,767,168): just above the webhooks' own 5 MiB limit (lib/crm MAX_BODY_BYTES), so a
      // body a little over 5 MiB still reaches the app and gets its JSON 413, and nothing above 5.5 MiB is ever
      // handed to the worker, whatever Content-Length says.
      FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '5767168'
    })
  }

  // No publishing passwords: azd deploys with Entra ID.
  resource ftpCredentials 'basicPublishingCredentialsPolicies' = {
    name: 'ftp'
    properties: { allow: false }
  }

  resource scmCredentials 'basicPublishingCredentialsPolicies' = {
    name: 'scm'
    properties: { allow: false }
  }
}

output name string = site.name
output uri string = 'https://${site.properties.defaultHostName}'
