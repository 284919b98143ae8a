// The FPX ↔ CRM connector in Azure, for `azd up`: a Function App on the Flex Consumption plan running as a
// user-assigned managed identity, Storage without shared keys, Key Vault (RBAC) for the FastTrack client
// certificate and the CRM webhook secret, Application Insights on Log Analytics, and optionally Azure
// Communication Services Email for certificate-expiry alerts. No secret is written into an app setting.
// Layout as in Azure-Samples/functions-quickstart-typescript-azd; checked with `az bicep build` and
// `azd provision --preview` (no Bicep CLI runs on our development machines).
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

@description('Comma-separated recipients of certificate expiry alerts.')
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

@secure()
@description('The CRM webhook secret as Key Vault holds it (azd reads it back on every provision) or, the first time, a random seed it is derived from.')
param crmWebhookSecret string

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

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    crmWebhookSecret: crmWebhookSecret
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
    appSettings: {
      // lib/config reads these; names and defaults are the contract's (ARCHITECTURE.md, "Settings").
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
      CERT_ALERT_DAYS: '30,14,7,1'
      ALERT_EMAIL_TO: alertEmailTo
      ALERT_EMAIL_FROM: enableEmailAlerts ? email!.outputs.senderAddress : ''
      ACS_EMAIL_ENDPOINT: enableEmailAlerts ? email!.outputs.endpoint : ''
      POLL_REFERRALS_SCHEDULE: '0 */5 * * * *'
      POLL_TENANTS_SCHEDULE: '0 0 * * * *'
      CERT_CHECK_SCHEDULE: '0 0 8 * * *'
      REFERENCE_DATA_SCHEDULE: '0 0 2 * * *'
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
// Read back by azd's secretOrRandomPassword on the next provision (main.parameters.json).
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri
output FPX_CERT_NAME string = fpxCertName
output FPX_MAX_INSTANCES int = maximumInstanceCount
output FPX_RATE_LIMIT_PER_MINUTE int = fpxRateLimitPerMinute
output CRM_WEBHOOK_SECRET_NAME string = keyVault.outputs.webhookSecretName
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
