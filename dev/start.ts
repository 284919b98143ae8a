/**
 * `npm start`: the whole system on one machine with no Azure account.
 * Starts Azurite (persistent under .local/azurite, or in memory with --in-memory), the FPX sandbox with
 * generated certificates, an SMTP sink, a CRM event receiver and the local Functions host with every function. Settings that point
 * elsewhere (AzureWebJobsStorage, FPX_BASE_URL, certificate settings, an email transport) replace the embedded
 * parts. The settings it fills in itself (its parts, the contract's schedules) are put into the host's
 * environment explicitly and printed; the host adds no defaults of its own.
 * While it runs, `.local/settings.json` tells `npm run invoke` and `npm run webhook` where its parts are.
 * With its own FPX sandbox it runs pollTenants, pollReferrals and syncReferenceData once at start-up, so the
 * tables hold data before the first schedule; pointed at another FPX, nothing runs before its schedule.
 * Ctrl-C stops everything it started.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { HOST_JSON } from '../lib/config';
import { type AzuriteInstance, startAzurite } from './azurite';
import { startDataverseWebApiFake } from './dataverse/web-api-fake';
import { type EventReceiver, startEventReceiver } from './event-receiver';
import { currentSettings, PROJECT_ROOT, type RunningHost, startHost } from './host/host';
import { isUnset } from './host/settings';
import {
  fillLocalSettings,
  LOCAL_DATAVERSE_KEY,
  LOCAL_DIR,
  LOCAL_SETTINGS_FILE,
  LOCAL_WEBHOOK_SECRET_FILE,
  type LocalParts,
  removeRunningStart,
  wantsLocalFpx,
  wantsLocalMail,
  wantsLocalStorage,
  writeRunningStart,
} from './local-settings';
import { type OtlpReceiver, startOtlpReceiver } from './otlp-receiver';
import { type Sandbox, startSandbox } from './sandbox';
import { GUIDE_SAMPLE_GUID } from './sandbox/reference';
import { type SmtpSink, startSmtpSink } from './smtp-sink';

const AZURITE_PORTS = { blob: 10000, queue: 10001, table: 10002 };
/** Run once at start-up against the embedded sandbox, so the tables hold data before the first schedule. */
const FIRST_DATA = ['syncReferenceData', 'pollTenants', 'pollReferrals'] as const;

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.FUNCTIONS_HTTP_PORT ?? '7071' },
    'sandbox-port': { type: 'string', default: process.env.FPX_SANDBOX_PORT ?? '8443' },
    // The local SMTP sink for alert emails; a busy port falls back to a free one.
    'smtp-port': { type: 'string', default: process.env.SMTP_SINK_PORT ?? '2525' },
    // The local CRM event receiver; a busy port falls back to a free one.
    'events-port': { type: 'string', default: process.env.EVENT_RECEIVER_PORT ?? '7072' },
    'in-memory': { type: 'boolean', default: false },
    // `auto`: free ports instead of Azurite's usual 10000-10002 (tests, or a second instance).
    'storage-ports': { type: 'string', default: 'default' },
    // Telemetry to a local OTLP/HTTP receiver (dev/otlp-receiver.ts); a busy port falls back to a free one.
    otel: { type: 'boolean', default: false },
    'otel-port': { type: 'string', default: '4318' },
  },
});

/** The local webhook secret, made once and kept under .local so `npm run webhook` can sign with it. */
function localWebhookSecret(): string {
  if (!existsSync(LOCAL_WEBHOOK_SECRET_FILE)) {
    mkdirSync(LOCAL_DIR, { recursive: true });
    writeFileSync(LOCAL_WEBHOOK_SECRET_FILE, `whsec_${randomBytes(32).toString('base64')}\n`, {
      mode: 0o600,
    });
  }
  return readFileSync(LOCAL_WEBHOOK_SECRET_FILE, 'utf8').trim();
}

const relative = (file: string) => path.relative(PROJECT_ROOT, file) || file;

/** How a filled-in setting is shown: secrets by where they come from, never their value. */
function shown(name: string, value: string, azurite: AzuriteInstance | undefined): string {
  if (name === 'AzureWebJobsStorage') {
    return azurite
      ? `Azurite connection string (blob ${azurite.ports.blob}, queue ${azurite.ports.queue}, table ${azurite.ports.table})`
      : '(connection string)';
  }
  if (name === 'CRM_WEBHOOK_SECRET') return `the secret in ${relative(LOCAL_WEBHOOK_SECRET_FILE)}`;
  if (name === 'DATAVERSE_WEBHOOK_KEY') return `the key in ${relative(LOCAL_DATAVERSE_KEY.file)}`;
  if (name === 'IDENTITY_HEADER') return "(the local managed identity endpoint's header)";
  if (name === 'CRM_EVENTS_SECRET') return 'a secret generated for this run, shared with the event receiver';
  return /^[A-Z_]+_PATH$/.test(name) ? relative(value) : value;
}

