// The FPX ↔ CRM connector in Azure, for `azd up`: a Function App on the Flex Consumption plan running as a
// user-assigned managed identity, Storage without shared keys, Key Vault (RBAC, purge protection) for the
// FastTrack client certificate and the CRM webhook secret, Application Insights on Log Analytics (which also
// receives Key Vault audit events and storage logs), optionally Azure Communication Services Email for
// certificate-expiry alerts, and optionally (restrictNetwork) a virtual network that Storage and Key Vault
// admit alone. No secret is written into an app setting. azure.yaml runs infra/hooks/provision.mjs around
// provisioning. Layout as in Azure-Samples/functions-quickstart-typescript-azd. No Bicep CLI runs on our
// development machines: test/infra.test.ts reads these files as text; run `az bicep build --file
// infra/main.bicep` and `azd provision --preview` before relying on a change.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; also seeds the unique suffix of every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource; one that offers Flex Consumption (az functionapp list-flexconsumption-locations).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of whoever runs azd (set by azd): may import the certificate and manage the webhook secret in Key Vault. Empty: no such grant.')
param principalId string = ''

@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string = 'User'

@allowed(['uat', 'production'])
@description('Which FPX to call: FastTrack\'s UAT (testing) or production environment.')
param fpxEnvironment string = 'uat'

@description('Overrides the FPX API base URL that fpxEnvironment selects (must include /ftop/v1.2/api).')
param fpxBaseUrl string = ''

@description('Name of the Key Vault certificate holding the FPX client certificate (import it after provisioning).')
param fpxCertName string = 'fpx-client'

@description('Origin header sent to FPX, if FastTrack validates one for you.')
param fpxOrigin string = ''

@description('Comma-separated recipients of certificate expiry alerts and of the Azure Monitor alert rules.')
param alertEmailTo string = ''

@description('Create Azure Communication Services Email (an Azure-managed sender domain) and send alerts through it.')
param enableEmailAlerts bool = false

@description('Where Communication Services keeps email data at rest.')
param emailDataLocation string = 'United States'

@minValue(1)
@maxValue(1000)
@description('Most instances the app may run per Flex scale group. 40 is the lowest Flex accepts in most regions.')
param maximumInstanceCount int = 40

@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

// The CRM webhook secret is generated once and never replaced (keyvault.bicep explains how). The preprovision
// hook (azure.yaml, infra/hooks/provision.mjs) sets these from what Azure Resource Manager reports about the
// vault this template names (kv-<resourceToken>); neither of them ever carries the secret's value.
@description('Whether the vault already holds crm-webhook-secret (set by the preprovision hook). Only false creates the secret; the default never writes it.')
param crmWebhookSecretExists bool = true

@secure()
@description('Random text azd generates on each provision ($(secretOrRandomPassword)); used only when the secret is created.')
param crmWebhookSecretSeed string = ''

@description('Whether the vault already holds crm-events-secret (set by the preprovision hook). Only false creates it.')
param crmEventsSecretExists bool = true

@secure()
@description('Random text azd generates on each provision; used only when the events secret is created.')
param crmEventsSecretSeed string = ''

@description('The CRM\'s endpoint(s) for referral and tenant events, space separated (CRM_EVENTS_URL); empty: no events.')
param crmEventsUrl string = ''

@minValue(1)
@maxValue(1000)
@description('Events per second per CRM endpoint at most (CRM_EVENTS_PER_SECOND).')
param crmEventsPerSecond int = 50

@minValue(7)
@maxValue(90)
@description('Key Vault soft-delete retention in days. 90 for a new vault; Azure fixes it at creation, so the preprovision hook passes an existing vault\'s own value.')
param keyVaultSoftDeleteRetentionInDays int = 90

@description('Deny every network by default on Storage and Key Vault, admitting only the Function App (through a virtual network subnet it is integrated into) and allowedIpAddresses. Off by default.')
param restrictNetwork bool = false

