/**
 * Packages only some deployments use (PFX parsing, Key Vault, identity, email) and the HTTP client
 * (needed at the first FPX call, not to register functions) are loaded on first use: in the esbuild
 * bundle a `require` inside a function stays lazy, which keeps them out of the cold start.
 */
export const lazy = {
  forge: (): typeof import('node-forge') => require('node-forge'),
  identity: (): typeof import('@azure/identity') => require('@azure/identity'),
  keyVaultSecrets: (): typeof import('@azure/keyvault-secrets') => require('@azure/keyvault-secrets'),
  communicationEmail: (): typeof import('@azure/communication-email') =>
    require('@azure/communication-email'),
  nodemailer: (): typeof import('nodemailer') => require('nodemailer'),
  undici: (): typeof import('undici') => require('undici'),
};