async function main(): Promise<void> {
  const given = currentSettings(PROJECT_ROOT);
  const started: Array<{ name: string; stop: () => Promise<void> }> = [];
  const stopAll = async () => {
    removeRunningStart();
    for (const part of started.reverse()) await part.stop().catch((e) => console.error(`${part.name}: ${e}`));
  };
  // However this process ends, a settings file pointing at parts that are gone must not stay behind.
  process.once('exit', () => removeRunningStart());
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
    const parts: LocalParts = {};
    let azurite: AzuriteInstance | undefined;
    if (wantsLocalStorage(given)) {
      const location = values['in-memory'] ? undefined : path.join(LOCAL_DIR, 'azurite');
      const ports = values['storage-ports'] === 'auto' ? undefined : AZURITE_PORTS;
      azurite = await startAzurite({ ports, location }).catch((error: Error) => {
        throw new Error(
          `Azurite could not start on ports 10000-10002 (is another Azurite running?): ${error.message}`,
        );
      });
      started.push({ name: 'Azurite', stop: azurite.stop });
      parts.storage = azurite.connectionString;
    }

    let sandbox: Sandbox | undefined;
    if (wantsLocalFpx(given)) {
      sandbox = await startSandbox({ port: Number(values['sandbox-port']) });
      started.push({ name: 'FPX sandbox', stop: () => sandbox?.close() ?? Promise.resolve() });
      parts.fpx = {
        url: sandbox.url,
        caPath: sandbox.certs.ca.path,
        clientCertPath: sandbox.certs.client.pemPath,
      };
    }
    if (isUnset(given.CRM_WEBHOOK_SECRET)) parts.webhookSecret = localWebhookSecret();

    // A local Dataverse Web API with one account linked to a sandbox tenant (docs/dynamics-365.md#try-it-locally).
    if (sandbox && isUnset(given.DATAVERSE_URL)) {
      const dataverse = await startDataverseWebApiFake();
      started.push({ name: 'Dataverse Web API', stop: dataverse.close });
      const [tenantId] = sandbox.data.tenants.keys();
      dataverse.setRow('accounts', LOCAL_DATAVERSE_KEY.account, {
        name: 'Local account',
        fpx_tenantid: tenantId ?? null,
      });
      parts.dataverse = {
        url: dataverse.url,
        identityEnv: dataverse.identityEnv,
        account: LOCAL_DATAVERSE_KEY.account,
        // FPX contact fields Dataverse has no column for, valid in the sandbox's reference data.
        contactDefaults: JSON.stringify({
          contactTypeId: 2,
          surveyLanguageId: GUIDE_SAMPLE_GUID,
          surveyEligible: false,
          services: [2],
        }),
      };
      if (isUnset(given.DATAVERSE_WEBHOOK_KEY)) parts.dataverseKey = LOCAL_DATAVERSE_KEY.read();
    }

    // Alert emails go to a local SMTP sink (saved under .local/mail) unless an email transport is set.
    let mail: SmtpSink | undefined;
    if (wantsLocalMail(given)) {
      mail = await startSmtpSink({ port: Number(values['smtp-port']), dir: path.join(LOCAL_DIR, 'mail') });
      started.push({ name: 'SMTP sink', stop: () => mail?.close() ?? Promise.resolve() });
      parts.mail = { url: mail.url };
    }

    // Referral and tenant events go to a local receiver that checks their signatures, unless a CRM is set.
    let receiver: EventReceiver | undefined;
    if (isUnset(given.CRM_EVENTS_URL)) {
      const secret = isUnset(given.CRM_EVENTS_SECRET)
        ? `whsec_${randomBytes(32).toString('base64')}`
        : (given.CRM_EVENTS_SECRET as string);
      receiver = await startEventReceiver({ secret, port: Number(values['events-port']) });
      started.push({ name: 'event receiver', stop: () => receiver?.close() ?? Promise.resolve() });
      parts.events = { url: receiver.url, secret: isUnset(given.CRM_EVENTS_SECRET) ? secret : undefined };
    }

    // --otel: spans, metrics and logs to a local OTLP receiver, unless an exporter is set already.
    let otel: OtlpReceiver | undefined;
    const exporterSet =
      !isUnset(given.OTEL_EXPORTER_OTLP_ENDPOINT) || !isUnset(given.APPLICATIONINSIGHTS_CONNECTION_STRING);
    if (values.otel && !exporterSet) {
      otel = await startOtlpReceiver({ port: Number(values['otel-port']) }).catch(() => startOtlpReceiver());
      started.push({ name: 'OTLP receiver', stop: () => otel?.close() ?? Promise.resolve() });
    }

    // Everything npm start supplies goes into the settings here, in the open; the host adds nothing.
    const { settings, filled } = fillLocalSettings(given, parts);
    if (otel) {
      settings.OTEL_EXPORTER_OTLP_ENDPOINT = otel.url;
      settings.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
      settings.OTEL_METRIC_EXPORT_INTERVAL = '10000';
      filled.push(
        'OTEL_EXPORTER_OTLP_ENDPOINT',
        'OTEL_EXPORTER_OTLP_PROTOCOL',
        'OTEL_METRIC_EXPORT_INTERVAL',
      );
    }
    const host: RunningHost = await startHost({
      port: Number(values.port),
      settings,
      routePrefix: HOST_JSON.routePrefix,
      maxDequeueCount: HOST_JSON.maxDequeueCount,
      visibilityTimeoutSeconds: HOST_JSON.visibilityTimeoutSeconds,
      batchSize: HOST_JSON.batchSize,
      newBatchThreshold: HOST_JSON.newBatchThreshold,
      // Ctrl-C should stop at once: an invocation cut short loses nothing, its queue message comes back.
      stopTimeoutMs: 2_000,
    });
    started.push({ name: 'Functions host', stop: host.stop });
    writeRunningStart(host.url, parts);

    console.log('');
    console.log(`Functions host   ${host.url}  (${host.functions.length} functions)`);
    for (const f of host.functions) {
      const where =
        f.url ?? (f.schedule ? `timer ${f.schedule}` : f.queueName ? `queue ${f.queueName}` : f.trigger);
      console.log(`  ${f.name.padEnd(20)} ${where}`);
    }
    for (const [name, error] of host.errors) {
      console.log(`  ${name.padEnd(20)} IN ERROR, not registered: ${error.message}`);
    }
    console.log(
      `Storage          ${azurite ? `Azurite (${values['in-memory'] ? 'in memory' : '.local/azurite'}), table port ${azurite.ports.table}, queue port ${azurite.ports.queue}` : 'AzureWebJobsStorage from your settings'}`,
    );
    console.log(`FPX              ${sandbox ? `sandbox ${sandbox.url}` : settings.FPX_BASE_URL}`);
    if (mail) console.log(`Mail             SMTP sink ${mail.url}, saved under .local/mail`);
    if (receiver)
      console.log(`CRM events       receiver ${receiver.url}, checks signatures, prints each event`);
    if (parts.dataverse)
      console.log(
        `Dynamics 365     Dataverse Web API fake ${parts.dataverse.url} (npm run dataverse posts its events)`,
      );
    if (otel)
      console.log(
        `Telemetry        OTLP receiver ${otel.url} (GET ${otel.url}/ shows the spans, metrics, logs)`,
      );
    console.log('');
    console.log('Settings npm start filled in (your environment and local.settings.json win):');
    for (const name of filled) {
      console.log(`  ${name.padEnd(26)} ${shown(name, settings[name] ?? '', azurite)}`);
    }
    console.log(
      `Written to ${relative(LOCAL_SETTINGS_FILE)} while npm start runs: npm run invoke and npm run webhook use the same parts.`,
    );
    console.log('');
    console.log(`Try:  curl ${host.url}/api/health/details`);
    console.log('      npm run invoke -- health');
    console.log('      npm run webhook -- notes dev/examples/note.json   (a signed CRM webhook)');
    console.log('Ctrl-C stops everything.');
    console.log('');

    if (sandbox) runFirstData(host);
    else {
      console.log(
        `FPX is ${settings.FPX_BASE_URL}: nothing runs before its schedule (POST ${host.url}/admin/functions/<name> or npm run invoke -- <name> runs one now).`,
      );
    }
  } catch (error) {
    console.error(`npm start failed: ${(error as Error).message}`);
    await stopAll();
    process.exit(1);
  }
}

/**
 * With the embedded sandbox, the syncs run once now rather than at their first schedule (up to a day away for
 * the reference data), without holding up start-up: each reports when done.
 */
function runFirstData(host: RunningHost): void {
  console.log(
    `First data: running ${FIRST_DATA.join(', ')} once now against the FPX sandbox (then on their schedules)…`,
  );
  const run = (name: (typeof FIRST_DATA)[number]) =>
    host.invoke(name).then(
      (outcome) =>
        console.log(
          outcome.outcome === 'Succeeded'
            ? `${name} ran once at start-up: Succeeded in ${outcome.durationMs} ms`
            : `${name} ran once at start-up: Failed: ${outcome.error?.message ?? 'unknown error'}`,
        ),
      (error: Error) => console.error(`${name} could not run at start-up: ${error.message}`),
    );
  // The reference lists first (nine calls): the ids webhooks need are there before the tenants' details,
  // which the polls queue by the dozen, take the FPX budget.
  run('syncReferenceData').then(() => Promise.all([run('pollTenants'), run('pollReferrals')]));
}

main();