@description('With restrictNetwork: comma-separated public IPv4 addresses or CIDR ranges also admitted to Storage and Key Vault (the deployer; the preprovision hook fills it from ALLOWED_IP_ADDRESSES or the current public address).')
param allowedIpAddresses string = ''

@description('Dynamics 365: the Dataverse environment URL, e.g. https://contoso.crm.dynamics.com (empty: /api/dataverse answers 503)')
param dataverseUrl string = ''

@description('Dynamics 365: the Key Vault secret dataverse-webhook-key holds the x-fpx-dataverse-key value (add it first)')
param dataverseWebhookKeyInVault bool = false

@description('Dynamics 365: the account column holding the FPX tenant id')
param dataverseTenantIdColumn string = 'fpx_tenantid'

@description('Dynamics 365: the FPX note category of notes from Dataverse')
param dataverseNoteCategoryId int = 1

@description('Dynamics 365: JSON of FPX contact fields Dataverse has no column for')
param dataverseContactDefaults string = ''

var dataverseWebhookKeySecretName = 'dataverse-webhook-key'

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = '${abbrs.webSitesFunctions}fpx-${resourceToken}'
var deploymentContainerName = 'app-package-${take(resourceToken, 7)}'

// FastTrack Partner Experience API guide: the two environments.
var fpxBaseUrls = {
  uat: 'https://uat.partner.fttoolingapi.microsoft.com/ftop/v1.2/api'
  production: 'https://prod.partner.fttoolingapi.microsoft.com/ftop/v1.2/api'
}

// FPX allows 600 calls a minute per partner. FPX_RATE_LIMIT_PER_MINUTE is the budget of the whole deployment,
// shared by every instance through the storage account (table FpxRateBudget); the instance cap is a cost
// setting only, and divides the budget only while storage cannot be reached (FPX_MAX_INSTANCES).
var fpxRateLimitPerMinute = 600

var restrictedIpAddresses = filter(map(split(allowedIpAddresses, ','), ip => trim(ip)), ip => !empty(ip))

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

// The app's only identity: storage, Key Vault, Application Insights and email all authorize it by RBAC.
module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}fpx-${resourceToken}'
    location: location
    tags: tags
  }
}

