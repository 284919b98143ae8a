/**
 * A local SMTP server for `npm start` (and the alert tests): accepts every message without
 * authentication and saves it as `.local/mail/<time>-<subject>.eml`, printing where.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';

export interface SmtpSinkOptions {
  /** Default 2525; 0 takes a free port. A busy port falls back to a free one. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Where messages are saved; default `.local/mail` of the project. */
  dir?: string;
  /** Told of each saved message; default console.log. */
  log?: (line: string) => void;
}

export interface SavedMail {
  path: string;
  from?: string;
  to: string[];
  subject: string;
  /** The whole message as received (RFC 5322). */
  raw: string;
}

export interface SmtpSink {
  /** `smtp://127.0.0.1:<port>`, for SMTP_URL. */
  url: string;
  port: number;
  dir: string;
  messages: SavedMail[];
  close(): Promise<void>;
}

export const DEFAULT_MAIL_DIR = path.resolve(__dirname, '..', '.local', 'mail');

export async function startSmtpSink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const dir = options.dir ?? DEFAULT_MAIL_DIR;
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? ((line: string) => console.log(line));
  const messages: SavedMail[] = [];
  mkdirSync(dir, { recursive: true });

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    banner: 'FPX CRM connector local SMTP sink',
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', callback);
      stream.on('end', () => {
        try {
          const raw = Buffer.concat(chunks).toString('utf8');
          const subject = headerValue(raw, 'subject') ?? '(no subject)';
          const file = path.join(
            dir,
            `${new Date().toISOString().replace(/[:.]/g, '-')}-${slug(subject)}.eml`,
          );
          writeFileSync(file, raw);
          const mail: SavedMail = {
            path: file,
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined,
            to: session.envelope.rcptTo.map((r) => r.address),
            subject,
            raw,
          };
          messages.push(mail);
          log(`Mail to ${mail.to.join(', ')}: "${subject}" saved to ${path.relative(process.cwd(), file)}`);
          callback();
        } catch (error) {
          callback(error as Error);
        }
      });
    },
  });

  const port = await listen(server, options.port ?? 2525, host).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'EADDRINUSE' && options.port !== 0) return listen(server, 0, host);
    throw error;
  });
  return {
    url: `smtp://${host}:${port}`,
    port,
    dir,
    messages,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function listen(server: SMTPServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    // SMTPServer re-emits the listen error on itself: without a listener there it would crash the process.
    server.server.once('error', onError);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.server.off('error', onError);
      server.off('error', onError);
      resolve((server.server.address() as AddressInfo).port);
    });
  });
}

/** One header's value, unfolded, with RFC 2047 encoded words decoded. */
export function headerValue(raw: string, name: string): string | undefined {
  const head = raw.split(/\r?\n\r?\n/, 1)[0] ?? '';
  const unfolded = head.replace(/\r?\n[ \t]+/g, ' ');
  const line = unfolded.split(/\r?\n/).find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  if (!line) return undefined;
  return line
    .slice(name.length + 1)
    .trim()
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g, (_m, _charset: string, encoding: string, text: string) =>
      encoding.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString('utf8')
        : Buffer.from(
            text
              .replace(/_/g, ' ')
              .replace(/=([0-9A-F]{2})/gi, (_x, hex: string) =>
                String.fromCharCode(Number.parseInt(hex, 16)),
              ),
            'latin1',
          ).toString('utf8'),
    );
}

function slug(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 60) || 'mail'
  );
}
