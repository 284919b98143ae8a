// Optional: Azure Communication Services Email with an Azure-managed sender domain
// (DoNotReply@<guid>.azurecomm.net) for certificate expiry alerts. The app authenticates as its identity.
param emailServiceName string
param communicationServiceName string
param dataLocation string
param tags object = {}
@description('The app\'s managed identity, which sends the alerts.')
param senderPrincipalId string

resource emailService 'Microsoft.Communication/emailServices@2023-04-01' = {
  name: emailServiceName
  location: 'global'
  tags: tags
  properties: { dataLocation: dataLocation }

  resource domain 'domains' = {
    name: 'AzureManagedDomain'
    location: 'global'
    tags: tags
    properties: {
      domainManagement: 'AzureManaged'
      userEngagementTracking: 'Disabled'
    }
  }
}

resource communicationService 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: communicationServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    linkedDomains: [emailService::domain.id]
  }
}

// Sending email as an Entra identity is authorized by control-plane actions on the Communication Services
// resource (Microsoft.Communication has no data actions). Microsoft documents exactly these three for a custom
// "send email" role (Communication Services docs, "Create a custom email role for the Microsoft Entra
// application", SMTP authentication, 2025), in place of Contributor. Left out on purpose: Delete, ListKeys and
// RegenerateKey (the access keys would allow everything), domains, sender usernames, suppression lists, and
// every other resource type.
var emailSendActions = [
  'Microsoft.Communication/CommunicationServices/Read'
  'Microsoft.Communication/CommunicationServices/Write'
  'Microsoft.Communication/EmailServices/write'
]

resource emailSendRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  // A role definition's resource name must be a GUID; its roleName must be unique in the tenant.
  name: guid(resourceGroup().id, 'fpx-email-send')
  properties: {
    roleName: 'FPX connector email sender (${resourceGroup().name} ${take(uniqueString(resourceGroup().id), 6)})'
    description: 'Send email through Azure Communication Services; nothing else (no keys, no delete, no other resources).'
    type: 'CustomRole'
    permissions: [
      {
        actions: emailSendActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [resourceGroup().id]
  }
}

// Assigned on the one Communication Services resource only. Environments provisioned before this role existed
// also hold a Contributor assignment here: the postprovision hook (infra/hooks/provision.mjs) removes it.
resource emailSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(communicationService.id, senderPrincipalId, 'fpx-email-send')
  scope: communicationService
  dependsOn: [emailSendRole]
  properties: {
    // Role definitions are referenced by their subscription-level id, wherever they were created.
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', emailSendRole.name)
    principalId: senderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output communicationServiceId string = communicationService.id
output communicationServiceName string = communicationService.name
output endpoint string = 'https://${communicationService.properties.hostName}'
output senderAddress string = 'DoNotReply@${emailService::domain.properties.mailFromSenderDomain}'
