import type nodemailer from 'nodemailer';
import { lazy } from '../lazy';
import { redactSecrets, stableUuid } from '../redact';
import type { AlertMessage, AlertSender } from './alert-sender';

export interface SmtpSenderOptions {
  /** `smtp://[user:password@]host:port` or `smtps://…` (SMTP_URL). */
  url: string;
  to: string[];
  from: string;
  /** Extra trusted CAs for the server's certificate (tests). */
  ca?: string;
}

/** SMTP_URL: alerts through any SMTP server (and the local sink under `npm start`). */
export class SmtpAlertSender implements AlertSender {
  readonly transport = 'smtp';
  private readonly transporter: ReturnType<typeof nodemailer.createTransport>;

  constructor(private readonly options: SmtpSenderOptions) {
    const url = new URL(options.url);
    this.transporter = lazy.nodemailer().createTransport({
      host: url.hostname,
      port: url.port ? Number(url.port) : url.protocol === 'smtps:' ? 465 : 587,
      secure: url.protocol === 'smtps:',
      auth: url.username
        ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) }
        : undefined,
      tls: options.ca ? { ca: options.ca } : undefined,
      connectionTimeout: 15_000,
      greetingTimeout: 15_000,
      socketTimeout: 30_000,
    });
  }

  async send(message: AlertMessage): Promise<void> {
    try {
      await this.transporter.sendMail({
        from: this.options.from,
        to: this.options.to,
        subject: message.subject,
        text: message.text,
        html: message.html,
        messageId: message.id ? `<${stableUuid(message.id)}@fpx-crm-connector>` : undefined,
      });
    } catch (error) {
      const code = (error as { code?: string }).code;
      throw new Error(
        `SMTP send failed${code ? ` (${code})` : ''}: ${redactSecrets((error as Error).message ?? String(error))}`,
      );
    }
  }
}
