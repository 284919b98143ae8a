/**
 * `npm start`: the whole system on one machine with no Azure account.
 * Starts Azurite (persistent under .local/azurite, or in memory with --in-memory), the FPX sandbox with
 * generated certificates, and the local Functions host with every function, then runs syncReferenceData once
 * (the CRM needs the reference data before its first 02:00 run). Settings that point elsewhere
 * (AzureWebJobsStorage, FPX_BASE_URL, certificate settings) replace the embedded parts.
 * Ctrl-C stops everything it started.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SCHEDULE_DEFAULTS } from '../lib/config';
import { type AzuriteInstance, startAzurite } from './azurite';
import { currentSettings, PROJECT_ROOT, type RunningHost, readHostJson, startHost } from './host/host';
import { type Sandbox, startSandbox } from './sandbox';
import { type SmtpSink, startSmtpSink } from './smtp-sink';

const LOCAL = path.join(PROJECT_ROOT, '.local');
const AZURITE_PORTS = { blob: 10000, queue: 10001, table: 10002 };

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.FUNCTIONS_HTTP_PORT ?? '7071' },
    'sandbox-port': { type: 'string', default: process.env.FPX_SANDBOX_PORT ?? '8443' },
    // The local SMTP sink for alert emails; a busy port falls back to a free one.
    'smtp-port': { type: 'string', default: process.env.SMTP_SINK_PORT ?? '2525' },
    'in-memory': { type: 'boolean', default: false },
    // `auto`: free ports instead of Azurite's usual 10000-10002 (tests, or a second instance).
    'storage-ports': { type: 'string', default: 'default' },
  },
});

/** The local webhook secret, made once and kept under .local so `npm run webhook` can sign with it. */
function localWebhookSecret(): string {
  const file = path.join(LOCAL, 'webhook-secret');
  if (!existsSync(file)) {
    mkdirSync(LOCAL, { recursive: true });
    writeFileSync(file, `whsec_${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
  }
  return readFileSync(file, 'utf8').trim();
}

async function main(): Promise<void> {
  const settings: Record<string, string | undefined> = { ...currentSettings(PROJECT_ROOT) };
  const started: Array<{ name: string; stop: () => Promise<void> }> = [];
  const stopAll = async () => {
    for (const part of started.reverse()) await part.stop().catch((e) => console.error(`${part.name}: ${e}`));
  };
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping everything npm start started…`);
    stopAll().then(() => process.exit(0));
  };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));

  try {
    const storage = settings.AzureWebJobsStorage?.trim();
    let azurite: AzuriteInstance | undefined;
    if (!storage || /^UseDevelopmentStorage=true$/i.test(storage)) {
      const location = values['in-memory'] ? undefined : path.join(LOCAL, 'azurite');
      const ports = values['storage-ports'] === 'auto' ? undefined : AZURITE_PORTS;
      azurite = await startAzurite({ ports, location }).catch((error: Error) => {
        throw new Error(
          `Azurite could not start on ports 10000-10002 (is another Azurite running?): ${error.message}`,
        );
      });
      started.push({ name: 'Azurite', stop: azurite.stop });
      settings.AzureWebJobsStorage = azurite.connectionString;
    }

    let sandbox: Sandbox | undefined;
    if (!settings.FPX_BASE_URL?.trim()) {
      sandbox = await startSandbox({ port: Number(values['sandbox-port']) });
      started.push({ name: 'FPX sandbox', stop: () => sandbox?.close() ?? Promise.resolve() });
      settings.FPX_BASE_URL = sandbox.url;
      settings.FPX_CA_PATH ||= sandbox.certs.ca.path;
      if (!settings.FPX_CERT_PATH?.trim() && !settings.FPX_CERT_KEYVAULT_URL?.trim()) {
        settings.FPX_CERT_PATH = sandbox.certs.client.pemPath;
      }
    }
    settings.CRM_WEBHOOK_SECRET ||= localWebhookSecret();

    // Alert emails go to a local SMTP sink (saved under .local/mail) unless an email transport is set.
    let mail: SmtpSink | undefined;
    if (
      ![settings.SMTP_URL, settings.ACS_EMAIL_ENDPOINT, settings.ACS_EMAIL_CONNECTION_STRING].some((v) =>
        v?.trim(),
      )
    ) {
      mail = await startSmtpSink({ port: Number(values['smtp-port']), dir: path.join(LOCAL, 'mail') });
      started.push({ name: 'SMTP sink', stop: () => mail?.close() ?? Promise.resolve() });
      settings.SMTP_URL = mail.url;
      settings.ALERT_EMAIL_TO ||= 'fpx-alerts@fpx-connector.local';
      settings.ALERT_EMAIL_FROM ||= 'fpx-crm-connector@fpx-connector.local';
    }

    const hostJson = readHostJson(PROJECT_ROOT);
    const host: RunningHost = await startHost({
      port: Number(values.port),
      settings,
      settingDefaults: { ...SCHEDULE_DEFAULTS },
      routePrefix: hostJson.routePrefix,
      maxDequeueCount: hostJson.maxDequeueCount,
      visibilityTimeoutSeconds: hostJson.visibilityTimeoutSeconds,
      batchSize: hostJson.batchSize,
      newBatchThreshold: hostJson.newBatchThreshold,
    });
    started.push({ name: 'Functions host', stop: host.stop });

    console.log('');
    console.log(`Functions host   ${host.url}  (${host.functions.length} functions)`);
    for (const f of host.functions) {
      const where =
        f.url ?? (f.schedule ? `timer ${f.schedule}` : f.queueName ? `queue ${f.queueName}` : f.trigger);
      console.log(`  ${f.name.padEnd(20)} ${where}`);
    }
    console.log(
      `Storage          ${azurite ? `Azurite (${values['in-memory'] ? 'in memory' : '.local/azurite'}), table port ${azurite.ports.table}, queue port ${azurite.ports.queue}` : 'AzureWebJobsStorage from your settings'}`,
    );
    console.log(`FPX              ${sandbox ? `sandbox ${sandbox.url}` : settings.FPX_BASE_URL}`);
    if (mail) console.log(`Mail             SMTP sink ${mail.url}, saved under .local/mail`);
    console.log('');
    console.log(`Try:  curl ${host.url}/api/health/details`);
    console.log('      npm run invoke -- health');
    console.log('      npm run webhook -- notes dev/examples/note.json   (a signed CRM webhook)');
    console.log('Ctrl-C stops everything.');

    // The CRM needs the reference ids now, not at the next 02:00: run the timer once, without holding up
    // start-up (a slow or unreachable FPX only delays this line).
    console.log('syncReferenceData: running once at start-up (FPX reference lists into FpxReferenceData)…');
    host.invoke('syncReferenceData').then(
      (run) =>
        console.log(
          run.outcome === 'Succeeded'
            ? `syncReferenceData ran once at start-up: Succeeded in ${run.durationMs} ms`
            : `syncReferenceData ran once at start-up: Failed: ${run.error?.message ?? 'unknown error'}`,
        ),
      (error: Error) => console.error(`syncReferenceData could not run at start-up: ${error.message}`),
    );
  } catch (error) {
    console.error(`npm start failed: ${(error as Error).message}`);
    await stopAll();
    process.exit(1);
  }
}

main();
