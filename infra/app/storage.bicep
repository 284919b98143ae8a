// AzureWebJobsStorage: the host's locks and keys (blob), timers, queues and the synced tables, plus the
// container Flex Consumption deploys the app package from. Shared keys are disabled: identities only.
param name string
param location string
param tags object = {}
param deploymentContainerName string

@description('Deny every network but the app\'s subnet and allowedIpAddresses (main.bicep restrictNetwork).')
param restrictNetwork bool = false

@description('The Function App\'s integration subnet (network.bicep); used when restrictNetwork is on.')
param allowedSubnetId string = ''

@description('Public IPv4 addresses or CIDR ranges also let in when restrictNetwork is on (the deployer).')
param allowedIpAddresses array = []

@description('Log Analytics workspace that receives the blob, queue and table logs.')
param logAnalyticsWorkspaceId string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // "Enabled from selected networks" when restricted: the rules below decide who gets in.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: restrictNetwork ? 'Deny' : 'Allow'
      // Trusted Azure services (Azure Monitor among them) keep working either way.
      bypass: 'AzureServices'
      virtualNetworkRules: restrictNetwork ? [{ id: allowedSubnetId, action: 'Allow' }] : []
      ipRules: restrictNetwork ? map(allowedIpAddresses, ip => { value: ip, action: 'Allow' }) : []
    }
  }

  resource blobServices 'blobServices' = {
    name: 'default'

    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: { publicAccess: 'None' }
    }
  }

  resource queueServices 'queueServices' existing = {
    name: 'default'
  }

  resource tableServices 'tableServices' existing = {
    name: 'default'
  }
}

// Resource logs (every read, write and delete, with caller, identity and outcome) of the three services the app
// uses, into the workspace behind Application Insights: tables StorageBlobLogs, StorageQueueLogs, StorageTableLogs.
var storageLogs = [
  { category: 'StorageRead', enabled: true }
  { category: 'StorageWrite', enabled: true }
  { category: 'StorageDelete', enabled: true }
]

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: storage::blobServices
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: storageLogs
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: storage::queueServices
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: storageLogs
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: storage::tableServices
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: storageLogs
  }
}

output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
