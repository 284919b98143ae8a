import { parseArgs } from 'node:util';
import { startSandbox } from './server';

/** `npx tsx dev/sandbox/main.ts [--port 8443] [--tenants N] [--referrals N] [--rate-limit N] [--seed N] [--host H]` */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '8443' },
      host: { type: 'string', default: '127.0.0.1' },
      tenants: { type: 'string' },
      referrals: { type: 'string' },
      seed: { type: 'string' },
      'rate-limit': { type: 'string' },
    },
  });
  const sandbox = await startSandbox({
    port: integer(values.port, '--port'),
    host: values.host,
    data: {
      tenants: integer(values.tenants, '--tenants'),
      referrals: integer(values.referrals, '--referrals'),
      seed: integer(values.seed, '--seed'),
    },
    rateLimitPerMinute: integer(values['rate-limit'], '--rate-limit'),
  });
  console.log(`FPX sandbox listening on ${sandbox.url}`);
  console.log(`  CA certificate (FPX_CA_PATH):      ${sandbox.certs.ca.path}`);
  console.log(`  client certificate (FPX_CERT_PATH): ${sandbox.certs.client.pemPath}`);
  console.log(`  client PFX:                         ${sandbox.certs.client.pfxPath}`);
  console.log(`  PFX password:                       ${sandbox.certs.client.pfxPath}.password`);
  const stop = (signal: string) => {
    console.log(`${signal}: stopping the FPX sandbox`);
    sandbox.close().then(() => process.exit(0));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

function integer(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) {
    console.error(`${option} must be a whole number, got '${value}'`);
    process.exit(2);
  }
  return Number(value);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
