import type { AlertMessage, AlertSender } from './alert-sender';

/** No email transport configured: the alert goes to the log as an error, so it is at least seen there. */
export class LogAlertSender implements AlertSender {
  readonly transport = 'log';

  constructor(
    private readonly why: string,
    private readonly log: (message: string) => void = (message) => console.error(message),
  ) {}

  async send(message: AlertMessage): Promise<void> {
    this.log(`ALERT (not emailed: ${this.why}): ${message.subject}\n${message.text}`);
  }
}
