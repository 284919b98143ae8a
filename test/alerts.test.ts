import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type SmtpSink, startSmtpSink } from '../dev/smtp-sink';
import {
  AcsEmailAlertSender,
  type AlertMessage,
  createAlertSender,
  LogAlertSender,
  SmtpAlertSender,
} from '../lib/alerts';
import { type Config, ConfigError } from '../lib/config';
import { type AcsEmailFake, startAcsEmailFake } from './fakes/acs-email';
import { mimePart } from './fakes/mail';

let sink: SmtpSink;
let acs: AcsEmailFake;
const sinkLog: string[] = [];

beforeAll(async () => {
  sink = await startSmtpSink({
    port: 0,
    dir: mkdtempSync(path.join(tmpdir(), 'fpx-mail-')),
    log: (l) => sinkLog.push(l),
  });
  acs = await startAcsEmailFake();
});
afterAll(async () => {
  await sink?.close();
  await acs?.close();
});

const message: AlertMessage = {
  subject: 'FPX client certificate expires in 7 days: partner',
  text: 'Line one.\nThumbprint: abc123\nWhat to do: import the new certificate — no restart.',
  html: '<p>Line one.</p><p>Thumbprint: <code>abc123</code></p>',
  id: 'abc123/threshold-7',
};

const alerts = (overrides: Partial<Config['alerts']>): Config['alerts'] => ({
  days: [30, 14, 7, 1],
  emailTo: ['ops@example.com', 'oncall@example.com'],
  emailFrom: 'fpx-connector@example.com',
  ...overrides,
});

describe('SMTP', () => {
  test('a message reaches a real SMTP server with its subject, recipients, text and html', async () => {
    const sender = createAlertSender(alerts({ smtpUrl: sink.url }));
    expect(sender).toBeInstanceOf(SmtpAlertSender);
    await sender.send(message);
    const mail = sink.messages.at(-1);
    expect(mail).toMatchObject({
      subject: message.subject,
      from: 'fpx-connector@example.com',
      to: ['ops@example.com', 'oncall@example.com'],
    });
    expect(
      mimePart(mail?.raw ?? '', 'text/plain')
        ?.replace(/\r\n/g, '\n')
        .trim(),
    ).toBe(message.text);
    expect(mimePart(mail?.raw ?? '', 'text/html')).toContain('<code>abc123</code>');
    expect(mail?.raw).toMatch(/^Message-ID: <[0-9a-f-]{36}@fpx-crm-connector>/im);
    // The sink saves each message as .eml and says where.
    expect(path.basename(mail?.path ?? '')).toMatch(
      /^\d{4}-\d\d-\d\dT[\d-]+Z-fpx-client-certificate-expires-in-7-days-partner\.eml$/,
    );
    expect(existsSync(mail?.path ?? '')).toBe(true);
    expect(readFileSync(mail?.path ?? '', 'utf8')).toBe(mail?.raw);
    expect(sinkLog.at(-1)).toContain(path.basename(mail?.path ?? ''));
  });

  test('a failed send rejects with an error that holds no password', async () => {
    const sender = new SmtpAlertSender({
      url: 'smtp://alerts:S3cretPassw0rd@127.0.0.1:9',
      to: ['ops@example.com'],
      from: 'fpx-connector@example.com',
    });
    const error = (await sender.send(message).catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/^SMTP send failed/);
    expect(inspect(error, { depth: 5 })).not.toContain('S3cretPassw0rd');
  });
});

