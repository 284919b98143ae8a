// Only with restrictNetwork: the virtual network the Function App sends its outbound traffic through, so that
// Storage and Key Vault can deny every other network and still let the app in.
//
// Why a subnet and not the app's outbound IP addresses: Storage ignores IP rules for requests that come from
// the same Azure region (the app and the storage account share `location`), and App Service's Key Vault
// references do not come from the app's listed outbound addresses either. Traffic from this subnet carries the
// subnet's identity to Storage and Key Vault through service endpoints, and their network rules allow exactly
// this subnet (virtualNetworkRules). Flex Consumption routes all of the app's outbound traffic through it.
param name string
param location string
param tags object = {}

var subnetName = 'app'

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: { addressPrefixes: ['10.60.0.0/16'] }
    // The subnet is declared inline: a separate subnets resource is reset whenever the network is redeployed.
    subnets: [
      {
        name: subnetName
        properties: {
          // One address per app instance; /24 leaves room above maximumInstanceCount.
          addressPrefix: '10.60.0.0/24'
          // Flex Consumption integrates through the Container Apps platform (needs the Microsoft.App provider).
          delegations: [
            {
              name: 'flex-consumption'
              properties: { serviceName: 'Microsoft.App/environments' }
            }
          ]
          serviceEndpoints: [{ service: 'Microsoft.Storage' }, { service: 'Microsoft.KeyVault' }]
          // FPX, Application Insights and Communication Services are reached over the internet from this subnet;
          // newer Network API versions create private subnets (no outbound access) unless told otherwise. For a
          // fixed egress address attach a NAT gateway here instead.
          defaultOutboundAccess: true
        }
      }
    ]
  }
}

output subnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, subnetName)
