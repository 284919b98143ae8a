import { loadConfig } from '../../lib/config';

/** A Key Vault reference as App Service writes it into a setting the platform has not resolved. */
export const keyVaultReference = (secret: string) =>
  `@Microsoft.KeyVault(SecretUri=https://kv-fpx.vault.azure.net/secrets/${secret}/)`;

/** The settings loaded, with the lines loadConfig logged about them. */
export function loadLogged(env: Record<string, string>) {
  const logged: string[] = [];
  const config = loadConfig(env, { log: (line) => logged.push(line) });
  return { config, logged };
}