// Only with restrictNetwork: the subnet the app's outbound traffic comes from, which Storage and Key Vault admit.
module network 'app/network.bicep' = if (restrictNetwork) {
  name: 'network'
  scope: rg
  params: {
    name: '${abbrs.networkVirtualNetworks}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    restrictNetwork: restrictNetwork
    allowedSubnetId: restrictNetwork ? network!.outputs.subnetId : ''
    allowedIpAddresses: restrictedIpAddresses
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    // The template's own name for the vault, the same on every provision of this environment: the preprovision
    // hook finds the same vault, so "does the secret exist" is asked of the vault that is deployed.
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionInDays
    restrictNetwork: restrictNetwork
    allowedSubnetId: restrictNetwork ? network!.outputs.subnetId : ''
    allowedIpAddresses: restrictedIpAddresses
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    createWebhookSecret: !crmWebhookSecretExists
    crmWebhookSecretSeed: crmWebhookSecretSeed
    createEventsSecret: !crmEventsSecretExists
    crmEventsSecretSeed: crmEventsSecretSeed
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

// Alert rules (to alertEmailTo through an action group) and the operators' workbook (docs/operations.md).
module monitoringAlerts 'app/monitoring-alerts.bicep' = {
  name: 'monitoring-alerts'
  scope: rg
  params: {
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    location: location
    tags: tags
    alertEmailTo: alertEmailTo
  }
}

module email 'app/email.bicep' = if (enableEmailAlerts) {
  name: 'email'
  scope: rg
  params: {
    emailServiceName: '${abbrs.communicationEmailServices}${resourceToken}'
    communicationServiceName: '${abbrs.communicationServices}${resourceToken}'
    dataLocation: emailDataLocation
    tags: tags
    senderPrincipalId: identity.outputs.principalId
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    identityPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  // Role assignments first, so that the app's first start can already read storage and Key Vault.
  dependsOn: [rbac]
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    virtualNetworkSubnetId: restrictNetwork ? network!.outputs.subnetId : ''
    appSettings: {
      // lib/config reads these; names and defaults are the contract's (docs/contract.md, "Settings").
      FPX_BASE_URL: empty(fpxBaseUrl) ? fpxBaseUrls[fpxEnvironment] : fpxBaseUrl
      FPX_CERT_KEYVAULT_URL: keyVault.outputs.uri
      FPX_CERT_NAME: fpxCertName
      CERT_REFRESH_MINUTES: '60'
      FPX_RATE_LIMIT_PER_MINUTE: string(fpxRateLimitPerMinute)
      FPX_MAX_INSTANCES: string(maximumInstanceCount)
      FPX_PAGE_SIZE: '25'
      FPX_ORIGIN: fpxOrigin
      // A Key Vault reference, resolved by the platform with the app's identity: the value never sits here.
      CRM_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.webhookSecretUri})'
      // Referral and tenant events to the CRM (docs/events.md); the secret, as the webhook's, a Key Vault reference.
      CRM_EVENTS_URL: crmEventsUrl
      CRM_EVENTS_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.eventsSecretUri})'
      CRM_EVENTS_PER_SECOND: string(crmEventsPerSecond)
      CERT_ALERT_DAYS: '30,14,7,1'
      ALERT_EMAIL_TO: alertEmailTo
      ALERT_EMAIL_FROM: enableEmailAlerts ? email!.outputs.senderAddress : ''
      ACS_EMAIL_ENDPOINT: enableEmailAlerts ? email!.outputs.endpoint : ''
      POLL_REFERRALS_SCHEDULE: '0 */5 * * * *'
      POLL_TENANTS_SCHEDULE: '0 0 * * * *'
      CERT_CHECK_SCHEDULE: '0 0 8 * * *'
      REFERENCE_DATA_SCHEDULE: '0 0 2 * * *'
      // Dynamics 365 (docs/dynamics-365.md): unset DATAVERSE_URL, /api/dataverse answers 503. The header key is a
      // Key Vault reference to a secret the operator adds (never a value here).
      DATAVERSE_URL: dataverseUrl
      DATAVERSE_WEBHOOK_KEY: dataverseWebhookKeyInVault ? '@Microsoft.KeyVault(SecretUri=${keyVault.outputs.uri}secrets/${dataverseWebhookKeySecretName}/)' : ''
      DATAVERSE_TENANT_ID_COLUMN: dataverseTenantIdColumn
      DATAVERSE_NOTE_CATEGORY_ID: string(dataverseNoteCategoryId)
      DATAVERSE_CONTACT_DEFAULTS: dataverseContactDefaults
      // Not set in Azure: FPX_CERT_PATH / FPX_CERT_PASSWORD (the certificate is in Key Vault), FPX_CA_PATH
      // (sandbox only), ACS_EMAIL_CONNECTION_STRING and SMTP_URL (would be secrets in app settings).
    }
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri
output FPX_CERT_NAME string = fpxCertName
output FPX_MAX_INSTANCES int = maximumInstanceCount
output FPX_RATE_LIMIT_PER_MINUTE int = fpxRateLimitPerMinute
output CRM_WEBHOOK_SECRET_NAME string = keyVault.outputs.webhookSecretName
output CRM_EVENTS_SECRET_NAME string = keyVault.outputs.eventsSecretName
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output AZURE_LOG_ANALYTICS_WORKSPACE_ID string = monitoring.outputs.logAnalyticsWorkspaceId
// Read by the postprovision hook, which removes the Contributor assignment older provisions gave the sender.
output AZURE_APP_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_COMMUNICATION_SERVICE_ID string = enableEmailAlerts ? email!.outputs.communicationServiceId : ''