describe('Azure Communication Services Email', () => {
  test('with a connection string: HMAC-signed send, polled to Succeeded', async () => {
    const sender = createAlertSender(alerts({ acsConnectionString: acs.connectionString }), {
      acsClientOptions: acs.clientOptions,
      acsPollIntervalMs: 10,
    });
    expect(sender).toBeInstanceOf(AcsEmailAlertSender);
    const before = acs.messages.length;
    await sender.send({ ...message, id: 'acs-hmac' });
    expect(acs.refused).toEqual([]);
    expect(acs.messages.slice(before)).toHaveLength(1);
    expect(acs.messages.at(-1)).toMatchObject({
      auth: 'hmac',
      message: {
        senderAddress: 'fpx-connector@example.com',
        recipients: { to: [{ address: 'ops@example.com' }, { address: 'oncall@example.com' }] },
        content: { subject: message.subject, plainText: message.text, html: message.html },
      },
    });
  });

  test('the same alert sent again carries the same Operation-Id, so ACS sends it once', async () => {
    const sender = createAlertSender(alerts({ acsConnectionString: acs.connectionString }), {
      acsClientOptions: acs.clientOptions,
      acsPollIntervalMs: 10,
    });
    const before = acs.messages.length;
    await sender.send({ ...message, id: 'acs-repeat' });
    await sender.send({ ...message, id: 'acs-repeat' });
    expect(acs.messages.length - before).toBe(1);
  });

  test('with an endpoint and a token credential (managed identity in Azure)', async () => {
    const sender = createAlertSender(alerts({ acsEndpoint: acs.endpoint }), {
      credential: acs.credential,
      acsClientOptions: acs.clientOptions,
      acsPollIntervalMs: 10,
    });
    await sender.send({ ...message, id: 'acs-bearer' });
    expect(acs.messages.at(-1)).toMatchObject({
      auth: 'bearer',
      message: { content: { subject: message.subject } },
    });
  });

  test('a send ACS reports as Failed, or refuses, rejects without the access key', async () => {
    const sender = createAlertSender(alerts({ acsConnectionString: acs.connectionString }), {
      acsClientOptions: acs.clientOptions,
      acsPollIntervalMs: 10,
    });
    acs.failNext(1, 'operation');
    const failed = (await sender.send({ ...message, id: 'acs-failed' }).catch((e: unknown) => e)) as Error;
    expect(failed.message).toMatch(/ACS Email send (failed|ended Failed)/);
    acs.failNext(1, 503);
    const refused = (await sender.send({ ...message, id: 'acs-503' }).catch((e: unknown) => e)) as Error;
    expect(refused.message).toMatch(/ACS Email send failed \(503/);
    const accessKey = acs.connectionString.split('accesskey=')[1] as string;
    for (const e of [failed, refused]) expect(inspect(e, { depth: 6 })).not.toContain(accessKey);
  });

  test('a wrong access key is refused by the service, not silently accepted', async () => {
    const wrong = acs.connectionString.replace(
      /accesskey=.*/,
      `accesskey=${Buffer.alloc(32, 7).toString('base64')}`,
    );
    const sender = createAlertSender(alerts({ acsConnectionString: wrong }), {
      acsClientOptions: acs.clientOptions,
      acsPollIntervalMs: 10,
    });
    await expect(sender.send({ ...message, id: 'acs-wrong-key' })).rejects.toThrow(/401/);
    expect(acs.refused.at(-1)).toBe('signature mismatch');
  });
});

describe('choosing the transport', () => {
  test('with no transport the alert is logged as an error', async () => {
    const logged: string[] = [];
    const sender = createAlertSender(alerts({ emailTo: [], emailFrom: undefined }), {
      log: (m) => logged.push(m),
    });
    expect(sender).toBeInstanceOf(LogAlertSender);
    await sender.send(message);
    expect(logged[0]).toMatch(
      /^ALERT \(not emailed: set ACS_EMAIL_ENDPOINT, ACS_EMAIL_CONNECTION_STRING or SMTP_URL\): FPX client/,
    );
    expect(logged[0]).toContain('Thumbprint: abc123');
  });

  test('a transport without recipients or sender stops start-up naming the setting', () => {
    expect(() => createAlertSender(alerts({ smtpUrl: sink.url, emailTo: [] }))).toThrow(ConfigError);
    expect(() => createAlertSender(alerts({ smtpUrl: sink.url, emailTo: [] }))).toThrow(
      /ALERT_EMAIL_TO.*SMTP_URL/,
    );
    expect(() => createAlertSender(alerts({ acsEndpoint: acs.endpoint, emailFrom: undefined }))).toThrow(
      /ALERT_EMAIL_FROM.*ACS_EMAIL_ENDPOINT/,
    );
  });
});
