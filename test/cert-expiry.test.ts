import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { ensureDevCertificates, type IssuedClientCertificate, issueClientCertificate } from '../dev/certs';
import { type SmtpSink, startSmtpSink } from '../dev/smtp-sink';
import { runCertExpiryCheck } from '../functions/certExpiryCheck';
import { buildServices } from '../functions/services';
import { AlertLedger, type AlertSender, SmtpAlertSender } from '../lib/alerts';
import {
  CERT_ALERTS_TABLE,
  type CertificateSource,
  checkCertificateExpiry,
  daysLeft,
  KeyVaultCertificateSource,
} from '../lib/cert';
import { loadConfig } from '../lib/config';
import { tableClient } from '../lib/storage';
import { type KeyVaultFake, startKeyVaultFake } from './fakes/keyvault';
import { mimePart } from './fakes/mail';

const DAY = 24 * 60 * 60 * 1000;
const HOUR = 60 * 60 * 1000;
const THRESHOLDS = [30, 14, 7, 1];

describe('certExpiryCheck', () => {
  let vault: KeyVaultFake;
  let sink: SmtpSink;
  let sender: AlertSender;
  const ca = () => ensureDevCertificates().ca;
  const table = tableClient(inject('storageConnection'), `CertAlertsTest${Date.now()}`);

  beforeAll(async () => {
    vault = await startKeyVaultFake();
    sink = await startSmtpSink({
      port: 0,
      dir: mkdtempSync(path.join(tmpdir(), 'fpx-mail-')),
      log: () => undefined,
    });
    sender = new SmtpAlertSender({
      url: sink.url,
      to: ['ops@example.com'],
      from: 'fpx-connector@example.com',
    });
  });
  afterAll(async () => {
    await vault?.close();
    await sink?.close();
    await table.deleteTable().catch(() => undefined);
  });

  let names = 0;
  function certificateInVault(commonName: string): {
    cert: IssuedClientCertificate;
    source: CertificateSource;
  } {
    const name = `fpx-expiry-${++names}`;
    const cert = issueClientCertificate(ca(), { commonName, pfxPassword: '' });
    vault.setSecret(name, { value: cert.pfx.toString('base64'), contentType: 'application/x-pkcs12' });
    const source = new KeyVaultCertificateSource({
      vaultUrl: vault.url,
      name,
      refreshMinutes: 60,
      credential: vault.credential,
      clientOptions: vault.clientOptions,
    });
    return { cert, source };
  }

  function checker(source: CertificateSource, alertSender: AlertSender = sender) {
    const ledger = new AlertLedger(table);
    return (now: Date) =>
      checkCertificateExpiry({
        certificates: source,
        ledger,
        sender: alertSender,
        thresholds: THRESHOLDS,
        now: () => now,
      });
  }

  const mailsFor = (thumbprint: string) =>
    sink.messages.filter((m) => mimePart(m.raw, 'text/plain')?.includes(thumbprint));

  test('each threshold alerts once, re-runs send nothing, expired alerts daily; the email says what to do', async () => {
    const { cert, source } = certificateInVault('partner-expiry');
    const run = checker(source);
    const daysBefore = (days: number) => new Date(cert.notAfter.getTime() - days * DAY);
    const outcomes: string[] = [];
    const runAt = async (now: Date) => {
      const result = await run(now);
      outcomes.push(
        result.alert
          ? `${result.daysLeft}:${result.alert.key}:${result.alert.outcome}`
          : `${result.daysLeft}:-`,
      );
    };
    await runAt(daysBefore(45));
    await runAt(daysBefore(30));
    await runAt(daysBefore(30)); // the same day again
    await runAt(daysBefore(20));
    await runAt(daysBefore(14));
    await runAt(daysBefore(7.5));
    await runAt(daysBefore(7));
    await runAt(daysBefore(1));
    await runAt(new Date(cert.notAfter.getTime() - HOUR));
    // Expired: the UTC day after, twice (one email), and the day after that (another).
    const expiredDay = new Date(cert.notAfter.getTime() + DAY);
    const utc = (day: Date, hour: number, plusDays = 0) =>
      new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate() + plusDays, hour));
    await runAt(utc(expiredDay, 8));
    await runAt(utc(expiredDay, 20));
    await runAt(utc(expiredDay, 8, 1));
    const expired = (t: Date, outcome: string) =>
      `${daysLeft(cert.notAfter, t)}:expired-${t.toISOString().slice(0, 10)}:${outcome}`;
    expect(outcomes).toEqual([
      '45:-',
      '30:threshold-30:sent',
      '30:threshold-30:already',
      '20:threshold-30:already',
      '14:threshold-14:sent',
      '7:threshold-7:sent',
      '7:threshold-7:already',
      '1:threshold-1:sent',
      '0:threshold-1:already',
      expired(utc(expiredDay, 8), 'sent'),
      expired(utc(expiredDay, 20), 'already'),
      expired(utc(expiredDay, 8, 1), 'sent'),
    ]);
    const mails = mailsFor(cert.thumbprint);
    expect(mails.map((m) => m.subject)).toEqual(
      expect.arrayContaining([
        'FPX client certificate expires in 30 days: partner-expiry',
        'FPX client certificate expires in 14 days: partner-expiry',
        'FPX client certificate expires in 7 days: partner-expiry',
        'FPX client certificate expires in 1 day: partner-expiry',
        `FPX client certificate EXPIRED on ${cert.notAfter.toISOString()}: partner-expiry`,
      ]),
    );

    const text = mimePart(mails[2]?.raw ?? '', 'text/plain') ?? '';
    expect(text).toContain(`expires in 7 days (${cert.notAfter.toISOString()})`);
    expect(text).toContain('Subject: CN=partner-expiry');
    expect(text).toContain(`Thumbprint (SHA-256): ${cert.thumbprint}`);
    expect(text).toContain(`Key Vault: ${vault.url}`);
    expect(text).toMatch(/Certificate name: fpx-expiry-\d+/);
    expect(text).toContain('Days left: 7');
    expect(text).toMatch(/download the new client certificate/i);
    expect(text).toMatch(/FastTrack's partner management site/);
    expect(text).toMatch(/Import it as a new version of the Key Vault certificate "fpx-expiry-\d+"/);
    expect(text).toMatch(/without a restart/);
    expect(text).not.toMatch(/PRIVATE KEY/);

    // The ledger: PartitionKey thumbprint, RowKey per alert, what was sent and how.
    const rows: Array<Record<string, unknown>> = [];
    for await (const row of table.listEntities({
      queryOptions: { filter: `PartitionKey eq '${cert.thumbprint}'` },
    })) {
      rows.push(row);
    }
    expect(rows.map((r) => String(r.rowKey)).sort()).toEqual(
      expect.arrayContaining(['threshold-1', 'threshold-14', 'threshold-30', 'threshold-7']),
    );
    expect(rows.every((r) => r.status === 'sent' && r.transport === 'smtp' && r.attempts === 1)).toBe(true);
  });

  test('several thresholds crossed at once: one email, for the most urgent', async () => {
    const { cert, source } = certificateInVault('partner-late');
    const result = await checker(source)(new Date(cert.notAfter.getTime() - 5 * DAY));
    expect(result.alert).toMatchObject({ key: 'threshold-7', outcome: 'sent' });
    expect(mailsFor(cert.thumbprint).map((m) => m.subject)).toEqual([
      'FPX client certificate expires in 5 days: partner-late',
    ]);
    // The less urgent ones never come later.
    const next = await checker(source)(new Date(cert.notAfter.getTime() - 4 * DAY));
    expect(next.alert?.outcome).toBe('already');
    expect(mailsFor(cert.thumbprint)).toHaveLength(1);
  });

  test('two instances at once send one email', async () => {
    const { cert, source } = certificateInVault('partner-race');
    const now = new Date(cert.notAfter.getTime() - 10 * DAY);
    const results = await Promise.all(Array.from({ length: 4 }, () => checker(source)(now)));
    expect(results.map((r) => r.alert?.outcome).sort()).toEqual(['already', 'already', 'already', 'sent']);
    expect(mailsFor(cert.thumbprint)).toHaveLength(1);
  });

  test('a failed send is recorded and retried on the next run, once', async () => {
    const { cert, source } = certificateInVault('partner-retry');
    const down = new SmtpAlertSender({
      url: 'smtp://127.0.0.1:9',
      to: ['ops@example.com'],
      from: 'fpx@example.com',
    });
    const now = new Date(cert.notAfter.getTime() - 13 * DAY);
    const failed = await checker(source, down)(now);
    expect(failed.alert).toMatchObject({ key: 'threshold-14', outcome: 'failed', attempt: 1 });
    expect(await new AlertLedger(table).get(cert.thumbprint, 'threshold-14')).toMatchObject({
      status: 'failed',
      lastError: expect.stringMatching(/SMTP send failed/),
    });
    expect(mailsFor(cert.thumbprint)).toHaveLength(0);

    const retried = await checker(source)(new Date(now.getTime() + DAY));
    expect(retried.alert).toMatchObject({ key: 'threshold-14', outcome: 'sent', attempt: 2 });
    const again = await checker(source)(new Date(now.getTime() + DAY));
    expect(again.alert?.outcome).toBe('already');
    expect(mailsFor(cert.thumbprint)).toHaveLength(1);
  });

  test('the function: settings to email, through the composition root; a failed send fails the invocation', async () => {
    const cert = issueClientCertificate(ca(), {
      commonName: 'partner-function',
      notAfter: new Date(Date.now() + 6 * DAY + HOUR),
    });
    vault.setSecret('fpx-function', {
      value: `${cert.keyPem}${cert.certPem}`,
      contentType: 'application/x-pem-file',
    });
    const settings = {
      AzureWebJobsStorage: inject('storageConnection'),
      FPX_BASE_URL: 'https://127.0.0.1:9/ftop/v1.2/api',
      FPX_CERT_KEYVAULT_URL: vault.url,
      FPX_CERT_NAME: 'fpx-function',
      ALERT_EMAIL_TO: 'ops@example.com',
      ALERT_EMAIL_FROM: 'fpx-connector@example.com',
    };
    const keyVault = { credential: vault.credential, clientOptions: vault.clientOptions };
    const services = buildServices(loadConfig({ ...settings, SMTP_URL: sink.url }), { keyVault });
    const result = await runCertExpiryCheck(
      services,
      new InvocationContext({ functionName: 'certExpiryCheck' }),
    );
    expect(result).toMatchObject({
      daysLeft: 6,
      alert: { key: 'threshold-7', outcome: 'sent', transport: 'smtp' },
    });
    expect(mailsFor(cert.thumbprint).map((m) => m.subject)).toEqual([
      'FPX client certificate expires in 6 days: partner-function',
    ]);

    const down = buildServices(loadConfig({ ...settings, SMTP_URL: 'smtp://127.0.0.1:9' }), { keyVault });
    const later = () => new Date(Date.now() + 5 * DAY + 20 * HOUR);
    await expect(
      runCertExpiryCheck(down, new InvocationContext({ functionName: 'certExpiryCheck' }), later),
    ).rejects.toThrow(/could not be sent \(retried on the next run\): Error: SMTP send failed/);
  });

  test('an alert left `sending` by a sender that died mid-send is sent again after 30 minutes, once', async () => {
    const { cert, source } = certificateInVault('partner-died');
    const claimedAt = new Date(cert.notAfter.getTime() - 13 * DAY - HOUR);
    // What a run that died mid-send leaves behind: the claim, never marked sent or failed.
    expect(await new AlertLedger(table).claim(cert.thumbprint, 'threshold-14', {}, claimedAt)).toEqual({
      claimed: true,
      attempt: 1,
    });
    const minutesLater = (minutes: number) => new Date(claimedAt.getTime() + minutes * 60_000);

    const early = await checker(source)(minutesLater(29));
    expect(early.alert).toMatchObject({ key: 'threshold-14', outcome: 'already' });
    expect(mailsFor(cert.thumbprint)).toHaveLength(0);

    // Past the grace period: taken over, by one of several instances at once.
    const results = await Promise.all(Array.from({ length: 3 }, () => checker(source)(minutesLater(31))));
    expect(results.map((r) => r.alert?.outcome).sort()).toEqual(['already', 'already', 'sent']);
    expect(results.find((r) => r.alert?.outcome === 'sent')?.alert?.attempt).toBe(2);
    expect(mailsFor(cert.thumbprint).map((m) => m.subject)).toEqual([
      'FPX client certificate expires in 13 days: partner-died',
    ]);
    expect(await new AlertLedger(table).get(cert.thumbprint, 'threshold-14')).toMatchObject({
      status: 'sent',
      attempts: 2,
    });
    expect((await checker(source)(minutesLater(120))).alert?.outcome).toBe('already');
  });

  test('secrets quoted by a failure reach neither the log, the ledger nor the failed invocation', async () => {
    const { cert, source } = certificateInVault('partner-redact');
    const secrets = ['SECRETsig123', 'SECRETkey456'];
    const leak = `https://acct.blob.core.windows.net/x?sv=2024-08-04&sig=${secrets[0]}; AccountKey=${secrets[1]};`;
    const leaky: AlertSender = {
      transport: 'leaky',
      send: async () => {
        throw new Error(`upload to ${leak} failed`);
      },
    };
    const base = buildServices(
      loadConfig({
        AzureWebJobsStorage: inject('storageConnection'),
        FPX_BASE_URL: 'https://127.0.0.1:9/ftop/v1.2/api',
        FPX_CERT_PATH: '/nonexistent.pem',
      }),
    );
    const lines: string[] = [];
    const context = () =>
      new InvocationContext({
        functionName: 'certExpiryCheck',
        logHandler: (level, ...args) => lines.push(`${level}: ${args.map(String).join(' ')}`),
      });
    const shown: string[] = [];
    const failure = (promise: Promise<unknown>) =>
      promise.then(
        () => {
          throw new Error('expected a failure');
        },
        (error: unknown) => {
          shown.push(inspect(error));
          return error as Error;
        },
      );

    // The alert's send fails.
    const sendFailed = await failure(
      runCertExpiryCheck(
        { ...base, certificates: source, alerts: leaky },
        context(),
        () => new Date(cert.notAfter.getTime() - 3 * DAY),
      ),
    );
    expect(sendFailed.message).toMatch(/could not be sent .*sig=\*\*\*.*AccountKey=\*\*\*/);
    const row = await new AlertLedger(base.table(CERT_ALERTS_TABLE)).get(cert.thumbprint, 'threshold-7');
    expect(row?.lastError).toMatch(/sig=\*\*\*/);

    // The check itself fails (here the certificate source; storage errors take the same path).
    const broken: CertificateSource = {
      description: 'a source that fails',
      current: async () => {
        throw new Error(`read ${leak}`);
      },
      refresh: async () => {
        throw new Error(`read ${leak}`);
      },
    };
    const checkFailed = await failure(runCertExpiryCheck({ ...base, certificates: broken }, context()));
    expect(checkFailed.message).toMatch(/^The certificate expiry check failed: Error: read .*sig=\*\*\*/);

    const everything = [...shown, ...lines, JSON.stringify(row)].join('\n');
    for (const secret of secrets) expect(everything).not.toContain(secret);
  });
});
