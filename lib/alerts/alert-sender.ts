/** One alert for the operators, whatever carries it (email today; the webhooks issue reuses this). */
export interface AlertMessage {
  subject: string;
  text: string;
  html?: string;
  /**
   * A stable id for this alert (e.g. `<thumbprint>/threshold-7`): a resend of the same alert carries the same
   * id (ACS Email `Operation-Id`, SMTP `Message-ID`), so a transport or a mail client can tell it apart.
   */
  id?: string;
}

export interface AlertSender {
  /** `acs`, `smtp` or `log`: recorded with each alert sent. */
  readonly transport: string;
  /** Resolves once the transport accepted the message; rejects with an error that holds no secret. */
  send(message: AlertMessage): Promise<void>;
}
