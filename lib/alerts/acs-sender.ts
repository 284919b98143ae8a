import type { EmailClient, EmailClientOptions } from '@azure/communication-email';
import type { TokenCredential } from '@azure/identity';
import { lazy } from '../lazy';
import { redactSecrets, stableUuid } from '../redact';
import type { AlertMessage, AlertSender } from './alert-sender';

export type AcsSenderOptions = (
  | {
      endpoint: string;
      credential?: TokenCredential;
      /** The default credential's user-assigned managed identity (AZURE_CLIENT_ID); unset: system-assigned. */
      identityClientId?: string;
    }
  | { connectionString: string }
) & {
  to: string[];
  from: string;
  /** E.g. `tlsOptions` for a local fake. */
  clientOptions?: EmailClientOptions;
  /** Between status polls of the send operation; default 2 s (the SDK's). */
  pollIntervalMs?: number;
};

/** Azure Communication Services Email: ACS_EMAIL_ENDPOINT with managed identity, or ACS_EMAIL_CONNECTION_STRING. */
export class AcsEmailAlertSender implements AlertSender {
  readonly transport = 'acs';
  private readonly client: EmailClient;

  constructor(private readonly options: AcsSenderOptions) {
    try {
      this.client =
        'connectionString' in options
          ? new (lazy.communicationEmail().EmailClient)(options.connectionString, options.clientOptions)
          : new (lazy.communicationEmail().EmailClient)(
              options.endpoint,
              options.credential ??
                new (lazy.identity().DefaultAzureCredential)({
                  managedIdentityClientId: options.identityClientId || undefined,
                }),
              options.clientOptions,
            );
    } catch {
      // The SDK's message would quote the connection string.
      throw new Error('ACS Email: the endpoint or connection string cannot be used');
    }
  }

  async send(message: AlertMessage): Promise<void> {
    let status: string;
    let detail: string | undefined;
    try {
      const poller = await this.client.beginSend(
        {
          senderAddress: this.options.from,
          recipients: { to: this.options.to.map((address) => ({ address })) },
          content: { subject: message.subject, plainText: message.text, html: message.html },
        },
        // The same alert sent again carries the same Operation-Id, so ACS can recognise the repeat.
        {
          operationId: message.id ? stableUuid(message.id) : undefined,
          updateIntervalInMs: this.options.pollIntervalMs,
        },
      );
      const result = await poller.pollUntilDone();
      status = result.status;
      detail = result.error?.message;
    } catch (error) {
      const e = error as { statusCode?: number; code?: string; message?: string };
      const what = [e.statusCode, e.code].filter(Boolean).join(' ');
      throw new Error(
        `ACS Email send failed${what ? ` (${what})` : ''}: ${redactSecrets(e.message ?? String(error))}`,
      );
    }
    if (status !== 'Succeeded') {
      throw new Error(`ACS Email send ended ${status}${detail ? `: ${redactSecrets(detail)}` : ''}`);
    }
  }
}
